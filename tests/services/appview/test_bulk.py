"""Bulk backfill on SQLite and PostgreSQL: the same rows, counts, notifications and
search entries as indexing the same records one by one."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from plaza.atproto import cbor
from plaza.atproto.cid import CID
from plaza.services.appview import AppviewStore
from plaza.services.appview.bulk import BulkLoader
from plaza.services.appview.indexer import Indexer

A = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"
B = "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb"
C = "did:plc:cccccccccccccccccccccccc"
T = "2026-01-01T00:00:00.000Z"
NOW = 1_800_000_000_000_000


def _rec(collection: str, **value: Any) -> tuple[CID, bytes]:
    return cbor.encode_with_cid({"$type": collection, **value})


def _network() -> dict[str, list[tuple[str, str, CID, bytes]]]:
    p1 = _rec("app.bsky.feed.post", text="hello searchable world", createdAt=T)
    ref = {"uri": f"at://{A}/app.bsky.feed.post/3kaaaaaaaaaa2", "cid": str(p1[0])}
    reply = _rec(
        "app.bsky.feed.post", text="a reply", createdAt=T, reply={"root": ref, "parent": ref}
    )
    quote = _rec(
        "app.bsky.feed.post",
        text="quoting",
        createdAt=T,
        embed={"$type": "app.bsky.embed.record", "record": ref},
    )
    lst = _rec(
        "app.bsky.graph.list", name="friends", purpose="app.bsky.graph.defs#curatelist", createdAt=T
    )
    return {
        A: [
            ("app.bsky.feed.post", "3kaaaaaaaaaa2", *p1),
            (
                "app.bsky.actor.profile",
                "self",
                *_rec("app.bsky.actor.profile", displayName="Alice"),
            ),
            (
                "app.bsky.graph.follow",
                "3kaaaaaaaaaa3",
                *_rec("app.bsky.graph.follow", subject=B, createdAt=T),
            ),
            ("app.bsky.graph.list", "3kaaaaaaaaaa4", *lst),
            (
                "app.bsky.graph.listitem",
                "3kaaaaaaaaaa5",
                *_rec(
                    "app.bsky.graph.listitem",
                    subject=B,
                    list=f"at://{A}/app.bsky.graph.list/3kaaaaaaaaaa4",
                    createdAt=T,
                ),
            ),
            ("app.bsky.feed.post", "3kaaaaaaaaaa6", *_rec("app.bsky.feed.post", text=7)),  # invalid
        ],
        B: [
            (
                "app.bsky.feed.like",
                "3kbbbbbbbbbb2",
                *_rec("app.bsky.feed.like", subject=ref, createdAt=T),
            ),
            (
                "app.bsky.feed.repost",
                "3kbbbbbbbbbb3",
                *_rec("app.bsky.feed.repost", subject=ref, createdAt=T),
            ),
            ("app.bsky.feed.post", "3kbbbbbbbbbb4", *reply),
            (
                "app.bsky.graph.follow",
                "3kbbbbbbbbbb5",
                *_rec("app.bsky.graph.follow", subject=A, createdAt=T),
            ),
        ],
        C: [
            ("app.bsky.feed.post", "3kcccccccccc2", *quote),
            (
                "app.bsky.feed.like",
                "3kcccccccccc3",
                *_rec("app.bsky.feed.like", subject=ref, createdAt=T),
            ),
            (
                "app.bsky.graph.block",
                "3kcccccccccc4",
                *_rec("app.bsky.graph.block", subject=B, createdAt=T),
            ),
        ],
    }


def _snapshot(store: AppviewStore) -> dict[str, Any]:
    db = store.db
    did = {i: d for i, d in db.query("SELECT id, did FROM actors")}
    out: dict[str, Any] = {
        "posts": sorted(
            (did[a], r, likes, reposts, replies, quotes)
            for a, r, likes, reposts, replies, quotes in db.query(
                "SELECT author, rkey, likes, reposts, replies, quotes FROM posts"
            )
        ),
        "actors": sorted(
            db.query("SELECT did, display_name, followers, follows, posts, repo_state FROM actors")
        ),
        "notes": sorted(
            (did[r], did[a], reason, k)
            for r, a, reason, k in db.query(
                "SELECT recipient, author, reason, rkey FROM notifications"
            )
        ),
        "edges": sorted(
            (t, did[a], r)
            for t in ("likes", "reposts", "follows", "blocks", "list_items")
            for a, r in db.query(f"SELECT actor, rkey FROM {t}")
        ),
        "lists": db.query("SELECT rkey, items FROM lists"),
    }
    if db.dialect == "sqlite":
        hits = "SELECT rowid FROM posts_fts WHERE posts_fts MATCH 'searchable'"
    else:
        hits = (
            "SELECT id FROM posts "
            "WHERE to_tsvector('simple', text) @@ plainto_tsquery('simple', 'searchable')"
        )
    out["search"] = len(db.query(hits))
    return out


@pytest.fixture
def store(db_url: str) -> Iterator[AppviewStore]:
    s = AppviewStore.open(db_url)
    yield s
    s.close()


def test_bulk_matches_one_by_one(store: AppviewStore, tmp_path: Any) -> None:
    net = _network()
    loader = BulkLoader(Indexer(store), clock=lambda: NOW)
    for did, records in net.items():
        loader.add_records(did, records, rev="3kzzzzzzzzzz2")
    assert loader.buffered == 12
    assert loader.flush() == 12
    assert loader.skipped == 1
    bulk = _snapshot(store)

    other = AppviewStore.open(f"sqlite://{tmp_path / 'one.db'}")
    ix = Indexer(other, clock=lambda: NOW)
    with other.transaction():
        for did, records in net.items():
            for collection, rkey, cid, block in records:
                ix.put(did, collection, rkey, cid, block)
        other.db.execute("UPDATE actors SET repo_state = 1 WHERE did IN (?, ?, ?)", (A, B, C))
    one_by_one = _snapshot(other)
    other.close()
    assert bulk == one_by_one
    assert bulk["search"] == 1
    assert (A, "3kaaaaaaaaaa2", 2, 1, 1, 1) in bulk["posts"]
    assert bulk["lists"] == [("3kaaaaaaaaaa4", 1)]
