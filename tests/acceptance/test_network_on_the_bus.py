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
import signal
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import nats.js.errors
import pytest

from atproto import Client, models
from plaza.services.bus import Bus, BusLayout
from plaza.services.bus.layout import partition_of
from plaza.services.bus.leases import Leases
from tests.acceptance.plaza_up import PLAZA, Up, until
from tests.conftest import _PG_MISSING, PG_URL
from tests.services.bus.natsutil import NATS_URL, fresh_layout

INDEXERS = ("appview-indexer-1", "appview-indexer-2")


def _owners(layout: BusLayout) -> dict[int, str]:
    """Each leased partition's holder, read from the lease bucket."""

    async def read() -> dict[int, str]:
        bus = await Bus.connect(NATS_URL, layout)
        try:
            try:
                kv = await bus.js.key_value(layout.lease_bucket)
            except nats.js.errors.BucketNotFoundError:
                return {}  # no worker has opened the bucket yet
            # a lease released between listing and reading is skipped, not an error
            return await Leases(kv, "", "appview").holders()
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


@pytest.fixture
def network(tmp_path: Path) -> Iterator[tuple[Up, BusLayout]]:
    if _PG_MISSING:
        pytest.skip(_PG_MISSING)
    schema = f"t_{uuid.uuid4().hex[:10]}"
    with fresh_layout(partitions=16) as layout:  # skips when NATS is not running
        bus = ["--postgres", f"{PG_URL}?schema={schema}", "--bus", NATS_URL,
               "--indexers", "2", "--bus-stream", layout.stream]  # fmt: skip
        up = Up(tmp_path / "plaza", bus, {"PLAZA_ASSIST": "none"})
        try:
            until("plaza up to start every service", up.ready, timeout=150)
            yield up, layout
        finally:
            up.stop()
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
    assert {*INDEXERS, "labeler-worker-1"} <= net["pids"].keys()
    assert "appview-indexer-1" not in net  # no port: not an HTTP endpoint
    # The labeler follows no firehose either: its worker labels into its store.
    labeler = httpx.get(f"{net['labeler']}/xrpc/_health", timeout=10).json()
    assert labeler["sources"] == []
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

    owners = until("both indexers to hold their share of the partitions", balanced)
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
    until("the follower's timeline to show the post", _shows(reader, first.uri))

    kill = [*PLAZA, "chaos", "kill", INDEXERS[0], "--data-dir", str(up.data_dir)]
    done = subprocess.run(kill, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    second = author.send_post(f"after the kill {tag}")
    until("the post after the kill in the follower's timeline", _shows(reader, second.uri))
    assert _owners(layout).get(partition) == INDEXERS[1]  # taken over, not restarted
    assert up.endpoints()["exited"][INDEXERS[0]]["returncode"] == -signal.SIGKILL
