"""Labeler workers on the bus (real NATS JetStream, real PostgreSQL, real processes):
every spam post labelled exactly once, a second delivery of a batch changes nothing, a
worker killed with SIGKILL is taken over with nothing lost or doubled, and the API
server's subscribeLabels streams the labels the worker processes commit.

The posts are signed ``#commit`` frames of real ``did:plc`` accounts, registered in a
directory of the test's own; the classifier is the session's small one. Progress is
polled from the database with a deadline; the workers' lease is short so a takeover
comes quickly, never a sleep of fixed length."""

from __future__ import annotations

import asyncio
import contextlib
import math
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect as ws_connect

from plaza.atproto import cbor
from plaza.atproto.crypto import PrivateKey
from plaza.bench.appview_live import build_frames, make_authors, register
from plaza.db import connect
from plaza.moderation.bus_worker import LabelerWorker
from plaza.moderation.classifier import Classifier
from plaza.moderation.identity import labeler_did, load_keys
from plaza.moderation.labeler import Labeler
from plaza.moderation.modelfile import save
from plaza.moderation.moderator import Moderator
from plaza.moderation.service import LabelerSettings, create_app
from plaza.moderation.store import LabelerStore
from plaza.services.bus import Bus, BusLayout, partition_of
from plaza.services.bus.leases import Leases
from plaza.services.directory import DirectorySettings
from plaza.services.directory import create_app as create_directory
from plaza.services.identities import Identities
from plaza.services.runner import ServedApp, ServerThread
from tests.conftest import _PG_MISSING, pg_schema
from tests.moderation.conftest import trained
from tests.services.bus.natsutil import NATS_URL, fresh_layout

DEADLINE_S = 60.0
STARTUP_S = 120.0  # a worker process imports the classifier's code and loads the model
LEASE_S = 1.5
ACCOUNTS = 8
POSTS = 96
SPAM = "WIN a FREE ${n}000 gift card!!! claim your prize now at http://prize{n}.example"
HAM = "I really enjoyed the chorus of this song, number {n} on my playlist this week"


@dataclass
class Feed:
    """The signed frames ``(seq, did, frame)`` of ``POSTS`` posts, the URIs of the ones
    the classifier is sure are spam, and the directory that knows their authors."""

    events: list[tuple[int, str, bytes]]
    spam: set[str]
    directory: str
    model: Classifier


@pytest.fixture(scope="module")
def feed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Feed]:
    if _PG_MISSING:
        pytest.skip(_PG_MISSING)
    key = PrivateKey.generate()
    authors = list(make_authors(key, list(range(ACCOUNTS))).values())
    texts = [(SPAM if n % 2 else HAM).format(n=n) for n in range(POSTS)]
    live = [
        (
            authors[n % ACCOUNTS].did,
            f"3kpost{n:07d}",
            cbor.encode(
                {"$type": "app.bsky.feed.post", "text": t, "createdAt": "2026-01-01T00:00:00Z"}
            ),
        )
        for n, t in enumerate(texts)
    ]
    frames = build_frames(key, live, lambda did: {}, 1_700_000_000_000_000)
    dids = [did for did, _, _ in live]
    events = [(n + 1, did, frame) for n, (did, frame) in enumerate(zip(dids, frames, strict=True))]
    model = trained()
    scores, _ = model.scored(texts)
    spam = {
        f"at://{did}/app.bsky.feed.post/{rkey}"
        for (did, rkey, _), score in zip(live, scores, strict=True)
        if score >= model.threshold
    }
    assert 10 < len(spam) < POSTS  # spam to label and ham to leave alone
    root = tmp_path_factory.mktemp("directory")
    base = DirectorySettings.for_data_dir(root)
    settings = DirectorySettings(db_url=base.db_url, genesis_burst=ACCOUNTS, genesis_per_s=ACCOUNTS)
    with ServerThread([ServedApp("directory", create_directory(settings))]) as (url,):
        asyncio.run(register(url, authors))
        yield Feed(events, spam, url, model)


@pytest.fixture
def db_url() -> Iterator[str]:
    with pg_schema("t_lw") as url:
        yield url


def _labeler_dir(root: Path) -> Path:
    """A labeler's data dir with its keys and DID, as ``plaza serve labeler`` makes it."""
    labeler_did(root, load_keys(root), "http://labeler.invalid", "labeler.test")
    return root


@dataclass(frozen=True)
class Snapshot:
    labels: list[tuple[str, str]]
    strikes: int
    reviews: int
    cursors: dict[str, int]


def _snapshot(db_url: str) -> Snapshot:
    store = LabelerStore(connect(db_url))
    try:
        labels = [(x["uri"], x["val"]) for _, x in store.labels_after(0, 100_000)]
        strikes = int(store.db.scalar("SELECT COALESCE(SUM(count), 0) FROM strikes"))
        reviews = int(store.db.scalar("SELECT COUNT(*) FROM reviews"))
        return Snapshot(labels, strikes, reviews, store.cursors())
    finally:
        store.close()


def _last_per_partition(layout: BusLayout, events: list[tuple[int, str, bytes]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for seq, did, _ in events:
        source = layout.source(partition_of(did, layout.partitions))
        out[source] = max(out.get(source, 0), seq)
    return out


def _assert_exactly_once(snap: Snapshot, feed: Feed) -> None:
    uris = [uri for uri, _ in snap.labels]
    assert len(uris) == len(set(uris)), "a post was labelled twice"
    assert set(uris) == feed.spam
    assert snap.strikes == len(feed.spam)  # one strike per label, none twice


async def _publish(layout: BusLayout, events: list[tuple[int, str, bytes]]) -> None:
    bus = await Bus.connect(NATS_URL, layout)
    try:
        await bus.ensure_stream(100_000)
        await bus.publish(events)
    finally:
        await bus.close()


async def _until(cond: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


def _labeler(db_url: str, data_dir: Path) -> Labeler:
    from plaza.moderation.identity import read_identity

    did, key = read_identity(data_dir)
    return Labeler(LabelerStore(connect(db_url)), did, key, account_strikes=1000)


async def _label_in_process(
    layout: BusLayout, db_url: str, data_dir: Path, feed: Feed, target: int
) -> int:
    """Run one worker until ``target`` messages are acknowledged; return how many."""
    bus = await Bus.connect(NATS_URL, layout)
    labeler = _labeler(db_url, data_dir)
    try:
        async with httpx.AsyncClient() as http:
            worker = LabelerWorker(
                bus,
                labeler,
                Moderator(feed.model),
                Identities(feed.directory, http),
                lease_s=LEASE_S,
            )
            task = asyncio.create_task(worker.run())
            await _until(lambda: worker.handled >= target or task.done(), "the worker")
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            return worker.handled
    finally:
        await bus.close()
        labeler.store.close()


def test_every_spam_post_once_and_a_second_delivery_changes_nothing(
    feed: Feed, db_url: str, tmp_path: Path
) -> None:
    data_dir = _labeler_dir(tmp_path / "labeler")
    n = len(feed.events)
    with fresh_layout(partitions=4) as layout:
        asyncio.run(_publish(layout, feed.events))
        assert asyncio.run(_label_in_process(layout, db_url, data_dir, feed, n)) == n
        first = _snapshot(db_url)
        _assert_exactly_once(first, feed)
        assert first.cursors == _last_per_partition(layout, feed.events)

        async def forget() -> None:  # every consumer gone: the whole stream comes again
            bus = await Bus.connect(NATS_URL, layout)
            for p in range(layout.partitions):
                with contextlib.suppress(Exception):
                    await bus.js.delete_consumer(layout.stream, layout.consumer("labeler", p))
            await bus.close()

        asyncio.run(forget())
        assert asyncio.run(_label_in_process(layout, db_url, data_dir, feed, n)) == n
        assert _snapshot(db_url) == first


def _start_worker(
    layout: BusLayout, db_url: str, data_dir: Path, model: Path, *, directory: str, name: str
) -> subprocess.Popen[bytes]:
    log = (data_dir.parent / f"worker-{name}.log").open("wb")
    cmd = [
        sys.executable, "-m", "plaza.cli", "serve", "labeler-worker",
        "--bus", NATS_URL, "--db", db_url, "--data-dir", str(data_dir),
        "--directory", directory, "--model", str(model), "--account-strikes", "1000",
        "--stream", layout.stream, "--partitions", str(layout.partitions),
        "--worker-id", name, "--lease-s", str(LEASE_S),
    ]  # fmt: skip
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)


async def _holders(layout: BusLayout) -> dict[int, str]:
    bus = await Bus.connect(NATS_URL, layout)
    try:
        return await (await Leases.open(bus, "test", LEASE_S, group="labeler")).holders()
    finally:
        await bus.close()


async def _wait_shared(
    layout: BusLayout,
    names: set[str],
    procs: list[subprocess.Popen[bytes]],
    within_s: float = DEADLINE_S,
) -> None:
    """Wait until the workers ``names`` hold every partition, none more than its share."""
    share = math.ceil(layout.partitions / len(names))
    deadline = time.monotonic() + within_s
    while True:
        assert all(p.poll() is None for p in procs), "a worker exited"
        holders = await _holders(layout)
        counts = {n: list(holders.values()).count(n) for n in names}
        if (
            len(holders) == layout.partitions
            and set(holders.values()) == names
            and max(counts.values()) <= share
        ):
            return
        assert time.monotonic() < deadline, f"partitions not shared: {holders}"
        await asyncio.sleep(0.05)


def test_a_killed_worker_is_taken_over_and_the_api_server_streams_every_label(
    feed: Feed, db_url: str, tmp_path: Path
) -> None:
    data_dir = tmp_path / "labeler"
    model = tmp_path / "model.json"
    save(feed.model, model)
    settings = LabelerSettings(
        data_dir=data_dir,
        public_url="http://labeler.invalid",
        directory_url=feed.directory,
        classifier=feed.model,
        db=db_url,
        admin_token="admin",
    )
    api = create_app(settings)  # makes the labeler's keys and DID in data_dir
    half = len(feed.events) // 2
    with (
        fresh_layout(partitions=4) as layout,
        ServerThread([ServedApp("labeler", api)]) as (url,),
    ):
        asyncio.run(_publish(layout, []))
        procs = [
            _start_worker(layout, db_url, data_dir, model, directory=feed.directory, name=name)
            for name in ("a", "b")
        ]
        try:

            async def go() -> list[int]:
                stream = url.replace("http://", "ws://") + "/xrpc/com.atproto.label.subscribeLabels"
                async with ws_connect(stream) as ws:
                    await _wait_shared(layout, {"a", "b"}, procs, STARTUP_S)
                    await _publish(layout, feed.events[:half])
                    await _until(lambda: bool(_snapshot(db_url).labels), "the first labels")
                    procs[0].send_signal(signal.SIGKILL)
                    assert procs[0].wait() == -signal.SIGKILL
                    await _publish(layout, feed.events[half:])
                    done = _last_per_partition(layout, feed.events)
                    await _until(lambda: _snapshot(db_url).cursors == done, "every partition")
                    await _wait_shared(layout, {"b"}, procs[1:])
                    seqs: list[int] = []
                    while len(seqs) < len(feed.spam):
                        frame = await asyncio.wait_for(ws.recv(), DEADLINE_S)
                        assert isinstance(frame, bytes)
                        _, end = cbor.decode_first(frame)
                        seqs.append(cbor.decode(frame[end:])["seq"])
                    return seqs

            seqs = asyncio.run(go())
            snap = _snapshot(db_url)
            _assert_exactly_once(snap, feed)
            assert seqs == sorted(seqs) and len(seqs) == len(snap.labels)
            health = httpx.get(f"{url}/xrpc/_health", timeout=10).json()
            assert health["cursors"] == snap.cursors
            assert health["seq"] == max(seqs)
        finally:
            for p in procs:
                if p.poll() is None:
                    p.terminate()
                    p.wait(timeout=15)
