"""The app view's store on SQLite and a real PostgreSQL: schema, actor ids, cursor."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from plaza.db import schema_version
from plaza.services.appview import MIGRATIONS, AppviewStore


@pytest.fixture
def store(db_url: str) -> Iterator[AppviewStore]:
    s = AppviewStore.open(db_url)
    yield s
    s.close()


def test_schema_is_at_the_latest_version(store: AppviewStore) -> None:
    assert schema_version(store.db, "appview") == MIGRATIONS.latest


def test_actor_ids_are_stable_and_reopen(db_url: str) -> None:
    s = AppviewStore.open(db_url)
    a = s.actor_id("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa")
    b = s.actor_id("did:plc:bbbbbbbbbbbbbbbbbbbbbbbb")
    assert a != b and s.actor_id("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa") == a
    s.close()
    s = AppviewStore.open(db_url)
    assert s.find_actor("did:plc:bbbbbbbbbbbbbbbbbbbbbbbb") == b
    assert s.did_of(a) == "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"
    assert s.find_actor("did:plc:cccccccccccccccccccccccc") is None
    s.close()


def test_an_id_assigned_in_a_rolled_back_transaction_is_forgotten(store: AppviewStore) -> None:
    did = "did:plc:dddddddddddddddddddddddd"
    with pytest.raises(RuntimeError), store.transaction():
        store.actor_id(did)
        raise RuntimeError("roll back")
    assert store.find_actor(did) is None


def test_cursor_round_trips(store: AppviewStore) -> None:
    assert store.cursor("ws://x") is None
    with store.transaction():
        store.set_cursor("ws://x", 5)
    with store.transaction():
        store.set_cursor("ws://x", 9)
    assert store.cursor("ws://x") == 9


def test_upgrading_from_version_2_drops_stored_cids_and_keeps_the_rows(db_url: str) -> None:
    from plaza.atproto import cbor
    from plaza.db import Migrations, connect, migrate
    from plaza.services.appview.notifications import Notifications
    from plaza.services.appview.reader import Reader

    db = connect(db_url)
    migrate(db, Migrations("appview", MIGRATIONS.steps[:2]))
    cid, block = cbor.encode_with_cid(
        {"$type": "app.bsky.feed.post", "text": "old", "createdAt": "x"}
    )
    db.execute(
        "INSERT INTO actors (did, indexed_at) VALUES ('did:plc:aaaaaaaaaaaaaaaaaaaaaaaa', 0)"
    )
    db.execute(
        "INSERT INTO posts (author, rkey, cid, record, sort_at, indexed_at) "
        "VALUES (1, 'r', ?, ?, 0, 0)",
        (cid.raw, block),
    )
    db.execute(
        "INSERT INTO notifications (recipient, author, reason, rkey, cid, record, indexed_at) "
        "VALUES (1, 1, 4, 'r', ?, ?, 0)",
        (cid.raw, block),
    )
    store = AppviewStore(db)
    assert schema_version(db, "appview") == MIGRATIONS.latest
    (post,) = Reader(store).posts([(1, "r")]).values()
    assert post.cid == cid and post.record == block
    (note,) = Notifications(store).list(1, 10, None)
    assert note.cid == cid.raw and note.reason == "reply"
    store.close()
