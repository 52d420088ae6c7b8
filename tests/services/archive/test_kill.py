"""``plaza serve archive`` killed with SIGKILL while it follows a live PDS, then started
again: it resumes from its cursor, with nothing lost and nothing applied twice, and its
copy is the host's exactly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from plaza.atproto.repo_verify import import_car
from tests.services.archive.conftest import (
    caught_up,
    directory,
    free_port,
    member,
    pds,
    wait_for,
)


def start(port: int, data_dir: Path, pds_url: str, dir_url: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", "from plaza.cli import main; main()", "serve", "archive",
         "--port", str(port), "--data-dir", str(data_dir),
         "--relay", pds_url, "--directory", dir_url],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    wait_for("the archive to listen", lambda: _answers(url))
    return proc


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/_health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def metrics(url: str) -> dict[str, Any]:
    out: dict[str, Any] = httpx.get(f"{url}/_metrics", timeout=10).json()
    return out


def test_sigkill_mid_stream_then_restart(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with directory(tmp_path) as dir_url, pds(tmp_path, dir_url) as (pds_url, _):
        carol = member(pds_url)
        carol.client.send_post("before")
        proc = start(port, tmp_path / "archive", pds_url, dir_url)
        try:
            wait_for("the first post", caught_up(url, pds_url, carol.did))
            for i in range(15):
                carol.client.send_post(f"during {i}")
            # Killed as it reads the stream of those posts.
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
        for i in range(15, 20):
            carol.client.send_post(f"while down {i}")
        proc = start(port, tmp_path / "archive", pds_url, dir_url)
        try:
            wait_for("the archive to catch up", caught_up(url, pds_url, carol.did), 60)
            m = metrics(url)
            assert m["dropped"] == {}  # no event was applied twice (a replay would be stale)
            assert m["resyncs"] == {"wanted": 0, "done": 0, "failed": 0}
            assert m["records"] == 21
            r = httpx.get(f"{url}/xrpc/com.atproto.sync.getRepo", params={"did": carol.did})
            copy = import_car(r.content, did=carol.did)
            host = import_car(
                httpx.get(
                    f"{pds_url}/xrpc/com.atproto.sync.getRepo", params={"did": carol.did}
                ).content
            )
            assert copy.commit_cid == host.commit_cid and copy.records == host.records
            assert copy.unreferenced_blocks == 0
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
