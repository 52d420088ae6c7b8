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


def test_upgrading_from_version_4_keeps_posts_text_apart_and_rebuilds_notes(db_url: str) -> None:
    from plaza.atproto import cbor
    from plaza.atproto.cid import CID
    from plaza.db import Migrations, connect, migrate
    from plaza.services.appview.notifications import Notifications
    from plaza.services.appview.reader import Reader
    from plaza.services.appview.search import Search, parse_query
    from plaza.services.appview.times import parse_time_us

    a, b = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb"
    when = "2026-03-04T05:06:07.089Z"
    t = parse_time_us(when)
    db = connect(db_url)
    migrate(db, Migrations("appview", MIGRATIONS.steps[:4]))
    post = {"$type": "app.bsky.feed.post", "text": "upgraded words", "createdAt": when}
    post_block = cbor.encode({**post, "langs": ["en"]})
    cid = CID.compute(post_block)
    like = cbor.encode(
        {
            "$type": "app.bsky.feed.like",
            "subject": {"uri": f"at://{a}/app.bsky.feed.post/p", "cid": str(cid)},
            "createdAt": when,
        }
    )
    follow = cbor.encode({"$type": "app.bsky.graph.follow", "subject": a, "createdAt": when})
    for did in (a, b):
        db.execute("INSERT INTO actors (did, indexed_at) VALUES (?, 0)", (did,))
    db.execute(
        "INSERT INTO posts (author, rkey, record, sort_at, indexed_at) VALUES (1, 'p', ?, ?, ?)",
        (post_block, t, t),
    )
    if db.dialect == "sqlite":
        db.execute("INSERT INTO posts_fts (rowid, text) VALUES (1, 'upgraded words')")
    else:
        db.execute("UPDATE posts SET search = to_tsvector('simple', 'upgraded words')")
    db.execute(
        "INSERT INTO likes (actor, rkey, subject_author, subject_rkey, subject_cid, created) "
        "VALUES (2, 'l', 1, 'p', ?, ?)",
        (cid.raw, t),
    )
    db.execute("INSERT INTO follows (actor, rkey, subject, created) VALUES (2, 'f', 1, ?)", (t,))
    for reason, rkey, subject, block in ((0, "l", "p", like), (2, "f", None, follow)):
        db.execute(
            "INSERT INTO notifications (recipient, author, reason, rkey, subject_rkey, record, "
            "indexed_at) VALUES (1, 2, ?, ?, ?, ?, 0)",
            (reason, rkey, subject, block),
        )
    store = AppviewStore(db)
    assert schema_version(db, "appview") == MIGRATIONS.latest
    stored = db.one("SELECT record, text FROM posts")
    assert stored is not None and bytes(stored[0])[:1] == b"\x00" and stored[1] == "upgraded words"
    (row,) = Reader(store).posts([(1, "p")]).values()
    assert row.cid == cid and row.record == post_block
    assert {bytes(r[0]) for r in db.query("SELECT record FROM notifications")} == {b""}
    notes = Notifications(store).list(1, 10, None)
    assert {(n.reason, n.cid) for n in notes} == {
        ("like", CID.compute(like).raw),
        ("follow", CID.compute(follow).raw),
    }
    hits, _ = Search(store).posts(
        parse_query("upgraded"),
        None,
        None,
        top=False,
        since_us=None,
        until_us=None,
        limit=10,
        cursor=None,
    )
    assert [h.post for h in hits] == [(1, "p")]
    store.close()


def test_upgrading_from_version_5_keeps_rows_and_serves_from_the_smaller_indexes(
    db_url: str,
) -> None:
    from plaza.atproto import cbor
    from plaza.atproto.cid import CID
    from plaza.db import Migrations, connect, migrate
    from plaza.services.appview.compact import DERIVED, REST
    from plaza.services.appview.feeds import hot
    from plaza.services.appview.notifications import Notifications
    from plaza.services.appview.reader_graph import GraphReader
    from plaza.services.appview.schema import RECENT_US
    from plaza.services.appview.search import Search, parse_query

    a, b = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb"
    now = 1_800_000_000_000_000
    hour = 3600 * 1_000_000
    db = connect(db_url)
    migrate(db, Migrations("appview", MIGRATIONS.steps[:5]))
    for did in (a, b):
        db.execute("INSERT INTO actors (did, indexed_at) VALUES (?, 0)", (did,))
    rest = REST + cbor.encode({"langs": ["en"]})
    # p: posted an hour ago, indexed then; h: three days old, backfilled now
    for ident, rkey, text, sort_at in (
        (1, "p", "big green apples", now - hour),
        (2, "h", "green big apples", now - 3 * 24 * hour),
    ):
        db.execute(
            "INSERT INTO posts (id, author, rkey, record, text, sort_at, indexed_at) "
            "VALUES (?, 1, ?, ?, ?, ?, ?)",
            (ident, rkey, rest, text, sort_at, max(sort_at, now - hour)),
        )
        if db.dialect == "sqlite":
            db.execute("INSERT INTO posts_fts (rowid, text) VALUES (?, ?)", (ident, text))
    cid = CID.compute(b"x")
    db.execute(
        "INSERT INTO likes (actor, rkey, subject_author, subject_rkey, subject_cid, created) "
        "VALUES (2, 'l', 1, 'p', ?, ?)",
        (cid.raw, now),
    )
    db.execute("INSERT INTO follows (actor, rkey, subject, created) VALUES (2, 'f', 1, ?)", (now,))
    db.execute("INSERT INTO mutes (actor, subject) VALUES (1, 2)")
    db.execute(
        "INSERT INTO notifications (recipient, author, reason, rkey, subject_rkey, record, "
        "indexed_at) VALUES (1, 2, 0, 'l', 'p', ?, ?)",
        (DERIVED, now),
    )
    store = AppviewStore(db)
    assert schema_version(db, "appview") == MIGRATIONS.latest
    assert db.scalar("SELECT subject_rkey FROM notifications") is None
    graph = GraphReader(store)
    assert graph.mutes(1, 10, None) == [2]
    db.execute("DELETE FROM mutes")  # the like's author was muted: shown again
    (note,) = Notifications(store).list(1, 10, None)
    assert (note.reason, note.subject_rkey) == ("like", "p")
    assert [r.subject for r in graph.follows(2, 10, None)] == [1]
    assert [(r.post, r.created) for r in graph.actor_likes(2, 10, None, None)] == [((1, "p"), now)]
    assert hot(db, now, 10, 0) == [(1, "p")]
    recent = (
        "SELECT rkey FROM posts WHERE parent_author IS NULL "
        f"AND sort_at >= indexed_at - {RECENT_US} ORDER BY rkey"
    )
    assert [r[0] for r in db.query(recent)] == ["p"]  # the backfilled history is left out

    def found(raw: str) -> list[str]:
        hits, _ = Search(store).posts(
            parse_query(raw),
            None,
            None,
            top=False,
            since_us=None,
            until_us=None,
            limit=10,
            cursor=None,
        )
        return [h.post[1] for h in hits]

    assert found("apples green") == ["p", "h"]
    assert found('"big green"') == ["p"] and found('"green big"') == ["h"]
    if db.dialect == "sqlite":
        keyed = db.scalar("SELECT sql FROM sqlite_schema WHERE name = 'likes'")
        assert str(keyed).endswith("WITHOUT ROWID")
        assert db.scalar("SELECT COUNT(*) FROM sqlite_schema WHERE name = 'likes_by_subject'")
    store.close()
