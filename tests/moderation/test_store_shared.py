"""One labeler store shared by several processes on PostgreSQL: labels commit in ``seq``
order whichever connection issues them, and each commit notifies the store's channel.

The connections stand for the processes (the API server and the labeler workers):
each has its own session, so the advisory lock and the notifications behave as they do
between processes."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator

import pytest

from plaza.atproto.crypto import PrivateKey
from plaza.db import connect, listen
from plaza.moderation.labeler import Labeler
from plaza.moderation.store import LabelerStore
from tests.conftest import pg_schema

DID = "did:plc:labeler"
DEADLINE_S = 10.0


@pytest.fixture
def pg_url() -> Iterator[str]:
    with pg_schema("t_labels") as url:
        yield url


def _waiting_for_a_lock(reader: LabelerStore, pid: int) -> bool:
    rows = reader.db.query(
        "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND pid = ?", (pid,)
    )
    return bool(rows)


def test_a_later_label_never_commits_before_an_earlier_one(pg_url: str) -> None:
    key = PrivateKey.generate()
    first, second, reader = (LabelerStore(connect(pg_url)) for _ in range(3))
    try:
        a, b = Labeler(first, DID, key), Labeler(second, DID, key)
        pid = int(second.db.scalar("SELECT pg_backend_pid()"))
        later: list[int] = []
        done = threading.Event()

        def issue_later() -> None:
            later.append(b.issue("at://did:plc:x/app.bsky.feed.post/2", "spam")[0])
            done.set()

        with first.db.transaction():
            earlier = a.issue("at://did:plc:x/app.bsky.feed.post/1", "spam")[0]
            thread = threading.Thread(target=issue_later)
            thread.start()
            deadline = time.monotonic() + DEADLINE_S
            # the second issuer either waits for the first to commit, or (without the
            # lock) commits a larger seq now, which a reader would stream past the first
            while not done.is_set() and not _waiting_for_a_lock(reader, pid):
                assert time.monotonic() < deadline, "the second issuer neither waits nor ends"
                done.wait(0.01)
            assert not done.is_set(), "a later label committed while an earlier one was open"
            assert reader.labels_after(0) == []
        thread.join(DEADLINE_S)
        assert later and earlier < later[0]
        assert [seq for seq, _ in reader.labels_after(0)] == [earlier, later[0]]
    finally:
        for store in (first, second, reader):
            store.close()


def test_a_label_wakes_listeners_when_it_commits(pg_url: str) -> None:
    key = PrivateKey.generate()
    store = LabelerStore(connect(pg_url))
    labeler = Labeler(store, DID, key)

    async def go() -> None:
        wakes = asyncio.Queue[None]()
        task = asyncio.create_task(listen(pg_url, store.channel, lambda: wakes.put_nowait(None)))
        try:
            await asyncio.wait_for(wakes.get(), DEADLINE_S)  # listening (a wake on connect)
            labeler.issue("at://did:plc:x/app.bsky.feed.post/1", "spam")
            await asyncio.wait_for(wakes.get(), DEADLINE_S)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    try:
        asyncio.run(go())
    finally:
        store.close()
