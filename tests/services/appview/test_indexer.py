"""The indexer on SQLite and PostgreSQL: records in, rows, counts and notifications out."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from plaza.atproto import cbor
from plaza.atproto.cid import CID
from plaza.services.appview import AppviewStore
from plaza.services.appview.indexer import Indexer

A = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"
B = "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb"
T = "2026-01-01T00:00:00.000Z"


@pytest.fixture
def ix(db_url: str) -> Iterator[Indexer]:
    s = AppviewStore.open(db_url)
    yield Indexer(s, clock=lambda: 1_800_000_000_000_000)
    s.close()


def put(ix: Indexer, did: str, collection: str, rkey: str, value: dict[str, Any]) -> CID:
    cid, block = cbor.encode_with_cid({"$type": collection, **value})
    with ix.store.transaction():
        assert ix.put(did, collection, rkey, cid, block)
    return cid


def ref(did: str, rkey: str, cid: CID) -> dict[str, str]:
    return {"uri": f"at://{did}/app.bsky.feed.post/{rkey}", "cid": str(cid)}


def post_counts(ix: Indexer, did: str, rkey: str) -> tuple[int, ...]:
    row = ix.db.one(
        "SELECT likes, reposts, replies, quotes FROM posts WHERE author = ? AND rkey = ?",
        (ix.store.actor_id(did), rkey),
    )
    assert row is not None
    return tuple(row)


def reasons(ix: Indexer, did: str) -> list[int]:
    rows = ix.db.query(
        "SELECT reason FROM notifications WHERE recipient = ? ORDER BY id",
        (ix.store.actor_id(did),),
    )
    return [r[0] for r in rows]


def test_post_reply_like_repost_quote_counts_and_notifications(ix: Indexer) -> None:
    p = put(ix, A, "app.bsky.feed.post", "3kaaaaaaaaaa2", {"text": "hello world", "createdAt": T})
    put(
        ix,
        B,
        "app.bsky.feed.like",
        "3kbbbbbbbbbb2",
        {"subject": ref(A, "3kaaaaaaaaaa2", p), "createdAt": T},
    )
    put(
        ix,
        B,
        "app.bsky.feed.repost",
        "3kbbbbbbbbbb3",
        {"subject": ref(A, "3kaaaaaaaaaa2", p), "createdAt": T},
    )
    r = ref(A, "3kaaaaaaaaaa2", p)
    put(
        ix,
        B,
        "app.bsky.feed.post",
        "3kbbbbbbbbbb4",
        {"text": "a reply", "createdAt": T, "reply": {"root": r, "parent": r}},
    )
    put(
        ix,
        B,
        "app.bsky.feed.post",
        "3kbbbbbbbbbb5",
        {
            "text": "a quote",
            "createdAt": T,
            "embed": {"$type": "app.bsky.embed.record", "record": r},
        },
    )
    assert post_counts(ix, A, "3kaaaaaaaaaa2") == (1, 1, 1, 1)
    assert reasons(ix, A) == [0, 1, 4, 5]
    with ix.store.transaction():
        ix.delete(B, "app.bsky.feed.like", "3kbbbbbbbbbb2")
        ix.delete(B, "app.bsky.feed.post", "3kbbbbbbbbbb4")
    assert post_counts(ix, A, "3kaaaaaaaaaa2") == (0, 1, 0, 1)
    assert reasons(ix, A) == [1, 5]
    assert ix.db.scalar("SELECT posts FROM actors WHERE did = ?", (B,)) == 1


def test_counts_are_right_when_the_like_comes_before_the_post(ix: Indexer) -> None:
    cid = CID.compute(b"x")
    put(
        ix,
        B,
        "app.bsky.feed.like",
        "3kbbbbbbbbbb2",
        {"subject": ref(A, "3kaaaaaaaaaa2", cid), "createdAt": T},
    )
    put(ix, A, "app.bsky.feed.post", "3kaaaaaaaaaa2", {"text": "late", "createdAt": T})
    assert post_counts(ix, A, "3kaaaaaaaaaa2") == (1, 0, 0, 0)


def test_follows_profiles_and_invalid_records(ix: Indexer) -> None:
    put(ix, A, "app.bsky.graph.follow", "3kaaaaaaaaaa3", {"subject": B, "createdAt": T})
    put(ix, A, "app.bsky.actor.profile", "self", {"displayName": "Alice", "description": "hi"})
    row = ix.db.one("SELECT follows, display_name FROM actors WHERE did = ?", (A,))
    assert row == (1, "Alice")
    assert ix.db.scalar("SELECT followers FROM actors WHERE did = ?", (B,)) == 1
    assert reasons(ix, B) == [2]
    cid, block = cbor.encode_with_cid({"$type": "app.bsky.feed.post", "text": 5})
    with ix.store.transaction():
        assert not ix.put(A, "app.bsky.feed.post", "3kaaaaaaaaaa4", cid, block)
    assert ix.db.scalar("SELECT COUNT(*) FROM posts") == 0
    with ix.store.transaction():
        ix.delete(A, "app.bsky.graph.follow", "3kaaaaaaaaaa3")
    assert ix.db.scalar("SELECT followers FROM actors WHERE did = ?", (B,)) == 0
    assert reasons(ix, B) == []


def test_post_update_keeps_counts(ix: Indexer) -> None:
    p = put(ix, A, "app.bsky.feed.post", "3kaaaaaaaaaa2", {"text": "v1", "createdAt": T})
    put(
        ix,
        B,
        "app.bsky.feed.like",
        "3kbbbbbbbbbb2",
        {"subject": ref(A, "3kaaaaaaaaaa2", p), "createdAt": T},
    )
    put(ix, A, "app.bsky.feed.post", "3kaaaaaaaaaa2", {"text": "v2", "createdAt": T})
    assert post_counts(ix, A, "3kaaaaaaaaaa2") == (1, 0, 0, 0)
    assert ix.db.scalar("SELECT posts FROM actors WHERE did = ?", (A,)) == 1
