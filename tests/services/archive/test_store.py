"""The archive's store on SQLite and on a real PostgreSQL: what a chain of commits
leaves is exactly the blocks of the current repository; the cursor moves with each
change or not at all; blobs are wanted and forgotten as records link them."""

from __future__ import annotations

import pytest

from plaza.atproto.cid import CID, RAW
from plaza.atproto.crypto import PrivateKey
from plaza.atproto.repo import CommitResult, Write, export_car
from plaza.atproto.repo_verify import import_car
from plaza.atproto.sync import verify_commit_event
from plaza.db import connect, schema_version
from plaza.services.archive.changes import commit_change, repo_base
from plaza.services.archive.schema import MIGRATIONS
from plaza.services.archive.store import HELD, ArchiveStore, StaleHeadError
from tests.services.archive.hostile import Author, posts
from tests.services.directory.helpers import key

DID = "did:plc:" + "a" * 24


def author_key() -> PrivateKey:
    return key("archive-store-author")


def store_at(url: str) -> ArchiveStore:
    return ArchiveStore(connect(url), "ws://source.test")


def current_blocks(author: Author) -> set[CID]:
    assert author.repo is not None
    return set(import_car(export_car(author.blocks, author.repo.cid)).blocks)


def stored_blocks(store: ArchiveStore) -> set[CID]:
    head = store.head(DID)
    assert head is not None
    return {CID(c) for c, _ in store.block_page(head.id, None, b"", 100_000)}


def land(store: ArchiveStore, result: CommitResult, seq: int) -> list[CID]:
    head = store.head(DID)
    assert head is not None and head.data is not None and head.commit_cid is not None
    verified = verify_commit_event(
        result.car_slice, result.ops, result.prev_data, result.cid, author_key().public_key, DID
    )
    change = commit_change(
        verified,
        head.data,
        lambda c: store.block(head.id, c),
        lambda cids: store.blocks_among(head.id, cids),
    )
    return store.apply_commit(change, head.commit_cid, seq)


def blob_cid(n: int) -> CID:
    return CID.compute(bytes([n]) * 10, RAW)


def with_blob(rkey: str, blob: CID, action: str = "create") -> Write:
    record = {
        "$type": "app.bsky.feed.post",
        "text": rkey,
        "embed": {
            "images": [
                {"image": {"$type": "blob", "ref": blob, "mimeType": "image/png", "size": 10}}
            ]
        },
    }
    if action == "update":
        return Write.update("app.bsky.feed.post", rkey, record)
    return Write.create("app.bsky.feed.post", rkey, record)


def test_a_chain_of_commits_leaves_exactly_the_current_blocks(db_url: str) -> None:
    store = store_at(db_url)
    author = Author(DID, author_key())
    genesis = author.commit(posts("a", "b", "c"))
    store.rebase(repo_base(import_car(genesis.car_slice, did=DID)), None, seq=1)
    assert stored_blocks(store) == current_blocks(author)
    assert store.cursor() == 1

    steps = [
        posts(*[f"p{i:03d}" for i in range(40)]),  # enough keys for a tree of several layers
        [Write.update("app.bsky.feed.post", "a", {"$type": "app.bsky.feed.post", "text": "b"})],
        # "a" now holds the same record as "b": one block, two paths.
        [Write.delete("app.bsky.feed.post", "b")],
        [Write.delete("app.bsky.feed.post", f"p{i:03d}") for i in range(0, 40, 3)],
        [],  # a commit that changes no record
        # A record leaves and comes back: the tree's nodes of before return, and must be
        # stored again (no cache may remember them as archived).
        [Write.delete("app.bsky.feed.post", "p001")],
        posts("p001"),
    ]
    for seq, writes in enumerate(steps, start=2):
        result = author.commit(writes)
        land(store, result, seq)
        assert stored_blocks(store) == current_blocks(author), f"after step {seq}"
        head = store.head(DID)
        assert head is not None and head.commit_cid == result.cid and head.rev == result.rev
        assert store.cursor() == seq
    counts = store.counts()
    assert counts.records == 3 + 40 - 1 - 14 - 1 + 1 and counts.repos == 1


def test_a_change_on_a_moved_head_changes_nothing(db_url: str) -> None:
    store = store_at(db_url)
    author = Author(DID, author_key())
    genesis = author.commit(posts("a"))
    store.rebase(repo_base(import_car(genesis.car_slice, did=DID)), None, seq=1)
    c1 = author.commit(posts("b"))
    head = store.head(DID)
    assert head is not None and head.data is not None
    verified = verify_commit_event(c1.car_slice, c1.ops, c1.prev_data, c1.cid, None, DID)
    change = commit_change(verified, head.data, lambda c: store.block(head.id, c))
    with pytest.raises(StaleHeadError):
        store.apply_commit(change, c1.cid, seq=2)  # not the archived head
    assert store.cursor() == 1
    assert stored_blocks(store) == set(import_car(genesis.car_slice).blocks)
    with pytest.raises(StaleHeadError):
        store.rebase(repo_base(import_car(genesis.car_slice)), c1.cid, seq=2)
    assert store.cursor() == 1


def test_blobs_are_wanted_while_linked_and_forgotten_after(db_url: str) -> None:
    store = store_at(db_url)
    author = Author(DID, author_key())
    one, two = blob_cid(1), blob_cid(2)
    genesis = author.commit([with_blob("a", one), with_blob("b", one)])
    store.rebase(repo_base(import_car(genesis.car_slice, did=DID)), None, seq=1)
    due = store.blobs_due(now=0, limit=10)
    assert [(r.did, r.cid, r.state) for r in due] == [(DID, one, "wanted")]
    assert store.blob_held(DID, one, "image/png", 10)
    held = store.blob(DID, one)
    assert held is not None and held.state == HELD

    # "a" links another blob; "b" still links the first.
    assert land(store, author.commit([with_blob("a", two, "update")]), 2) == []
    assert {r.cid for r in store.blobs_due(now=0, limit=10)} == {two}
    assert store.blob(DID, one) is not None
    # Nothing links the first blob any more: it is forgotten, and its file may go.
    orphans = land(store, author.commit([Write.delete("app.bsky.feed.post", "b")]), 3)
    assert orphans == [one]
    assert store.blob(DID, one) is None
    head = store.head(DID)
    assert head is not None
    assert store.list_blobs(head.id, None, b"", 10) == []


def test_migrations_are_recorded_and_reopening_changes_nothing(db_url: str) -> None:
    store = store_at(db_url)
    store.advance(7)
    assert schema_version(store.db, "archive") == MIGRATIONS.latest == 1
    again = store_at(db_url)
    assert again.cursor() == 7
    assert again.store_bytes() > 0


def test_retry_times_keep_their_precision(db_url: str) -> None:
    """A retry due now is due now, to the millisecond, on both backends."""
    store = store_at(db_url)
    now = 1_765_000_000.123
    store.want_resync(DID, None, now=now)
    assert store.resyncs_due(now, 10) == [(DID, 0)]
    assert store.next_resync() == now
    store.resync_failed(DID, "unreachable", now + 0.5)
    assert store.resyncs_due(now + 0.499, 10) == []
    assert store.resyncs_due(now + 0.5, 10) == [(DID, 1)]
