"""``plaza up``: a real process, the SDK against it, Ctrl-C, restart, nothing lost."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from atproto import Client, models


def _free_base() -> int:
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = int(s.getsockname()[1])
        if base > 60000:
            continue
        try:
            socks = []
            for p in (base, base + 1, base + 2):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no three consecutive free ports")


def _start(data_dir: Path, base: int) -> subprocess.Popen[str]:
    exe = Path(sys.executable).with_name("plaza")
    return subprocess.Popen(
        [str(exe), "up", "--data-dir", str(data_dir), "--port-base", str(base)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def _wait_ready(proc: subprocess.Popen[str], data_dir: Path) -> dict[str, object]:
    deadline = time.time() + 30
    path = data_dir / "endpoints.json"
    while time.time() < deadline:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        if path.exists():
            endpoints: dict[str, object] = json.loads(path.read_text())
            url = endpoints["pds"][1]  # type: ignore[index]
            try:
                if httpx.get(f"{url}/xrpc/_health").status_code == 200:
                    return endpoints
            except httpx.HTTPError:
                pass
        time.sleep(0.1)
    raise AssertionError("plaza up did not become ready")


def _stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    return out


def test_plaza_up_runs_the_network_and_keeps_everything(tmp_path: Path) -> None:
    data_dir = tmp_path / "plaza"
    base = _free_base()
    proc = _start(data_dir, base)
    try:
        endpoints = _wait_ready(proc, data_dir)
        assert endpoints["directory"] == f"http://127.0.0.1:{base}"
        assert endpoints["pds"] == [f"http://127.0.0.1:{base + 1}", f"http://127.0.0.1:{base + 2}"]
        pds = endpoints["pds"][0]  # type: ignore[index]
        client = Client(base_url=pds)
        client.com.atproto.server.create_account(
            models.ComAtprotoServerCreateAccount.Data(handle="alice.test", password="a long pw")
        )
        client.login("alice.test", "a long pw")
        post = client.send_post("hello, local Plaza")
        # The second PDS is independent (its own keys, below), but the network has one
        # handle authority: it resolves alice.test to the same DID and will not give it out.
        second = endpoints["pds"][1]  # type: ignore[index]
        other = httpx.get(
            f"{second}/xrpc/com.atproto.identity.resolveHandle", params={"handle": "alice.test"}
        )
        assert other.status_code == 200 and other.json() == {"did": client.me.did}  # type: ignore[union-attr]
        taken = httpx.post(
            f"{second}/xrpc/com.atproto.server.createAccount",
            json={"handle": "alice.test", "password": "another long pw"},
        )
        assert taken.status_code == 400 and taken.json()["error"] == "HandleNotAvailable"
    finally:
        out = _stop(proc)
    assert "pds1" in out and "from atproto import Client" in out and "stopped" in out
    keys = {
        json.loads((data_dir / f"pds{i}" / "secrets.json").read_text())["rotation_key"]
        for i in (1, 2)
    }
    assert len(keys) == 2

    proc = _start(data_dir, base)
    try:
        _wait_ready(proc, data_dir)
        client = Client(base_url=pds)
        client.login("alice.test", "a long pw")
        again = client.get_post(post.uri.rsplit("/", 1)[1], client.me.did)  # type: ignore[union-attr]
        assert again.value.text == "hello, local Plaza"
    finally:
        _stop(proc)
