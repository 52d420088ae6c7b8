"""``plaza bench appview --bus URL --db URL --workers 1,2 --kill-one``: indexer
processes sharing the bus's partitions.

One network (:mod:`plaza.bench.bus_fixture`: accounts with real ``did:plc``
identities in a real directory, their earlier posts backfilled, the last ``live`` posts
as signed ``#commit`` frames) is indexed once per entry of ``workers``, each time into
a fresh PostgreSQL schema from a fresh JetStream stream:

- ``workers`` processes ``plaza serve appview-indexer`` start and the bench waits until
  they hold every partition between them, evenly;
- the frames are published as the relay publishes them (partitioned by DID, one
  ``Nats-Msg-Id`` each), and ``index_records_per_s`` is the live posts over the seconds
  from the first publish until the ``posts`` table holds them all.

``kill_one`` adds a run with two workers in which one is killed with SIGKILL once a
third of the posts are indexed; the other takes its partitions over when their leases
lapse. ``lost`` is the live posts missing at the end and ``duplicated`` the posts counted
more than once (the authors' post counters over the rows, plus rows over posts
published): both are 0 when every event took effect exactly once.
``speedup_2_over_1`` compares the last run with two workers to the last with one.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Final

import psycopg

from plaza.bench import bus_fixture
from plaza.services.bus import Bus, BusLayout
from plaza.services.bus.leases import Leases

PARTITIONS: Final = 16
LEASE_S: Final = 3.0
STALL_S: Final = 120.0  # no progress for this long: the run failed


def run(
    *,
    bus_url: str,
    db: str,
    workers: list[int],
    kill_one: bool,
    accounts: int = 1000,
    posts: int = 25_000,
    live: int = 20_000,
) -> dict[str, Any]:
    """Measure (see the module docstring); ``db`` is a PostgreSQL URL."""
    load_before = os.getloadavg()
    network = bus_fixture.build(accounts=accounts, posts=posts, live=min(live, posts))
    out: dict[str, Any] = {"runs": []}
    with (
        tempfile.TemporaryDirectory(prefix="plaza-bench-bus-") as tmp,
        bus_fixture.directory(network, Path(tmp) / "d") as directory,
    ):
        for n in workers:
            out["runs"].append(_one(network, bus_url, db, directory, n, kill=False))
        if kill_one:
            out["kill"] = _one(network, bus_url, db, directory, 2, kill=True)
    out["live_posts"] = len(network.events)
    out["partitions"] = PARTITIONS
    out["loadavg_before"] = [round(x, 2) for x in load_before]
    out["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    rates = {r["workers"]: r["index_records_per_s"] for r in out["runs"]}
    if 1 in rates and 2 in rates and rates[1]:
        out["speedup_2_over_1"] = round(rates[2] / rates[1], 2)
    return out


def _one(
    network: bus_fixture.BusNetwork,
    bus_url: str,
    db: str,
    directory: str,
    n: int,
    *,
    kill: bool,
) -> dict[str, Any]:
    schema = f"bench_bus_{uuid.uuid4().hex[:10]}"
    url = f"{db}{'&' if '?' in db else '?'}schema={schema}"
    layout = BusLayout(f"BENCH_{uuid.uuid4().hex[:10]}", PARTITIONS)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        base = network.backfill(url)
        asyncio.run(_make_stream(bus_url, layout))
        procs = [start_worker(bus_url, url, directory, layout, f"w{k}") for k in range(n)]
        asyncio.run(wait_balanced(bus_url, layout, n, procs))
        load = os.getloadavg()[0]
        t = time.perf_counter()
        asyncio.run(_publish(bus_url, layout, network.events))
        expected = base + len(network.events)
        killed = None
        if kill:
            wait_posts(db, schema, base + len(network.events) // 3, procs)
            procs[0].send_signal(signal.SIGKILL)
            procs[0].wait()
            killed = procs[0].pid
        took = wait_posts(db, schema, expected, procs[1:] if kill else procs, t0=t)
        result: dict[str, Any] = {
            "workers": n,
            "index_records_per_s": round(len(network.events) / took, 1),
            "seconds": round(took, 2),
            "loadavg_1m": round(load, 2),
        }
        if kill:
            lost, duplicated = count_posts(db, schema, expected)
            result = {"workers": n, "killed_pid": killed, "lost": lost, "duplicated": duplicated}
            result["seconds"] = round(took, 2)
        return result
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
        with contextlib.suppress(Exception):
            asyncio.run(_drop_stream(bus_url, layout))
        with psycopg.connect(db, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def start_worker(
    bus_url: str,
    db_url: str,
    directory: str,
    layout: BusLayout,
    worker_id: str,
    *,
    lease_s: float = LEASE_S,
) -> subprocess.Popen[bytes]:
    """Start one ``plaza serve appview-indexer`` process."""
    cmd = [
        sys.executable,
        "-m",
        "plaza.cli",
        "serve",
        "appview-indexer",
        "--bus",
        bus_url,
        "--db",
        db_url,
        "--directory",
        directory,
        "--stream",
        layout.stream,
        "--partitions",
        str(layout.partitions),
        "--worker-id",
        worker_id,
        "--lease-s",
        str(lease_s),
    ]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def _make_stream(bus_url: str, layout: BusLayout) -> None:
    bus = await Bus.connect(bus_url, layout)
    try:
        await bus.ensure_stream(10_000_000)
    finally:
        await bus.close()


async def wait_balanced(
    bus_url: str,
    layout: BusLayout,
    n: int,
    procs: list[subprocess.Popen[bytes]],
    *,
    lease_s: float = LEASE_S,
) -> None:
    """Wait until ``n`` workers hold every partition, none more than its share."""
    bus = await Bus.connect(bus_url, layout)
    try:
        leases = await Leases.open(bus, "bench", lease_s, group="appview")
        share = math.ceil(layout.partitions / n)
        deadline = time.monotonic() + STALL_S
        while time.monotonic() < deadline:
            for p in procs:
                if p.poll() is not None:
                    raise RuntimeError(f"indexer exited with {p.returncode} before starting")
            holders = await leases.holders()
            counts: dict[str, int] = {}
            for worker in holders.values():
                counts[worker] = counts.get(worker, 0) + 1
            if (
                len(holders) == layout.partitions
                and len(counts) == n
                and max(counts.values()) <= share
            ):
                return
            await asyncio.sleep(0.1)
        raise RuntimeError("the indexers did not share the partitions in time")
    finally:
        await bus.close()


async def _publish(bus_url: str, layout: BusLayout, events: list[tuple[int, str, bytes]]) -> None:
    bus = await Bus.connect(bus_url, layout)
    try:
        for start in range(0, len(events), 500):
            await bus.publish(events[start : start + 500])
    finally:
        await bus.close()


async def _drop_stream(bus_url: str, layout: BusLayout) -> None:
    bus = await Bus.connect(bus_url, layout)
    try:
        await bus.js.delete_stream(layout.stream)
        await bus.js.delete_stream(f"KV_{layout.lease_bucket}")
    finally:
        await bus.close()


def wait_posts(
    db: str,
    schema: str,
    target: int,
    procs: list[subprocess.Popen[bytes]],
    *,
    t0: float | None = None,
    stall_s: float = STALL_S,
) -> float:
    """Poll until the schema's ``posts`` hold ``target`` rows; return the seconds since
    ``t0``. Fails when every worker exited or nothing moved for :data:`STALL_S`."""
    start = time.perf_counter() if t0 is None else t0
    last, moved = -1, time.monotonic()
    with psycopg.connect(db, autocommit=True) as conn:
        while True:
            row = conn.execute(f'SELECT COUNT(*) FROM "{schema}".posts').fetchone()
            count = int(row[0]) if row else 0
            if count >= target:
                return time.perf_counter() - start
            if count != last:
                last, moved = count, time.monotonic()
            if time.monotonic() - moved > stall_s or (
                procs and all(p.poll() is not None for p in procs)
            ):
                raise RuntimeError(f"indexing stalled at {count} of {target} posts")
            time.sleep(0.05)


def count_posts(db: str, schema: str, expected: int) -> tuple[int, int]:
    """``(lost, duplicated)`` of the posts (see the module docstring)."""
    with psycopg.connect(db, autocommit=True) as conn:
        rows = conn.execute(f'SELECT COUNT(*) FROM "{schema}".posts').fetchone()
        counted = conn.execute(f'SELECT COALESCE(SUM(posts), 0) FROM "{schema}".actors').fetchone()
    held = int(rows[0]) if rows else 0
    total = int(counted[0]) if counted else 0
    return max(0, expected - held), max(0, total - held) + max(0, held - expected)
