"""``plaza repo verify`` and ``plaza repo ls`` on real, host-made and damaged CARs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from typer.testing import CliRunner

from plaza.atproto import cbor
from plaza.atproto.car import read_car, write_car
from plaza.atproto.cid import CID
from plaza.atproto.commit import Commit, decode_commit
from plaza.atproto.crypto import PrivateKey
from plaza.atproto.mst import MST
from plaza.atproto.plc import create_genesis
from plaza.atproto.repo import Repo, Write, export_car
from plaza.cli import app
from plaza.services.directory import DirectorySettings
from plaza.services.directory import create_app as create_directory
from plaza.services.runner import ServedApp, ServerThread
from tests.atproto.repo_helpers import POST, Host, post
from tests.vectors import params, vector_path

CAR_DIR = vector_path("indigo-testdata", "repo-car")
FULL = [
    "greenground.repo.car",
    "bafyreieovfuizojpw3zresz7sx3nk4trm2by23pt5rxbey3jme4uo5ogiu.car",
    "fakermaker.repo.car",
    "paul_staging.repo.car",
]
runner = CliRunner()


def run(*args: str) -> tuple[int, Any]:
    result = runner.invoke(app, ["repo", *args])
    try:
        return result.exit_code, json.loads(result.stdout)
    except ValueError:
        return result.exit_code, result.output


@pytest.mark.parametrize("name", params(FULL))
def test_real_repositories_verify(name: str) -> None:
    path = CAR_DIR / name
    code, out = run("verify", str(path), "--json")
    assert code == 0, out
    car = read_car(path.read_bytes())
    commit = decode_commit(car.blocks[car.root])
    assert out["valid"] is True
    assert out["did"] == commit.did and out["commit"] == str(car.root)
    assert out["data"] == str(commit.data) and out["rev"] == commit.rev
    assert out["records"] == MST.load(car.blocks, commit.data).count()
    # history left in the file (old commits' nodes) is counted apart, not imported
    assert out["blocks"] + out["unreferenced_blocks"] == len(car.blocks)
    assert out["signature"].startswith("unchecked")
    code, out = run("verify", str(path), "--json", "--did", commit.did)
    assert code == 0
    code, out = run("verify", str(path), "--json", "--did", "did:plc:somebodyelse")
    assert code == 1 and out["error"]["code"] == "InvalidCommit"


def test_ls_lists_every_record() -> None:
    path = CAR_DIR / "fakermaker.repo.car"
    result = runner.invoke(app, ["repo", "ls", str(path)])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert len(lines) == 142
    keys = [line.split()[0] for line in lines]
    assert keys == sorted(keys)
    for line in lines:
        path_part, cid = line.split()
        assert "/" in path_part and CID.decode(cid)


def test_partial_slice_reports_missing_blocks() -> None:
    code, out = run("verify", str(CAR_DIR / "repo_slice.car"), "--json")
    assert code == 1
    assert out == {
        "valid": False,
        "error": {"code": "MissingBlock", "message": out["error"]["message"]},
    }
    result = runner.invoke(app, ["repo", "ls", str(CAR_DIR / "repo_slice.car")])
    assert result.exit_code == 1 and "MissingBlock" in result.output


@pytest.fixture
def host_car(tmp_path: Path) -> tuple[Host, Path]:
    host = Host()
    for i in range(30):
        host.write(Write.create(POST, f"3k{i:03d}", post(i)))
    path = tmp_path / "host.car"
    path.write_bytes(export_car(host.blocks, host.repo.cid))
    return host, path


def test_signature_checked_with_key(host_car: tuple[Host, Path]) -> None:
    host, path = host_car
    code, out = run("verify", str(path), "--json", "--key", host.key.did_key())
    assert code == 0 and out["signature"] == f"verified against {host.key.did_key()}"
    other = PrivateKey.generate().did_key()
    code, out = run("verify", str(path), "--json", "--key", other)
    assert code == 1 and out["error"]["code"] == "BadSignature"
    result = runner.invoke(app, ["repo", "verify", str(path)])
    assert result.exit_code == 0 and "signature: unchecked" in result.stdout


def _flip(data: bytes, block: bytes, offset: int) -> bytes:
    out = bytearray(data)
    at = data.index(block) + offset
    out[at] ^= 0x01
    return bytes(out)


def _damage(path: Path, how: str) -> Path:
    data = path.read_bytes()
    car = read_car(data)
    commit = decode_commit(car.blocks[car.root])
    tree = MST.load(car.blocks, commit.data)
    record = next(iter(dict(tree.items()).values()))
    child = next(c for c in tree.all_blocks() if c != commit.data)
    blocks = dict(car.blocks)
    if how == "flip-record":
        data = _flip(data, blocks[record], len(blocks[record]) // 2)
    elif how == "flip-node":
        data = _flip(data, blocks[child], 3)
    elif how == "flip-sig":
        data = _flip(data, blocks[car.root], len(blocks[car.root]) - 3)
    elif how == "drop-block":
        del blocks[child]
        data = write_car(car.roots, blocks.items())
    elif how == "wrong-root":
        data = write_car([CID.compute(b"nothing here")], blocks.items())
    elif how == "bad-signature":  # sig altered and the commit re-hashed: only the key can tell
        bad = Commit(commit.did, commit.version, commit.data, commit.rev, commit.prev, bytes(64))
        block = bad.encode()
        blocks.pop(car.root)
        data = write_car([CID.compute(block)], [(CID.compute(block), block), *blocks.items()])
    elif how == "unordered-mst":  # a signed commit over a non-canonical tree
        (k0, v0), (k1, v1) = list(tree.items())[:2]
        node = cbor.encode(
            {
                "l": None,
                "e": [
                    {"p": 0, "k": k1.encode(), "v": v1, "t": None},
                    {"p": 0, "k": k0.encode(), "v": v0, "t": None},
                ],
            }
        )
        bad = Commit(
            commit.did, commit.version, CID.compute(node), commit.rev, commit.prev, commit.sig
        )
        block = bad.encode()
        data = write_car(
            [CID.compute(block)], [(CID.compute(block), block), (CID.compute(node), node)]
        )
    out = path.with_name(f"{how}.car")
    out.write_bytes(data)
    return out


DAMAGE = [
    ("flip-record", "BlockHashMismatch"),
    ("flip-node", "BlockHashMismatch"),
    ("flip-sig", "BlockHashMismatch"),
    ("drop-block", "MissingBlock"),
    ("wrong-root", "InvalidRoot"),
    ("unordered-mst", "InvalidMst"),
]
# a zeroed signature can only be caught with the signer's key, which we hold for our own
# repositories; for a real one it would come from its DID document
CASES = [(src, how, code) for src in ("host", "paul_staging") for how, code in DAMAGE]
CASES.append(("host", "bad-signature", "BadSignature"))


@pytest.mark.parametrize(("source", "how", "code"), CASES, ids=[f"{s}-{h}" for s, h, _ in CASES])
def test_damaged_copies_are_rejected_with_the_right_code(
    tmp_path: Path, host_car: tuple[Host, Path], source: str, how: str, code: str
) -> None:
    host, path = host_car
    if source != "host":
        path = tmp_path / "real.car"
        path.write_bytes((CAR_DIR / f"{source}.repo.car").read_bytes())
    damaged = _damage(path, how)
    args = ["verify", str(damaged), "--json"]
    if source == "host":
        args += ["--key", host.key.did_key()]
    exit_code, out = run(*args)
    assert exit_code == 1, out
    assert out["valid"] is False and out["error"]["code"] == code, out


def test_usage_errors_exit_2(tmp_path: Path, host_car: tuple[Host, Path]) -> None:
    _host, path = host_car
    assert runner.invoke(app, ["repo", "verify", str(tmp_path / "missing.car")]).exit_code == 2
    assert runner.invoke(app, ["repo", "verify", str(path), "--key", "did:key:nope"]).exit_code == 2
    assert runner.invoke(app, ["repo", "verify", str(path), "--bogus"]).exit_code == 2
    both = ["repo", "verify", str(path), "--key", "did:key:x", "--directory", "http://x"]
    assert runner.invoke(app, both).exit_code == 2
    assert runner.invoke(app, ["repo", "ls", str(tmp_path / "missing.car")]).exit_code == 2


def _plc_repo(tmp_path: Path, signer: PrivateKey, did: str, name: str) -> Path:
    """A repository CAR of ``did`` with one post, signed by ``signer``."""
    blocks: dict[CID, bytes] = {}
    result = Repo.create(
        did, signer, "3kaaaaaaaaa22", blocks, writes=[Write.create(POST, "3k001", post(1))]
    )
    blocks.update(result.new_blocks)
    path = tmp_path / f"{name}.car"
    path.write_bytes(export_car(blocks, result.repo.cid))
    return path


def test_directory_resolution_over_http(tmp_path: Path) -> None:
    """The signing key comes from the DID's verified audit log, not from a document the
    directory could have made up."""
    rotation, signing, forger = (PrivateKey.generate() for _ in range(3))
    did, genesis = create_genesis(
        key=rotation,
        rotation_keys=[rotation.did_key()],
        signing_key=signing.did_key(),
        handle="repo.test",
        pds_endpoint="https://pds.example",
    )
    honest = _plc_repo(tmp_path, signing, did, "honest")
    forged = _plc_repo(tmp_path, forger, did, "forged")
    settings = DirectorySettings(db_url=f"sqlite:///{tmp_path / 'directory.db'}")

    async def lying_doc(request: Request) -> JSONResponse:
        method = {
            "id": f"{did}#atproto",
            "type": "Multikey",
            "controller": did,
            "publicKeyMultibase": forger.public_key.multikey(),
        }
        return JSONResponse({"id": did, "verificationMethod": [method]})

    liar = Starlette(routes=[Route("/{did}", lying_doc)])
    with ServerThread([ServedApp("plc", create_directory(settings)), ServedApp("liar", liar)]) as (
        url,
        liar_url,
    ):
        assert httpx.post(f"{url}/{did}", json=genesis.to_json()).status_code == 200
        code, out = run("verify", str(honest), "--json", "--directory", url)
        assert code == 0, out
        assert out["signature"] == f"verified against {signing.did_key()}"
        code, out = run("verify", str(forged), "--json", "--directory", url)
        assert code == 1 and out["error"]["code"] == "BadSignature"
        # A directory that serves a made-up document (and no verifiable log) is not believed.
        result = runner.invoke(app, ["repo", "verify", str(forged), "--directory", liar_url])
        assert result.exit_code == 2 and "VALID" not in result.output, result.output
        stranger = _plc_repo(tmp_path, forger, "did:plc:" + "a" * 24, "stranger")
        result = runner.invoke(app, ["repo", "verify", str(stranger), "--directory", url])
        assert result.exit_code == 2 and "does not know" in result.output, result.output
