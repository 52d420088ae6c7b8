"""``plaza serve entryway`` as a real process over a governance data dir (its keystore
and a ledger holding a DAO and its market): it answers describeServer under its own
did:web, refuses a wrong login in Lexicon style, and stops cleanly on Ctrl-C.
(Sign-ups through it are tested in-process, tests/network/entryway, where the test
owns the ledger's clock.)"""

from __future__ import annotations

import signal
from pathlib import Path

import httpx

from plaza.ledger.keystore import Keystore
from tests.agents.test_live import AGENT, Net, _market
from tests.cli.test_serve import serve
from tests.services.archive.conftest import directory, free_port


def test_serve_entryway_answers_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    gov = tmp_path / "gov"
    gov.mkdir()
    Keystore(gov / "keys.json").add("ops", AGENT)
    with directory(tmp_path) as directory_url:
        _market(gov, Net(directory_url, ["http://127.0.0.1:9", "http://127.0.0.1:10"], []))
        port = free_port()
        proc, url = serve(
            "entryway", "--port", str(port), "--data-dir", str(tmp_path / "entryway"),
            "--governance", str(gov), "--as", "ops", "--directory", directory_url,
        )  # fmt: skip
        try:
            assert url == f"http://127.0.0.1:{port}"
            assert httpx.get(f"{url}/_health").status_code == 200
            described = httpx.get(f"{url}/xrpc/com.atproto.server.describeServer").json()
            assert described["did"] == f"did:web:127.0.0.1%3A{port}"
            r = httpx.post(
                f"{url}/xrpc/com.atproto.server.createSession",
                json={"identifier": "nobody.test", "password": "a guess at it"},
            )
            assert (r.status_code, r.json()["error"]) == (401, "AuthenticationRequired")
            r = httpx.get(f"{url}/xrpc/com.atproto.server.noSuchMethod")
            assert r.status_code == 404
        finally:
            proc.send_signal(signal.SIGINT)
            out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, out
        assert "stopped" in out
        assert (tmp_path / "entryway" / "entryway.db").exists()
