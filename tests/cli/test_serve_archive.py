"""``plaza serve archive`` as a user runs it: a real process, a real port, Ctrl-C."""

from __future__ import annotations

import signal
import stat
import subprocess
from pathlib import Path

import httpx

from tests.cli.test_serve import serve


def _start(port: int, data_dir: Path) -> tuple[subprocess.Popen[str], str]:
    return serve(
        "archive", "--port", str(port), "--data-dir", str(data_dir),
        "--relay", "http://127.0.0.1:9", "--directory", "http://127.0.0.1:9",
    )  # fmt: skip


def test_serve_archive_serves_until_ctrl_c(free_port: int, tmp_path: Path) -> None:
    proc, url = _start(free_port, tmp_path / "archive")
    try:
        assert url == f"http://127.0.0.1:{free_port}"
        health = httpx.get(f"{url}/_health").json()
        assert health["status"] == "ok" and health["firehose"] is False  # the relay is away
        metrics = httpx.get(f"{url}/_metrics").json()
        assert (metrics["repos"], metrics["records"], metrics["blobs"]) == (0, 0, 0)
        r = httpx.get(f"{url}/xrpc/com.atproto.sync.getRepo", params={"did": "did:plc:" + "a" * 24})
        assert r.status_code == 400 and r.json()["error"] == "RepoNotFound"
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert "stopped" in out
    db = tmp_path / "archive" / "archive.db"
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
