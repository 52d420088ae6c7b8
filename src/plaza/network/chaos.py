"""Chaos for operators and tests: kill, slow down, partition and heal one service of a
running local network.

A service is named as in ``endpoints.json``'s ``pids`` (``pds1``, ``relay``,
``agents`` ...). Each fault leaves a marker ``D/chaos/NAME`` (JSON: the mode and, for
``slow``, the helper's pid) so that the supervisor and ``heal`` know what was done:

- ``kill``: marker first, then SIGKILL; the supervisor sees the marker and does not
  restart the service until ``heal`` removes it;
- ``partition``: SIGSTOP: the process is frozen, its sockets accept nothing and answer
  nothing (connections hang rather than being refused);
- ``slow``: a small helper process stops and continues the service in a duty cycle
  (:func:`duty_cycle`), so every request takes longer;
- ``heal``: undo whichever fault the marker records (continue a frozen process, stop
  the helper; a killed service is restarted by the supervisor once the marker is gone).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from typing import Any, Final

from plaza.errors import InvalidInputError, NotFoundError
from plaza.network.layout import Layout

MODES: Final = ("kill", "slow", "partition")
SLOW_RUN_S: Final = 0.05
"""In ``slow``, how long the service runs in each cycle ..."""
SLOW_STOP_S: Final = 0.2
"""... and how long it is stopped: it runs a fifth of the time."""


def _pids(layout: Layout) -> dict[str, int]:
    try:
        data = json.loads(layout.endpoints.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise NotFoundError(
            f"no running network under {layout.root} ({layout.endpoints} is missing)"
        ) from exc
    except ValueError as exc:
        raise InvalidInputError(f"{layout.endpoints} is not JSON: {exc}") from exc
    pids = data.get("pids", {}) if isinstance(data, dict) else {}
    return {str(k): int(v) for k, v in pids.items()}


def _pid(layout: Layout, name: str) -> int:
    pids = _pids(layout)
    if name not in pids:
        raise NotFoundError(f"no service {name!r} in {layout.endpoints}: one of {', '.join(pids)}")
    return pids[name]


def marker(layout: Layout, name: str) -> dict[str, Any] | None:
    """The fault recorded for ``name``, or None."""
    try:
        data = json.loads((layout.chaos / name).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def held(layout: Layout, name: str) -> bool:
    """``name`` was killed on purpose and must stay down (the supervisor's question)."""
    found = marker(layout, name)
    return found is not None and found.get("mode") == "kill"


def _mark(layout: Layout, name: str, record: dict[str, Any]) -> None:
    layout.chaos.mkdir(parents=True, exist_ok=True)
    tmp = layout.chaos / f".{name}.tmp"
    tmp.write_text(json.dumps(record), encoding="utf-8")
    os.replace(tmp, layout.chaos / name)


def _signal(pid: int, sig: signal.Signals) -> bool:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return False
    return True


def inflict(layout: Layout, mode: str, name: str) -> str:
    """Do ``mode`` (``kill``, ``slow``, ``partition``) to the service ``name``; returns
    what was done, in words."""
    if mode not in MODES:
        raise InvalidInputError(f"unknown fault {mode!r}: one of {', '.join(MODES)}")
    pid = _pid(layout, name)
    if marker(layout, name) is not None:
        heal(layout, name)
    if mode == "kill":
        _mark(layout, name, {"mode": "kill", "pid": pid})
        if not _signal(pid, signal.SIGKILL):
            return f"{name} (pid {pid}) was not running; it stays down until healed"
        return f"killed {name} (pid {pid}) with SIGKILL; it stays down until healed"
    if mode == "partition":
        _mark(layout, name, {"mode": "partition", "pid": pid})
        _signal(pid, signal.SIGSTOP)
        return f"froze {name} (pid {pid}) with SIGSTOP: its connections hang"
    helper = subprocess.Popen(
        [sys.executable, "-m", "plaza.network.chaos", str(pid)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    _mark(layout, name, {"mode": "slow", "pid": pid, "helper": helper.pid})
    return (
        f"slowed {name} (pid {pid}): it runs {SLOW_RUN_S:g} s of every "
        f"{SLOW_RUN_S + SLOW_STOP_S:g} s (helper pid {helper.pid})"
    )


def heal(layout: Layout, name: str) -> str:
    """Undo the fault recorded for ``name``; returns what was done, in words."""
    found = marker(layout, name)
    if found is None:
        return f"{name} has no fault to heal"
    pid = int(found.get("pid", 0))
    mode = found.get("mode")
    if mode == "slow" and found.get("helper"):
        _signal(int(found["helper"]), signal.SIGTERM)
    (layout.chaos / name).unlink(missing_ok=True)
    if mode in ("slow", "partition") and pid:
        _signal(pid, signal.SIGCONT)
        return f"{name} (pid {pid}) runs freely again"
    return f"{name} may start again: the supervisor restarts it"


def duty_cycle(pid: int, run_s: float = SLOW_RUN_S, stop_s: float = SLOW_STOP_S) -> None:
    """Stop and continue ``pid`` in turn until it is gone or this process gets SIGTERM
    (then it is continued one last time)."""
    done = False

    def stop(signum: int, frame: object) -> None:
        nonlocal done
        done = True

    signal.signal(signal.SIGTERM, stop)
    try:
        while not done:
            if not _signal(pid, signal.SIGSTOP):
                return
            time.sleep(stop_s)
            if not _signal(pid, signal.SIGCONT):
                return
            time.sleep(run_s)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)


if __name__ == "__main__":  # the ``slow`` helper: python -m plaza.network.chaos PID
    duty_cycle(int(sys.argv[1]))
