"""The relay benchmark's accounting, end to end at toy size with real processes and
sockets: every frame the simulated hosts send comes out of the relay under test and is
matched to its send time, no lag is negative, and the four promised keys are there.
No timing is asserted."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from plaza.bench.relay import RelayBenchConfig, run
from plaza.cli import app

TARGETS = ["echo", "relay"]


@pytest.mark.parametrize("target", TARGETS)
def test_every_frame_sent_is_matched(tmp_path: Path, target: str) -> None:
    config = RelayBenchConfig(
        hosts=2,
        accounts=2,
        records=10,
        rates=(20.0, 40.0),
        seconds=1.0,
        warmup=0.5,
        target=target,
        cache=tmp_path,
        progress=False,
    )
    result = run(config)
    assert result["hosts"] == 2 and result["accounts"] == 4
    assert result["frames_released"] > 0
    assert result["frames_emitted"] == result["frames_released"]
    assert result["emitted_not_sent"] == 0 and result["duplicates"] == 0
    assert result["output_kinds"].get("#commit") == result["frames_released"]
    assert result["dids_registered"] == 4
    for step in result["steps"]:
        assert step["scheduled"] > 0
        assert step["missing"] == 0
        assert step["min_lag_ms"] >= 0
        assert step["lag_ms"]["p50"] <= step["lag_ms"]["p99"] <= step["lag_ms"]["max"]
        # the relay's own count of verified commits agrees with what the hosts sent
        assert step["metrics_verified"] == step["released"] >= step["scheduled"]
        assert step["metrics_dropped"] == {}
    assert sum(s["released"] for s in result["steps"]) + 4 <= result["frames_released"]
    assert result["relay_dropped_total"] == {} or not any(result["relay_dropped_total"].values())
    assert result["rss_mib"] > 0


def test_cli_prints_the_four_keys(tmp_path: Path) -> None:
    args = ["bench", "relay", "--hosts", "2", "--accounts", "1", "--records", "5"]
    args += ["--rate", "10", "--seconds", "1", "--warmup", "0.5", "--target", "echo"]
    args += ["--cache", str(tmp_path), "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert {"verified_commits_per_s", "p99_lag_ms", "rss_mib", "hosts"} <= out.keys()
    assert out["hosts"] == 2 and out["sustained"]["lag_limit_ms"] == 250
    assert out["steps"][0]["offered_per_s"] == 10


def _processes_naming(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if text in argv:
                found.append(int(entry.name))
    return found


def test_sigterm_stops_the_run_and_its_processes(tmp_path: Path) -> None:
    work = tmp_path / "work"
    args = [sys.executable, "-m", "plaza.cli", "bench", "relay", "--hosts", "2"]
    args += ["--accounts", "1", "--records", "5", "--rate", "5", "--seconds", "600"]
    args += ["--cache", str(tmp_path / "cache"), "--work-dir", str(work), "--json"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        # the relay is running once the hosts report a subscriber: wait for its data dir
        while not _processes_naming(str(work / "relay")):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.05)  # polling another process, with a deadline
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1
    assert b"error: the run was stopped" in err
    assert _processes_naming(str(work)) == []
