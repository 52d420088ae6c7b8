"""Chaos on real processes: a partition freezes a process and heal continues it; slow
stops and continues it through a helper process; kill leaves a marker the supervisor
honours; each fault is undone by heal; bad names are refused."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from plaza.errors import InvalidInputError, NotFoundError
from plaza.network import chaos
from plaza.network.layout import Layout
from tests.services.archive.conftest import wait_for


def _state(pid: int) -> str:
    """The process state letter from /proc (R, S, T ...); '' once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("State:"):
                return line.split()[1]
    except FileNotFoundError:
        pass
    return ""


@pytest.fixture
def target(tmp_path: Path) -> Iterator[tuple[Layout, subprocess.Popen[bytes]]]:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    layout = Layout(tmp_path / "plaza")
    layout.root.mkdir()
    layout.endpoints.write_text(json.dumps({"pids": {"relay": proc.pid}}))
    yield layout, proc
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGCONT)
        proc.kill()
    proc.wait()


def test_partition_freezes_and_heal_continues(
    target: tuple[Layout, subprocess.Popen[bytes]],
) -> None:
    layout, proc = target
    said = chaos.inflict(layout, "partition", "relay")
    assert f"froze relay (pid {proc.pid})" in said
    wait_for("the process to stop", lambda: _state(proc.pid) == "T")
    assert chaos.marker(layout, "relay") == {"mode": "partition", "pid": proc.pid}
    assert not chaos.held(layout, "relay")
    assert "runs freely again" in chaos.heal(layout, "relay")
    wait_for("the process to run again", lambda: _state(proc.pid) in ("S", "R"))
    assert chaos.marker(layout, "relay") is None
    assert chaos.heal(layout, "relay") == "relay has no fault to heal"


def test_slow_cycles_the_process_until_healed(
    target: tuple[Layout, subprocess.Popen[bytes]],
) -> None:
    layout, proc = target
    assert "slowed relay" in chaos.inflict(layout, "slow", "relay")
    found = chaos.marker(layout, "relay")
    assert found is not None and found["mode"] == "slow"
    helper = int(found["helper"])
    wait_for("the helper to stop the process", lambda: _state(proc.pid) == "T")
    chaos.heal(layout, "relay")
    wait_for("the helper to end", lambda: _state(helper) in ("", "Z"))
    wait_for("the process to run again", lambda: _state(proc.pid) in ("S", "R"))


def test_kill_holds_the_service_down_until_healed(
    target: tuple[Layout, subprocess.Popen[bytes]],
) -> None:
    layout, proc = target
    assert chaos.inflict(layout, "kill", "relay").startswith(f"killed relay (pid {proc.pid})")
    assert proc.wait(timeout=30) == -signal.SIGKILL
    assert chaos.held(layout, "relay")
    assert "restarts it" in chaos.heal(layout, "relay")
    assert not chaos.held(layout, "relay")


def test_unknown_services_faults_and_networks_are_refused(
    target: tuple[Layout, subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    layout, proc = target
    with pytest.raises(NotFoundError, match="no service 'pds9'"):
        chaos.inflict(layout, "kill", "pds9")
    with pytest.raises(InvalidInputError, match="unknown fault"):
        chaos.inflict(layout, "melt", "relay")
    with pytest.raises(NotFoundError, match="no running network"):
        chaos.inflict(Layout(tmp_path / "elsewhere"), "kill", "relay")
    assert _state(proc.pid) in ("S", "R") and not layout.chaos.exists()


def test_the_command_line_names_what_it_did(
    target: tuple[Layout, subprocess.Popen[bytes]],
) -> None:
    layout, proc = target
    run = [sys.executable, "-m", "plaza.cli", "chaos"]
    done = subprocess.run([*run, "partition", "relay", "--data-dir", str(layout.root)],
                          capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    assert f"froze relay (pid {proc.pid})" in done.stdout
    healed = subprocess.run([*run, "heal", "relay", "--data-dir", str(layout.root)],
                            capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    assert "runs freely again" in healed.stdout
    bad = subprocess.run([*run, "kill", "nope", "--data-dir", str(layout.root)],
                         capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert bad.returncode == 1 and "no service 'nope'" in bad.stderr
