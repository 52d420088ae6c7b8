"""Issue 17's ``plaza up --bus``: the network with its firehose and the app view's
indexers on the real NATS JetStream and PostgreSQL.

``plaza up --bus nats://127.0.0.1:4222 --postgres URL --indexers 2`` as a real process
tree (a stream and schemas of this run's own, dropped after). Members sign up and post
with the atproto SDK; one follows another, and the follower's timeline, read through the
app view (which follows no firehose: only the indexers write), shows the post. Then the
indexer holding the author's partition is killed with ``plaza chaos kill``, the author
posts again, and the post still appears: the other indexer took the partition over.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from atproto_client.exceptions import AtProtocolError

from atproto import Client, models
from plaza.network.processes import PORTS
from plaza.services.bus import Bus, BusLayout
from plaza.services.bus.layout import partition_of
from tests.cli.test_up import _free_base
from tests.conftest import _PG_MISSING, PG_URL
from tests.services.bus.natsutil import NATS_URL, fresh_layout

PLAZA = [sys.executable, "-m", "plaza.cli"]
INDEXERS = ("appview-indexer-1", "appview-indexer-2")
T = TypeVar("T")


def _until(what: str, probe: Callable[[], T | None], timeout: float = 90.0) -> T:
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


def _owners(layout: BusLayout) -> dict[int, str]:
    """Each leased partition's holder, read from the lease bucket."""

    async def read() -> dict[int, str]:
        bus = await Bus.connect(NATS_URL, layout)
        try:
            kv = await bus.js.key_value(layout.lease_bucket)
            out = {}
            for key in await kv.keys():
                if key.startswith("p."):
                    entry = await kv.get(key)
                    out[int(key[2:])] = (entry.value or b"").decode()
            return out
        finally:
            await bus.close()

    return asyncio.run(read())


def _drop_schemas(prefix: str) -> None:
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s", (f"{prefix}\\_%",)
        ).fetchall()
        for (name,) in rows:
            conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


class Up:
    """``plaza up --bus`` on a stream and schemas of its own; its console in a file."""

    def __init__(self, data_dir: Path, layout: BusLayout, schema: str) -> None:
        self.data_dir = data_dir
        self.console = data_dir.parent / "console.txt"
        with self.console.open("wb") as out:
            self.proc = subprocess.Popen(
                [*PLAZA, "up", "--data-dir", str(data_dir),
                 "--port-base", str(_free_base(PORTS)),
                 "--postgres", f"{PG_URL}?schema={schema}",
                 "--bus", NATS_URL, "--indexers", "2", "--bus-stream", layout.stream],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env={**os.environ, "PYTHONUNBUFFERED": "1", "PLAZA_ASSIST": "none"},
            )  # fmt: skip

    def output(self) -> str:
        return self.console.read_text()

    def endpoints(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.data_dir / "endpoints.json").read_text())
        return data

    def ready(self) -> dict[str, Any] | None:
        assert self.proc.poll() is None, self.output()
        return self.endpoints() if "Ctrl-C stops the network." in self.output() else None


@pytest.fixture
def network(tmp_path: Path) -> Iterator[tuple[Up, BusLayout]]:
    if _PG_MISSING:
        pytest.skip(_PG_MISSING)
    schema = f"t_{uuid.uuid4().hex[:10]}"
    with fresh_layout(partitions=16) as layout:  # skips when NATS is not running
        up = Up(tmp_path / "plaza", layout, schema)
        try:
            _until("plaza up to start every service", up.ready, timeout=150)
            yield up, layout
        finally:
            up.proc.send_signal(signal.SIGTERM)
            try:
                up.proc.wait(timeout=90)
            except subprocess.TimeoutExpired:
                up.proc.kill()
                up.proc.wait()
            with contextlib.suppress(Exception):
                _drop_schemas(schema)


def _member(pds: str, handle: str) -> Client:
    client = Client(base_url=pds)
    client.com.atproto.server.create_account(
        models.ComAtprotoServerCreateAccount.Data(handle=handle, password="a long pw")
    )
    client.login(handle, "a long pw")
    return client


def _shows(reader: Client, uri: str) -> Callable[[], bool | None]:
    def probe() -> bool | None:
        return True if uri in {item.post.uri for item in reader.get_timeline().feed} else None

    return probe


def test_indexers_on_the_bus_serve_timelines_and_take_over_a_killed_ones_partitions(
    network: tuple[Up, BusLayout],
) -> None:
    up, layout = network
    net = up.endpoints()
    assert set(INDEXERS) <= net["pids"].keys()
    assert "appview-indexer-1" not in net  # no port: not an HTTP endpoint
    # The app view follows no firehose (the indexers write) but still the labeler's labels.
    health = httpx.get(f"{net['appview']}/_health", timeout=10).json()
    assert health["sources"] == [] and [s["did"] for s in health["labelers"]] == [
        net["labeler_did"]
    ]

    # The two indexers share the 16 partitions, 8 each.
    def balanced() -> dict[int, str] | None:
        owners = _owners(layout)
        held = sorted(owners.values())
        return owners if held == sorted([INDEXERS[0]] * 8 + [INDEXERS[1]] * 8) else None

    owners = _until("both indexers to hold their share of the partitions", balanced)
    tag = uuid.uuid4().hex[:6]
    reader = _member(net["hosts"]["pds2"], f"reader-{tag}.test")
    # An author whose events land on a partition the first indexer holds.
    author = None
    for i in range(16):
        candidate = _member(net["hosts"]["pds1"], f"author{i}-{tag}.test")
        if owners.get(partition_of(candidate.me.did, 16)) == INDEXERS[0]:  # type: ignore[union-attr]
            author = candidate
            break
    assert author is not None, "no account's partition held by appview-indexer-1"
    partition = partition_of(author.me.did, 16)  # type: ignore[union-attr]
    reader.follow(author.me.did)  # type: ignore[union-attr]
    first = author.send_post(f"before the kill {tag}")
    _until("the follower's timeline to show the post", _shows(reader, first.uri))

    kill = [*PLAZA, "chaos", "kill", INDEXERS[0], "--data-dir", str(up.data_dir)]
    done = subprocess.run(kill, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    second = author.send_post(f"after the kill {tag}")
    _until("the post after the kill in the follower's timeline", _shows(reader, second.uri))
    assert _owners(layout).get(partition) == INDEXERS[1]  # taken over, not restarted
    assert up.endpoints()["exited"][INDEXERS[0]]["returncode"] == -signal.SIGKILL
