"""``plaza serve appview`` as a user runs it: a real process following a real PDS's
firehose, answering the reads that PDS forwards, stopped with Ctrl-C and restarted on
its data dir with its cursor kept."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from atproto import Client
from plaza.services.directory import DirectorySettings
from plaza.services.directory import create_app as create_directory
from plaza.services.pds import PdsSettings, create_app, service_did_for
from plaza.services.runner import ServedApp, ServerThread


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(port: int, data_dir: Path, pds: str, directory: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", "from plaza.cli import main; main()", "serve", "appview",
         "--port", str(port), "--data-dir", str(data_dir), "--relay", pds,
         "--directory", directory],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    line = ""
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if "listening on" in line:
            return proc
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError(f"the app view did not start: {line!r}")


def _interrupt(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    return out


def _seq(url: str, at_least: int) -> int:
    deadline = time.monotonic() + 30
    while True:
        try:
            seq = int(httpx.get(f"{url}/xrpc/_health", timeout=5).json()["sources"][0]["seq"])
        except httpx.HTTPError:
            seq = -1
        if seq >= at_least:
            return seq
        assert time.monotonic() < deadline, f"app view at seq {seq}, wanted {at_least}"
        time.sleep(0.02)  # polling another process, bounded by the deadline


@pytest.fixture
def network(tmp_path: Path) -> Iterator[tuple[str, str, str, object]]:
    dport, pport, aport = _free_port(), _free_port(), _free_port()
    directory, av = f"http://127.0.0.1:{dport}", f"http://127.0.0.1:{aport}"
    pds_app = create_app(
        PdsSettings(
            data_dir=tmp_path / "pds",
            public_url=f"http://127.0.0.1:{pport}",
            directory_url=directory,
            appview_url=av,
            appview_did=service_did_for(av),
        )
    )
    apps = [
        ServedApp("directory", create_directory(DirectorySettings.for_data_dir(tmp_path / "d"))),
        ServedApp("pds", pds_app, port=pport),
    ]
    apps[0] = ServedApp("directory", apps[0].app, port=dport)
    with ServerThread(apps) as urls:
        yield urls[0], urls[1], av, pds_app


def test_serve_appview_follows_serves_and_keeps_its_cursor(
    network: tuple[str, str, str, object], tmp_path: Path
) -> None:
    directory, pds, av, pds_app = network
    port = int(av.rsplit(":", 1)[1])
    data = tmp_path / "appview"
    handle = f"al{secrets.token_hex(3)}.test"
    r = httpx.post(
        f"{pds}/xrpc/com.atproto.server.createAccount",
        json={"handle": handle, "password": "pw-long-enough", "email": f"{handle}@x.test"},
    )
    assert r.status_code == 200, r.text
    client = Client(base_url=pds)
    client.login(handle, "pw-long-enough")
    post = client.send_post("hello from the CLI test")
    proc = _start(port, data, pds, directory)
    try:
        seq = _seq(av, pds_app.state.pds.sequencer.last_seq)  # type: ignore[attr-defined]
        feed = client.get_author_feed(handle)
        assert [i.post.uri for i in feed.feed] == [post.uri]
    finally:
        assert "stopped" in _interrupt(proc)
    assert (data / "appview.db").exists()
    second = client.send_post("written while the app view was down")
    proc = _start(port, data, pds, directory)
    try:
        assert _seq(av, seq + 1) > seq  # resumed after its stored cursor
        feed = client.get_author_feed(handle)
        assert [i.post.uri for i in feed.feed] == [second.uri, post.uri]
    finally:
        _interrupt(proc)
