"""Indexers on the bus (real NATS JetStream, real PostgreSQL, real processes): every
event indexed once, a second delivery changes nothing, a worker killed with SIGKILL is
taken over with nothing lost or duplicated, and a restarted NATS server is found again.

Progress is polled from the database with a deadline; the workers' lease is short so a
takeover comes quickly, never a sleep of fixed length."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from plaza.bench import appview_bus, bus_fixture
from plaza.services.appview.bus_indexer import BusIndexer
from plaza.services.appview.indexer import Indexer
from plaza.services.appview.store import AppviewStore
from plaza.services.bus import Bus, BusLayout
from plaza.services.identities import Identities
from tests.conftest import _PG_MISSING, PG_URL
from tests.services.bus.natsutil import NATS_URL, OwnNats, fresh_layout

LIVE = 240
DEADLINE_S = 25.0


@pytest.fixture(scope="module")
def network(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[bus_fixture.BusNetwork, str]]:
    if _PG_MISSING:
        pytest.skip(_PG_MISSING)
    net = bus_fixture.build(accounts=13, posts=LIVE + 24, live=LIVE)
    with bus_fixture.directory(net, tmp_path_factory.mktemp("dir")) as url:
        yield net, url


@contextlib.contextmanager
def fresh_schema() -> Iterator[tuple[str, str]]:
    schema = f"t_bus_{uuid.uuid4().hex[:10]}"
    try:
        yield schema, f"{PG_URL}?schema={schema}"
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _snapshot(schema: str) -> tuple[int, int, list[tuple[str, int]]]:
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        posts = conn.execute(f'SELECT COUNT(*) FROM "{schema}".posts').fetchone()
        counted = conn.execute(f'SELECT SUM(posts) FROM "{schema}".actors').fetchone()
        cursors = conn.execute(f'SELECT source, seq FROM "{schema}".ingest ORDER BY source')
        return int(posts[0]), int(counted[0]), [(str(s), int(q)) for s, q in cursors]


async def _publish(url: str, layout: BusLayout, events: list[tuple[int, str, bytes]]) -> None:
    bus = await Bus.connect(url, layout)
    try:
        await bus.ensure_stream(100_000)
        deadline = time.monotonic() + DEADLINE_S
        while True:
            try:
                await bus.publish(events)
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)  # the server is coming back: send them again
    finally:
        await bus.close()


async def _until(cond: object, what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not cond():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def _index_in_process(
    url: str, layout: BusLayout, db_url: str, directory: str, target: int
) -> int:
    """Run one worker until ``target`` messages are acknowledged; return how many."""
    bus = await Bus.connect(url, layout)
    store = AppviewStore.open(db_url)
    try:
        async with httpx.AsyncClient() as http:
            worker = BusIndexer(bus, Indexer(store), Identities(directory, http), http, lease_s=1.5)
            task = asyncio.create_task(worker.run())
            await _until(lambda: worker.indexed >= target or task.done(), "the worker")
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            return worker.indexed
    finally:
        await bus.close()
        store.close()


def test_every_event_once_and_a_second_delivery_changes_nothing(
    network: tuple[bus_fixture.BusNetwork, str],
) -> None:
    net, directory = network
    with fresh_layout(partitions=4) as layout, fresh_schema() as (schema, db_url):
        base = net.backfill(db_url)
        asyncio.run(_publish(NATS_URL, layout, net.events))
        assert asyncio.run(_index_in_process(NATS_URL, layout, db_url, directory, LIVE)) == LIVE
        first = _snapshot(schema)
        assert first[0] == first[1] == base + LIVE
        assert sorted(s for s, _ in first[2]) == [layout.source(p) for p in range(4)]

        async def forget() -> None:  # every consumer gone: the whole stream comes again
            bus = await Bus.connect(NATS_URL, layout)
            for p in range(4):
                await bus.js.delete_consumer(layout.stream, layout.consumer("appview", p))
            await bus.close()

        asyncio.run(forget())
        assert asyncio.run(_index_in_process(NATS_URL, layout, db_url, directory, LIVE)) == LIVE
        assert _snapshot(schema) == first
        # without the cursors too: each commit is then skipped by its account's rev
        asyncio.run(forget())
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'DELETE FROM "{schema}".ingest')
        assert asyncio.run(_index_in_process(NATS_URL, layout, db_url, directory, LIVE)) == LIVE
        again = _snapshot(schema)
        assert again[:2] == first[:2]
        assert again[2] == first[2]


def test_a_worker_killed_mid_stream_is_taken_over_exactly(
    network: tuple[bus_fixture.BusNetwork, str],
) -> None:
    net, directory = network
    with fresh_layout(partitions=8) as layout, fresh_schema() as (schema, db_url):
        base = net.backfill(db_url)
        asyncio.run(_publish(NATS_URL, layout, []))
        procs = [
            appview_bus.start_worker(NATS_URL, db_url, directory, layout, name, lease_s=1.5)
            for name in ("a", "b")
        ]
        try:
            asyncio.run(appview_bus.wait_balanced(NATS_URL, layout, 2, procs, lease_s=1.5))
            asyncio.run(_publish(NATS_URL, layout, net.events))
            appview_bus.wait_posts(PG_URL, schema, base + LIVE // 4, procs)
            procs[0].send_signal(signal.SIGKILL)
            assert procs[0].wait() == -signal.SIGKILL
            appview_bus.wait_posts(PG_URL, schema, base + LIVE, procs[1:], stall_s=DEADLINE_S)
            assert appview_bus.count_posts(PG_URL, schema, base + LIVE) == (0, 0)
        finally:
            for p in procs:
                if p.poll() is None:
                    p.terminate()
                    p.wait(timeout=15)


def test_workers_find_a_restarted_server_again(
    network: tuple[bus_fixture.BusNetwork, str], tmp_path: Path
) -> None:
    net, directory = network
    server = OwnNats(tmp_path / "js")
    server.start()
    layout = BusLayout(f"T_{uuid.uuid4().hex[:10]}", 4)
    half = LIVE // 2
    try:
        with fresh_schema() as (schema, db_url):
            base = net.backfill(db_url)

            async def go() -> None:
                bus = await Bus.connect(server.url, layout)
                store = AppviewStore.open(db_url)
                try:
                    async with httpx.AsyncClient() as http:
                        worker = BusIndexer(
                            bus, Indexer(store), Identities(directory, http), http, lease_s=1.5
                        )
                        await _publish(server.url, layout, net.events[:half])
                        task = asyncio.create_task(worker.run())
                        await _until(lambda: worker.indexed >= half, "the first half")
                        server.stop()
                        await _until(lambda: not bus.nc.is_connected, "the disconnection")
                        server.start()
                        await _publish(server.url, layout, net.events[half:])
                        await _until(lambda: worker.indexed >= LIVE or task.done(), "the rest")
                        assert worker.indexed == LIVE
                        task.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await task
                finally:
                    await bus.close()
                    store.close()

            asyncio.run(go())
            posts, counted, _ = _snapshot(schema)
            assert posts == counted == base + LIVE
    finally:
        server.stop()
