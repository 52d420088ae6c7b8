"""``plaza serve provider`` says what it does, reports failed passes on standard error,
never prints the PDS's admin password, and stops on Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from plaza.cli import app


def test_the_provider_daemon_says_what_it_does_and_why_a_pass_failed(
    tmp_path: Path, free_port: int
) -> None:
    data = tmp_path / "provider1"
    made = CliRunner().invoke(app, ["dao", "keys", "new", "provider", "--data-dir", str(data)])
    assert made.exit_code == 0, made.output
    url = f"http://127.0.0.1:{free_port}"  # nothing listens here
    secret = "admin-secret-do-not-print"
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "plaza"), "serve", "provider", "--as", "provider",
         "--market", url, "--pds", url + "/pds", "--interval", "0.1", "--standby",
         "--data-dir", str(data)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PLAZA_PDS_ADMIN_PASSWORD": secret},
    )  # fmt: skip
    try:
        assert proc.stdout is not None and proc.stderr is not None
        first = proc.stdout.readline()
        assert first.startswith("standby provider (no contract yet) did:key:"), first
        assert f"signs at {url}" in first
        warning = proc.stderr.readline()  # the first pass cannot reach the market
        assert warning.startswith("warning: pass failed: ConnectError"), warning
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert "stopped" in out
    assert secret not in out + err + first + warning
