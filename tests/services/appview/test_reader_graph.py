"""The graph, notification and search queries on SQLite and PostgreSQL: pages that
neither skip nor repeat rows sharing a time, blocks and mutes left out, cursors
checked, search terms that cannot break the FTS syntax."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from plaza.atproto import cbor
from plaza.errors import InvalidInputError
from plaza.services.appview import AppviewStore, search
from plaza.services.appview.indexer import Indexer
from plaza.services.appview.notifications import Notifications, reason_codes
from plaza.services.appview.post_filters import PostFilter
from plaza.services.appview.reader_graph import (
    EdgeRow,
    GraphReader,
    edge_cursor,
    page_cursor,
    parse_cursor,
    subject_cursor,
)
from plaza.services.appview.search import (
    BadQueryError,
    Search,
    fts5_match,
    fts5_words,
    has_phrases,
    parse_query,
    pg_tsquery,
)

T = "2026-01-01T00:00:00.000Z"  # every record made at the same instant: ties everywhere
NOW = 1_800_000_000_000_000


_S32 = "234567abcdefghijklmnopqrstuvwxyz"


def tid(n: int) -> str:
    """A valid record key (TID) numbered ``n``: later numbers sort later."""
    digits = ""
    for _ in range(11):
        n, r = divmod(n, 32)
        digits = _S32[r] + digits
    return "3k" + digits


def did(i: int) -> str:
    return "did:plc:" + f"{i:024d}".replace("0", "a")


@pytest.fixture
def ix(db_url: str) -> Iterator[Indexer]:
    s = AppviewStore.open(db_url)
    clock = iter(range(NOW, NOW + 10**9, 1000))
    yield Indexer(s, clock=lambda: next(clock))
    s.close()


def put(ix: Indexer, who: str, collection: str, rkey: str, value: dict[str, Any]) -> str:
    cid, block = cbor.encode_with_cid({"$type": collection, **value})
    with ix.store.transaction():
        assert ix.put(who, collection, rkey, cid, block)
    return str(cid)


def follow(ix: Indexer, a: str, b: str, rkey: str) -> None:
    put(ix, a, "app.bsky.graph.follow", rkey, {"subject": b, "createdAt": T})


def ids(ix: Indexer, *dids: str) -> list[int]:
    return [ix.store.actor_id(d) for d in dids]


def walk(fetch: Any, cursor_of: Any, limit: int) -> list[Any]:
    """Every row of a paged query, a page of ``limit`` at a time."""
    out: list[Any] = []
    cursor = None
    for _ in range(100):
        page = fetch(limit, cursor)
        out += page
        if len(page) < limit:
            return out
        cursor = cursor_of(page[-1])
    raise AssertionError("paging did not end")


def test_pages_of_tied_rows_neither_skip_nor_repeat(ix: Indexer) -> None:
    star = did(0)
    fans = [did(i) for i in range(1, 8)]
    for n, fan in enumerate(fans):
        follow(ix, fan, star, tid(100 + n))
        follow(ix, star, fan, tid(100 + n))
    g = GraphReader(ix.store)
    (me,) = ids(ix, star)
    for limit in (1, 2, 3, 7, 50):
        followers = walk(lambda lim, cur: g.followers(me, lim, cur), subject_cursor, limit)
        assert sorted(r.actor for r in followers) == sorted(ids(ix, *fans))
        follows = walk(lambda lim, cur: g.follows(me, lim, cur), edge_cursor, limit)
        assert [r.rkey for r in follows] == [tid(100 + n) for n in reversed(range(7))]


def test_blocks_hide_both_ways_mutes_only_where_they_should(ix: Indexer) -> None:
    star, a, b, c = did(0), did(1), did(2), did(3)
    for n, fan in enumerate((a, b, c)):
        follow(ix, fan, star, tid(100 + n))
    put(ix, a, "app.bsky.graph.block", tid(300), {"subject": b, "createdAt": T})
    g = GraphReader(ix.store)
    s, ia, ib, ic = ids(ix, star, a, b, c)
    g.mute(ic, ia)
    g.mute(ic, ia)  # muting twice is one mute
    assert {r.actor for r in g.followers(s, 10, None, viewer=ia)} == {ia, ic}
    assert {r.actor for r in g.followers(s, 10, None, viewer=ib)} == {ib, ic}
    assert {r.actor for r in g.followers(s, 10, None, viewer=ic)} == {ia, ib, ic}  # mute
    assert g.mutes(ic, 10, None) == [ia]
    newcomer = did(4)
    for n, who in enumerate((star, a, b, c, newcomer)):
        ix.set_identity(who, f"u{n}.test", "http://pds")
    (ie,) = ids(ix, newcomer)
    g.mute(ie, ib)
    # most followed first; not oneself, nor muted, nor blocked, nor already followed
    assert g.suggestions(ie, 10, 0) == [s, ic, ia]
    assert g.suggestions(ic, 10, 0) == [ie, ib]
    assert g.suggestions(None, 2, 1) == [ie, ic]
    g.unmute(ic, ia)
    assert g.mutes(ic, 10, None) == []
    rel = g.relations(ia, [ib, ic, s])
    assert rel[ib].blocking == tid(300) and rel[ib].blocked_by is None
    assert rel[s].following == tid(100) and rel[ic].following is None
    assert g.relations(ib, [ia])[ia].blocked_by == tid(300)


def test_notifications_page_count_and_hide(ix: Indexer) -> None:
    me, a, b = did(0), did(1), did(2)
    post = put(ix, me, "app.bsky.feed.post", tid(1), {"text": "hi", "createdAt": T})
    ref = {"uri": f"at://{me}/app.bsky.feed.post/{tid(1)}", "cid": post}
    for n, who in enumerate((a, b)):
        put(ix, who, "app.bsky.feed.like", tid(200 + n), {"subject": ref, "createdAt": T})
        follow(ix, who, me, tid(100 + n))
    notes = Notifications(ix.store)
    im, ia, ib = ids(ix, me, a, b)
    rows = walk(lambda lim, cur: notes.list(im, lim, cur), lambda r: page_cursor(r.id), 1)
    assert [(r.author, r.reason) for r in rows] == [
        (ib, "follow"),
        (ib, "like"),
        (ia, "follow"),
        (ia, "like"),
    ]
    assert [r.reason for r in notes.list(im, 10, None, reason_codes(["like", "verified"]))] == [
        "like",
        "like",
    ]
    assert notes.list(im, 10, None, reason_codes(["verified"])) == []
    assert notes.unread(im, 0) == 4
    notes.set_seen(im, rows[1].indexed_at)
    assert notes.seen_at(im) == rows[1].indexed_at
    assert notes.unread(im, notes.seen_at(im)) == 1
    GraphReader(ix.store).mute(im, ib)
    assert {r.author for r in notes.list(im, 10, None)} == {ia}
    assert notes.unread(im, 0) == 2
    put(ix, me, "app.bsky.graph.block", tid(300), {"subject": a, "createdAt": T})
    assert notes.list(im, 10, None) == [] and notes.unread(im, 0) == 0


@pytest.mark.parametrize(
    "raw", ["", "x", "1:", "-1:abc", "1" * 20 + ":a", "a:b:c", "1:" + "a" * 700]
)
def test_malformed_cursors_are_refused(raw: str) -> None:
    with pytest.raises(InvalidInputError):
        parse_cursor(raw, "is")


def test_cursor_round_trip_keeps_colons_in_rkeys() -> None:
    row = EdgeRow(3, "a:b", 4, 17)
    assert parse_cursor(subject_cursor(row), "iis") == (17, 3, "a:b")
    assert parse_cursor(edge_cursor(row), "is") == (17, "a:b")


def test_query_parsing_and_quoting() -> None:
    q = parse_query('Hello "big  World" from:@alice.test NEAR* OR (x)')
    assert q.terms == (("hello",), ("big", "world"), ("near",), ("or",), ("x",))
    assert q.author == "alice.test"
    assert fts5_match(q.terms[:2], prefix=True) == '"hello"* "big world"*'
    assert pg_tsquery((("it",), ("a", "b")), prefix=False) == "('it') & ('a' <-> 'b' | 'a.b')"
    assert parse_query("don't").terms == (("don", "t"),)  # one word, split: a phrase
    assert parse_query("foo_bar").terms == (("foo", "bar"),)  # as both engines split it
    assert fts5_words((("a",), ("b", 'c"'))) == '"a" "b" "c"""'
    assert has_phrases("Un Café, au LAIT!", (("cafe", "au", "lait"), ("un",)))
    assert has_phrases("whatever", (("single",),))  # one-word terms are the index's job
    assert not has_phrases("au cafe", (("cafe", "au"),))
    assert not has_phrases("cafeau", (("cafe", "au"),))
    for bad in ("", "!!! ???", '"" ""', "x" * 1001, " ".join("w" * 17)):
        with pytest.raises(BadQueryError):
            parse_query(bad)


def test_search_posts_and_actors(ix: Indexer) -> None:
    a, b = did(1), did(2)
    ix.set_identity(a, "alice.test", "http://pds")
    ix.set_identity(b, "bob.test", "http://pds")
    put(ix, a, "app.bsky.actor.profile", "self", {"displayName": "Wonder Land"})
    put(ix, a, "app.bsky.feed.post", tid(1), {"text": "apples AND pears", "createdAt": T})
    put(ix, b, "app.bsky.feed.post", tid(2), {"text": "Pears only", "createdAt": T})
    put(ix, b, "app.bsky.feed.post", tid(3), {"text": 'NEAR(x) "odd" *', "createdAt": T})
    put(ix, b, "app.bsky.feed.post", tid(4), {"text": "see example.com, foo-bar", "createdAt": T})
    put(ix, b, "app.bsky.feed.post", tid(5), {"text": "snake_case words", "createdAt": T})
    s = Search(ix.store)
    ia, ib = ids(ix, a, b)

    def posts(raw: str, viewer: int | None = None, author: int | None = None) -> list[str]:
        hits, _ = s.posts(
            parse_query(raw),
            author,
            viewer,
            top=False,
            since_us=None,
            until_us=None,
            limit=10,
            cursor=None,
        )
        return [h.post[1] for h in hits]

    assert posts("pears") == [tid(2), tid(1)]  # same time: newest id first
    assert posts("apples pears") == [tid(1)]
    assert posts('"only pears"') == []
    assert posts("pears", author=ia) == [tid(1)]
    assert posts('NEAR(x) "odd" *') == [tid(3)]
    assert posts("example.com") == [tid(4)] and posts("Example.COM foo-bar") == [tid(4)]
    assert posts("snake_case") == [tid(5)] and posts('"case snake"') == []
    assert posts("example") == (
        [] if ix.store.dialect == "postgresql" else [tid(4)]
    )  # FTS syntax is only words here
    assert s.actors((("wond",),), None, 10, 0) == [ia]
    assert s.actors((("alice",), ("test",)), None, 10, 0) == [ia]
    assert s.actors((("bo",),), None, 10, 0) == [ib]
    put(ix, b, "app.bsky.graph.block", tid(300), {"subject": a, "createdAt": T})
    assert s.actors((("wond",),), ib, 10, 0) == []
    assert posts("pears", viewer=ia) == [tid(1)]
    with ix.store.transaction():
        ix.delete(a, "app.bsky.feed.post", tid(1))
    assert posts("pears") == [tid(2)]


@pytest.mark.parametrize("top", [False, True])
def test_filtered_search_reads_in_batches_and_pages(
    ix: Indexer, top: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(search, "SCAN_BATCH", 3)  # many batches for a few posts
    monkeypatch.setattr(search, "MAX_SCAN", 5)  # and pages cut short by the bound
    a = did(1)
    german = set()
    for n in range(20):
        langs = ["de"] if n % 4 == 0 else ["en"]
        if n % 4 == 0:
            german.add(tid(n))
        put(ix, a, "app.bsky.feed.post", tid(n), {"text": "word", "langs": langs, "createdAt": T})
    s = Search(ix.store)
    found: list[str] = []
    cursor = None
    for _ in range(50):
        hits, cursor = s.posts(
            parse_query("word"),
            None,
            None,
            top=top,
            since_us=None,
            until_us=None,
            limit=2,
            cursor=cursor,
            keep=PostFilter(lang="de"),
        )
        assert len(hits) <= 2
        found += [h.post[1] for h in hits]
        if cursor is None:
            break
    assert sorted(found) == sorted(german) and len(found) == len(german)
    if not top:
        assert found == sorted(german, reverse=True)
