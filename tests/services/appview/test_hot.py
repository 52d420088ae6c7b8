"""The built-in "hot" ranking on SQLite and PostgreSQL, with an injected clock: the last
day's top-level posts by engagement, pages from one ranking copy, refreshed on time."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from plaza.atproto import cbor
from plaza.atproto.cid import CID
from plaza.atproto.crypto import PrivateKey
from plaza.atproto.tid import encode_tid
from plaza.errors import InvalidInputError
from plaza.services.appview import AppviewStore
from plaza.services.appview.feeds import HOT_QUERY, FeedGenerators
from plaza.services.appview.indexer import Indexer
from plaza.services.appview.remote import Remote
from plaza.services.appview.store import with_custom_plans
from plaza.services.appview.times import format_time_us

NOW_US = 1_800_000_000_000_000
HOUR_US = 3600 * 1_000_000
DIDS = [f"did:plc:{c * 24}" for c in "abcdefgh"]
R = {
    name: encode_tid(NOW_US - i, 0)
    for i, name in enumerate(("quiet", "liked", "shared", "old", "reply"))
}


class Clock:
    def __init__(self) -> None:
        self.now = NOW_US / 1_000_000

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def world(db_url: str) -> Iterator[tuple[Indexer, FeedGenerators, Clock]]:
    store = AppviewStore.open(db_url)
    clock = Clock()
    ix = Indexer(store, clock=lambda: int(clock.now * 1_000_000))
    feeds = FeedGenerators(
        store, Remote("http://127.0.0.1:1"), "did:web:av.test", PrivateKey.generate(), clock=clock
    )
    yield ix, feeds, clock
    store.close()


def put(ix: Indexer, did: str, collection: str, rkey: str, value: dict[str, Any]) -> CID:
    cid, block = cbor.encode_with_cid({"$type": collection, **value})
    with ix.store.transaction():
        assert ix.put(did, collection, rkey, cid, block)
    return cid


def post(ix: Indexer, did: str, rkey: str, age_us: int, **extra: Any) -> dict[str, str]:
    when = format_time_us(NOW_US - age_us)
    cid = put(ix, did, "app.bsky.feed.post", rkey, {"text": rkey, "createdAt": when, **extra})
    return {"uri": f"at://{did}/app.bsky.feed.post/{rkey}", "cid": str(cid)}


_SEQ = iter(range(1000))


def likes(ix: Indexer, subject: dict[str, str], n: int, kind: str = "app.bsky.feed.like") -> None:
    for i in range(n):
        put(
            ix,
            DIDS[i],
            kind,
            encode_tid(NOW_US + 1000 * i, next(_SEQ)),
            {"subject": subject, "createdAt": format_time_us(NOW_US)},
        )


def uris(
    feeds: FeedGenerators, limit: int, cursor: str | None = None
) -> tuple[list[str], str | None]:
    page = feeds.local("hot", limit, cursor)
    return [i.post.rsplit("/", 1)[1] for i in page.items], page.cursor


def test_hot_ranks_the_last_day_by_engagement(world: tuple[Indexer, FeedGenerators, Clock]) -> None:
    ix, feeds, clock = world
    quiet = post(ix, DIDS[0], R["quiet"], HOUR_US)
    liked = post(ix, DIDS[1], R["liked"], 2 * HOUR_US)
    shared = post(ix, DIDS[2], R["shared"], 3 * HOUR_US)
    old = post(ix, DIDS[3], R["old"], 25 * HOUR_US)
    likes(ix, liked, 3)
    likes(ix, shared, 2, "app.bsky.feed.repost")  # 2 reposts weigh 4
    likes(ix, old, 8)
    post(ix, DIDS[4], R["reply"], HOUR_US, reply={"root": quiet, "parent": quiet})

    first, cursor = uris(feeds, 2)
    assert first == [R["shared"], R["liked"]] and cursor == "2"
    rest, end = uris(feeds, 2, cursor)
    assert rest == [R["quiet"]] and end is None  # replies and day-old posts are out

    # the copy holds until the ranking is due again
    likes(ix, quiet, 6)
    assert uris(feeds, 1)[0] == [R["shared"]]
    clock.now += 31
    assert uris(feeds, 1)[0] == [R["quiet"]]

    for bad in ("x", "-1", "99999"):
        with pytest.raises(InvalidInputError):
            feeds.local("hot", 5, bad)
    with pytest.raises(InvalidInputError):
        feeds.local("nope", 5, None)


def test_postgresql_sessions_plan_for_their_parameters(db_url: str) -> None:
    store = AppviewStore.open(db_url)
    try:
        if store.dialect == "postgresql":
            assert store.db.scalar("SHOW plan_cache_mode") == "force_custom_plan"
            assert store.db.scalar("SHOW synchronous_commit") == "off"
    finally:
        store.close()
    assert with_custom_plans("sqlite:///tmp/x.db") == "sqlite:///tmp/x.db"
    url = with_custom_plans("postgresql://u@h:5432/db?schema=s")
    assert url.endswith(
        "schema=s&options=-cplan_cache_mode%3Dforce_custom_plan%20-csynchronous_commit%3Doff"
    )
    mine = "postgresql://u@h/db?options=-cwork_mem%3D64MB"
    assert with_custom_plans(mine) == mine


def test_hot_reads_the_recent_posts_index(world: tuple[Indexer, FeedGenerators, Clock]) -> None:
    ix, _, _ = world
    post(ix, DIDS[0], R["quiet"], HOUR_US)
    db = ix.store.db
    args = (NOW_US - 24 * HOUR_US, 10, 0)
    if db.dialect == "sqlite":
        plan = " ".join(str(r[-1]) for r in db.query(f"EXPLAIN QUERY PLAN {HOT_QUERY}", args))
    else:
        with db.transaction():
            db.execute("SET LOCAL enable_seqscan = off")
            plan = " ".join(str(r[0]) for r in db.query(f"EXPLAIN {HOT_QUERY}", args))
    assert "posts_recent" in plan
