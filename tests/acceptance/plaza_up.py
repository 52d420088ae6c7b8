"""A ``plaza up`` process tree for the acceptance tests, and waiting on what it does."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import httpx
from atproto_client.exceptions import AtProtocolError

from plaza.network.processes import PORTS
from tests.cli.test_up import _free_base

PLAZA = [sys.executable, "-m", "plaza.cli"]

T = TypeVar("T")


def until(what: str, probe: Callable[[], T | None], timeout: float = 240.0) -> T:
    """Poll ``probe`` (other processes do the work) until it returns something other
    than None; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = probe()
        except (httpx.HTTPError, OSError, ValueError, KeyError, AtProtocolError) as exc:
            last, value = exc, None
        if value is not None:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what} (last error: {last!r})")


class Up:
    """``plaza up`` on free ports with ``args``; its console in a file beside the data."""

    def __init__(
        self, data_dir: Path, args: Sequence[str], env: Mapping[str, str] | None = None
    ) -> None:
        self.data_dir = data_dir
        self.console = data_dir.parent / "console.txt"
        with self.console.open("wb") as out:
            self.proc = subprocess.Popen(
                [*PLAZA, "up", "--data-dir", str(data_dir),
                 "--port-base", str(_free_base(PORTS)), *args],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
            )  # fmt: skip

    def output(self) -> str:
        return self.console.read_text()

    def endpoints(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.data_dir / "endpoints.json").read_text())
        return data

    def ready(self) -> dict[str, Any] | None:
        assert self.proc.poll() is None, self.output()
        return self.endpoints() if "Ctrl-C stops the network." in self.output() else None

    def stop(self) -> None:
        """Ctrl-C's signal; a kill if the network has not stopped within 90 s."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
