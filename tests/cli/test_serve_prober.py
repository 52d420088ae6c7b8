"""``plaza serve prober`` says what it probes and where, and reports failed rounds."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from plaza.cli import app


def test_the_prober_says_what_it_does_and_why_a_round_failed(
    tmp_path: Path, free_port: int
) -> None:
    data = tmp_path / "plaza"
    made = CliRunner().invoke(app, ["dao", "keys", "new", "p1", "--data-dir", str(data)])
    assert made.exit_code == 0, made.output
    url = f"http://127.0.0.1:{free_port}"  # nothing listens here
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "plaza"), "serve", "prober", "--as", "p1",
         "--market", url, "--interval", "0.1", "--data-dir", str(data)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None and proc.stderr is not None
        first = proc.stdout.readline()
        assert first.startswith("probing for did:key:") and "(p1)" in first, first
        assert f"active contract at {url}" in first
        warning = proc.stderr.readline()  # the first round cannot reach the market
        assert warning.startswith("warning: probe round failed"), warning
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert "stopped" in out
