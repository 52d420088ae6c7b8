"""``plaza serve directory`` as a user runs it: a real process, a real port, Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.services.directory.helpers import identity


def serve(service: str, *args: str) -> tuple[subprocess.Popen[str], str]:
    """``plaza serve SERVICE ARGS`` as a real process, and the URL it says it listens on."""
    proc = subprocess.Popen(
        [sys.executable, "-c", "from plaza.cli import main; main()", "serve", service, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    line = ""
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if "listening on" in line:
            return proc, line.split("listening on", 1)[1].strip()
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError(f"the {service} did not start: {line!r}")


def _start(port: int, data_dir: Path) -> tuple[subprocess.Popen[str], str]:
    return serve("directory", "--port", str(port), "--data-dir", str(data_dir))


def _interrupt(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    return out


def test_serve_directory_prints_its_url_keeps_data_and_stops_on_ctrl_c(
    free_port: int, tmp_path: Path
) -> None:
    alice = identity("alice.test")
    proc, url = _start(free_port, tmp_path)
    try:
        assert url == f"http://127.0.0.1:{free_port}"
        assert httpx.get(f"{url}/_health").status_code == 200
        assert httpx.post(f"{url}/{alice.did}", json=alice.genesis.to_json()).status_code == 200
    finally:
        out = _interrupt(proc)
    assert "stopped" in out
    assert (tmp_path / "directory.db").exists()
    # Restarted on the same data dir, it still knows the DID.
    proc, url = _start(free_port, tmp_path)
    try:
        doc = httpx.get(f"{url}/{alice.did}").json()
        assert doc["alsoKnownAs"] == ["at://alice.test"]
    finally:
        _interrupt(proc)


def test_serve_directory_on_a_taken_port_exits_1(free_port: int, tmp_path: Path) -> None:
    proc, _ = _start(free_port, tmp_path / "a")
    try:
        second = subprocess.run(
            [sys.executable, "-c", "from plaza.cli import main; main()", "serve", "directory",
             "--port", str(free_port), "--data-dir", str(tmp_path / "b")],
            check=False, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert second.returncode == 1
        assert "cannot listen on" in second.stderr
    finally:
        _interrupt(proc)
