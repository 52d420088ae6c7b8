"""Helpers for tests on the real NATS JetStream at 127.0.0.1:4222 (skipped, with the
reason, when it is not running), and for a server of the test's own."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from plaza.services.bus import Bus, BusLayout

NATS_URL = "nats://127.0.0.1:4222"
SKIP_REASON = "NATS not running at 127.0.0.1:4222"


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_nats() -> None:
    if not _reachable("127.0.0.1", 4222):
        pytest.skip(SKIP_REASON)


@contextlib.contextmanager
def fresh_layout(partitions: int = 4, url: str = NATS_URL) -> Iterator[BusLayout]:
    """A layout with a stream name of its own; the stream and lease bucket are deleted
    after."""
    require_nats()
    layout = BusLayout(f"T_{uuid.uuid4().hex[:10]}", partitions)
    try:
        yield layout
    finally:

        async def drop() -> None:
            bus = await Bus.connect(url, layout)
            for name in (layout.stream, f"KV_{layout.lease_bucket}"):
                with contextlib.suppress(Exception):
                    await bus.js.delete_stream(name)
            await bus.close()

        with contextlib.suppress(Exception):
            asyncio.run(drop())


class OwnNats:
    """A ``nats-server -js`` process of the test's own, on a free port, with its store in
    a directory that outlives a restart."""

    def __init__(self, store: Path) -> None:
        binary = shutil.which("nats-server")
        if binary is None:
            pytest.skip("nats-server binary not installed (needed to restart a server)")
        self.binary = binary
        self.store = store
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.url = f"nats://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.binary, "-js", "-a", "127.0.0.1", "-p", str(self.port), "-sd", str(self.store)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not _reachable("127.0.0.1", self.port):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("nats-server did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None
