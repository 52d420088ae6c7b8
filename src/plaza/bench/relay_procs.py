"""Child processes of ``plaza bench relay`` and what ``/proc`` says about them.

The harness runs the directory, the simulated hosts and the relay under test each as
its own OS process (:class:`Child`), and reads the relay's CPU time and memory from
``/proc`` (:func:`usage`), summed over the relay and every process below it, so a
relay that verifies in worker processes is charged for them too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import httpx

from plaza.errors import PlazaError

_CLK_TCK: Final = os.sysconf("SC_CLK_TCK")
_PAGE: Final = os.sysconf("SC_PAGE_SIZE")


class BenchProcessError(PlazaError):
    """A process of the bench did not start, or stopped answering."""

    code = "BenchProcessFailed"


@dataclass(frozen=True)
class Usage:
    """CPU seconds (user + system) and resident memory of a process tree, and the CPU
    seconds of each of its processes (the root first)."""

    cpu_s: float
    rss_bytes: int
    processes: int
    per_process: dict[int, float]


def _stat(pid: int) -> tuple[int, float, int] | None:
    """(parent pid, CPU seconds, RSS bytes) of ``pid``, None if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    # after the name: state ppid ... utime(14) stime(15) ... rss(24), 1-based in proc(5)
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / _CLK_TCK, int(fields[21]) * _PAGE


def usage(root: int) -> Usage:
    """CPU time and RSS of ``root`` and all its descendants, now."""
    stats: dict[int, tuple[int, float, int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and (st := _stat(int(entry.name))) is not None:
            stats[int(entry.name)] = st
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    rss, todo, per = 0, [root], {}
    while todo:
        pid = todo.pop(0)
        if pid in stats:
            per[pid] = stats[pid][1]
            rss += stats[pid][2]
            todo += children.get(pid, [])
    return Usage(sum(per.values()), rss, len(per), per)


def peak_rss(pid: int) -> int:
    """The process's peak resident memory (``VmHWM``) in bytes, 0 if unknown."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def machine_busy_s() -> float:
    """CPU seconds the whole machine has spent busy (not idle or waiting on I/O) since
    boot, over all cores (``/proc/stat``): a step's share that is not the bench's own
    processes is the neighbours'."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    ticks = [int(x) for x in fields]
    idle = ticks[3] + ticks[4]  # idle, iowait
    return (sum(ticks[:8]) - idle) / _CLK_TCK


def free_port() -> int:
    """A loopback port free right now (for a child that must be told its port)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Child:
    """One child process, its output in a log file or, with ``lines``, on a pipe of
    JSON lines (one command in, one answer out)."""

    def __init__(self, name: str, proc: asyncio.subprocess.Process, log: Path) -> None:
        self.name, self.proc, self.log = name, proc, log

    @classmethod
    async def start(cls, name: str, argv: list[str], log: Path, *, lines: bool = False) -> Child:
        with log.open("wb") as out:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE if lines else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE if lines else out,
                stderr=out,
            )
        return cls(name, proc, log)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _failed(self, what: str) -> BenchProcessError:
        tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
        return BenchProcessError(f"{self.name} {what}; its log ends with:\n{tail}")

    async def read(self, timeout: float = 600.0) -> dict[str, Any]:
        """The next JSON line the child prints."""
        assert self.proc.stdout is not None
        try:
            line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        except TimeoutError as exc:
            raise self._failed(f"printed nothing for {timeout:g} s") from exc
        if not line:
            raise self._failed("exited")
        value: dict[str, Any] = json.loads(line)
        return value

    async def ask(self, command: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(command).encode() + b"\n")
        await self.proc.stdin.drain()
        return await self.read(60.0)

    async def wait_healthy(self, url: str, timeout: float = 60.0) -> None:
        """Poll ``url`` until it answers 200 (every 0.1 s, at most ``timeout``)."""
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.proc.returncode is not None:
                    raise self._failed("exited")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(url)).status_code == 200:
                        return
                await asyncio.sleep(0.1)
        raise self._failed(f"did not answer {url} within {timeout:g} s")

    async def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM (services stop gracefully on it, which also lets cProfile write its
        file; SIGINT would not do, a background job may ignore it), then SIGKILL after
        ``timeout``; returns the exit code."""
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), timeout)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
                await self.proc.wait()
        return self.proc.returncode
