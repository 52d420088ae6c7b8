"""'plaza dao keys publish|register' against a real directory: a did:plc is bound only to a
key its own document lists, and the proof travels with the ledger."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from plaza.atproto.plc import create_genesis
from plaza.cli import app
from plaza.ledger.keystore import Keystore
from plaza.services.directory import DirectorySettings, create_app
from plaza.services.runner import ServedApp, ServerThread


@pytest.fixture
def directory(tmp_path: Path, free_port: int) -> Iterator[str]:
    settings = DirectorySettings(db_url=f"sqlite:///{tmp_path / 'directory.db'}")
    with ServerThread([ServedApp("directory", create_app(settings), "127.0.0.1", free_port)]) as (
        url,
    ):
        yield url


def run(env: dict[str, str], *args: str) -> tuple[int, str]:
    res = CliRunner().invoke(app, list(args), env=env)
    return res.exit_code, res.output


def test_register_needs_the_dids_own_listing(tmp_path: Path, directory: str) -> None:
    data = tmp_path / ".plaza"
    env = {"PLAZA_DATA": str(data), "PLAZA_DIRECTORY": directory}
    assert run(env, "dao", "init", "--founder", "alice", "--founder", "bob")[0] == 0
    ks = Keystore(data / "keys.json")
    recovery, dora, mallory = ks.create("dora-rec"), ks.create("dora"), ks.create("mallory")
    did, genesis = create_genesis(
        key=recovery.key,
        rotation_keys=[recovery.did_key],
        signing_key=recovery.did_key,
        handle="dora.test",
        pds_endpoint="https://pds.example",
    )
    assert httpx.post(f"{directory}/{did}", json=genesis.to_json()).status_code == 200

    # Nobody's key is listed yet: neither dora nor a squatter can bind the DID.
    for who in ("dora", "mallory"):
        code, out = run(env, "dao", "keys", "register", who, "--did", did)
        assert code == 1 and "InvalidIdentityProof" in out, out
    # Only a rotation key of the DID can publish a key in it.
    code, out = run(
        env, "dao", "keys", "publish", "mallory", "--did", did, "--rotation-key", "mallory"
    )
    assert code == 1 and "not a rotation key" in out, out

    code, out = run(
        env, "dao", "keys", "publish", "dora", "--did", did, "--rotation-key", "dora-rec"
    )
    assert code == 0, out
    doc = httpx.get(f"{directory}/{did}/data").json()
    assert doc["verificationMethods"]["plaza"] == dora.did_key
    assert run(env, "dao", "keys", "register", "mallory", "--did", did)[0] == 1
    code, out = run(env, "dao", "keys", "register", "dora", "--did", did)
    assert code == 0, out
    assert ks.get("dora").did == did

    # The ledger carries the proof: an export verifies without the directory.
    export = tmp_path / "ledger.jsonl"
    assert run(env, "ledger", "export", "-o", str(export))[0] == 0
    lines = [json.loads(ln) for ln in export.read_text().splitlines()[1:]]
    registered = [
        ln["event"] for ln in lines if ln.get("event", {}).get("type", "").endswith("registered")
    ]
    assert registered and len(registered[0]["payload"]["proof"]["plc"]) == 2
    code, out = run(env, "ledger", "verify", str(export))
    assert code == 0 and out.startswith("ok: "), out
    assert mallory.did_key not in json.dumps(registered)


def test_register_refuses_an_unreachable_directory(tmp_path: Path, free_port: int) -> None:
    env = {"PLAZA_DATA": str(tmp_path / ".plaza")}
    assert run(env, "dao", "init", "--founder", "alice")[0] == 0
    Keystore(tmp_path / ".plaza" / "keys.json").create("dora")
    code, out = run(
        env,
        "dao", "keys", "register", "dora", "--did", "did:plc:" + "a" * 24,
        "--directory", f"http://127.0.0.1:{free_port}",
    )  # fmt: skip
    assert code == 1 and "DidResolutionFailed" in out, out
