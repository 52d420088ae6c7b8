"""Reading the index: queries that return rows, never JSON.

:class:`Reader` answers the questions views and handlers ask — actors and posts by
key, a timeline's or an author's feed items, a post's replies, a viewer's likes,
reposts, follows, blocks and mutes — with plain frozen dataclasses.
:mod:`plaza.services.appview.views` turns those into the Lexicon's shapes.

Posts are keyed by :data:`PostKey` ``(author id, rkey)``. Feeds page by a cursor
``"<sort_at>:<tiebreak>"`` (:class:`FeedCursor`): items come newest first, ordered by
``(sort_at, tiebreak)``, and a page holds only items strictly before the cursor, so no
item is skipped or repeated between pages even when several share a time.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Final

from plaza.atproto.cid import CID
from plaza.atproto.errors import AtprotoError
from plaza.atproto.syntax import normalize_handle, parse_at_uri
from plaza.db import Row
from plaza.errors import InvalidInputError
from plaza.services.appview.compact import unpack_post
from plaza.services.appview.schema import EMBED_IMAGES, EMBED_VIDEO
from plaza.services.appview.store import AppviewStore

PostKey = tuple[int, str]

_TIE_SLACK: Final = 25  # extra rows fetched per page, for items sharing a sort time

_ACTOR_COLS: Final = (
    "id, did, handle, pds, display_name, description, avatar, banner, pinned_uri, "
    "pinned_cid, profile_created, indexed_at, followers, follows, posts, active, profile_cid"
)
_POST_COLS: Final = (
    "id, author, rkey, record, sort_at, indexed_at, parent_author, parent_rkey, "
    "root_author, root_rkey, quote_author, quote_rkey, embed, likes, reposts, replies, quotes, "
    "text"
)

AUTHOR_FILTERS: Final = (
    "posts_with_replies",
    "posts_no_replies",
    "posts_with_media",
    "posts_and_author_threads",
    "posts_with_video",
)


@dataclass(frozen=True)
class ActorRow:
    id: int
    did: str
    handle: str | None
    pds: str | None
    display_name: str | None
    description: str | None
    avatar: bytes | None
    banner: bytes | None
    pinned_uri: str | None
    pinned_cid: bytes | None
    profile_created: str | None
    indexed_at: int
    followers: int
    follows: int
    posts: int
    active: bool
    has_profile: bool


@dataclass(frozen=True)
class PostRow:
    id: int
    author: int
    rkey: str
    record: bytes
    sort_at: int
    indexed_at: int
    parent: PostKey | None
    root: PostKey | None
    quote: PostKey | None
    embed: int
    likes: int
    reposts: int
    replies: int
    quotes: int

    @property
    def key(self) -> PostKey:
        return (self.author, self.rkey)

    @property
    def cid(self) -> CID:
        """The post's CID: the hash of its record block."""
        return CID.compute(self.record)


@dataclass(frozen=True)
class FeedItem:
    """A post in a feed; ``repost`` = ``(reposter id, repost rkey)`` when it is there
    because someone reposted it."""

    post: PostKey
    sort_at: int
    repost: tuple[int, str] | None = None

    @property
    def tiebreak(self) -> str:
        if self.repost is None:
            return f"p{self.post[0]}/{self.post[1]}"
        return f"r{self.repost[0]}/{self.repost[1]}"


@dataclass(frozen=True)
class FeedCursor:
    sort_at: int
    tiebreak: str

    @classmethod
    def parse(cls, raw: str | None) -> FeedCursor | None:
        if raw is None:
            return None
        head, _, tail = raw.partition(":")
        if not (head.isascii() and head.isdigit()) or len(head) > 19:
            raise InvalidInputError("malformed cursor")
        return cls(int(head), tail)

    def __str__(self) -> str:
        return f"{self.sort_at}:{self.tiebreak}"


@dataclass(frozen=True)
class Relationship:
    """How the viewer stands to an actor: rkeys of the records that say so."""

    following: str | None = None
    followed_by: str | None = None
    blocking: str | None = None
    blocked_by: bool = False
    muted: bool = False


def _actor(r: Row) -> ActorRow:
    return ActorRow(
        id=int(r[0]),
        did=str(r[1]),
        handle=None if r[2] is None else str(r[2]),
        pds=None if r[3] is None else str(r[3]),
        display_name=r[4],
        description=r[5],
        avatar=r[6],
        banner=r[7],
        pinned_uri=r[8],
        pinned_cid=r[9],
        profile_created=r[10],
        indexed_at=int(r[11]),
        followers=max(0, int(r[12])),
        follows=max(0, int(r[13])),
        posts=max(0, int(r[14])),
        active=bool(r[15]),
        has_profile=r[16] is not None,
    )


def _post(r: Row) -> PostRow:
    def key(a: Any, b: Any) -> PostKey | None:
        return None if a is None else (int(a), str(b))

    return PostRow(
        id=int(r[0]),
        author=int(r[1]),
        rkey=str(r[2]),
        record=unpack_post(bytes(r[3]), str(r[17]), int(r[4])),
        sort_at=int(r[4]),
        indexed_at=int(r[5]),
        parent=key(r[6], r[7]),
        root=key(r[8], r[9]),
        quote=key(r[10], r[11]),
        embed=int(r[12]),
        likes=max(0, int(r[13])),
        reposts=max(0, int(r[14])),
        replies=max(0, int(r[15])),
        quotes=max(0, int(r[16])),
    )


def _marks(n: int) -> str:
    return ",".join("?" * n)


def _key_chunks(
    keys: Iterable[PostKey], size: int = 300
) -> Iterator[tuple[set[PostKey], list[int], list[str]]]:
    """Post keys in chunks, each with its distinct authors and rkeys (for ``IN`` lists)."""
    wanted = list(set(keys))
    for i in range(0, len(wanted), size):
        chunk = set(wanted[i : i + size])
        yield chunk, sorted({a for a, _ in chunk}), sorted({r for _, r in chunk})


class Reader:
    """Queries over an :class:`AppviewStore` (see the module docstring)."""

    def __init__(self, store: AppviewStore) -> None:
        self.store = store
        self.db = store.db

    # -- actors ----------------------------------------------------------------------
    def resolve(self, actor: str) -> int | None:
        """The id of an at-identifier (a DID or a handle), None if unknown."""
        if actor.startswith("did:"):
            return self.store.find_actor(actor)
        try:
            handle = normalize_handle(actor)
        except AtprotoError as exc:
            raise InvalidInputError(f"actor must be a handle or a DID: {actor[:80]!r}") from exc
        return self.store.find_handle(handle)

    def actors(self, ids: Iterable[int]) -> dict[int, ActorRow]:
        wanted = list(set(ids))
        out: dict[int, ActorRow] = {}
        for i in range(0, len(wanted), 500):
            chunk = wanted[i : i + 500]
            sql = f"SELECT {_ACTOR_COLS} FROM actors WHERE id IN ({_marks(len(chunk))})"
            for row in self.db.query(sql, chunk):
                out[int(row[0])] = _actor(row)
        return out

    # -- posts -----------------------------------------------------------------------
    def post_key(self, uri: str) -> PostKey | None:
        """The key of a post AT-URI (None if its author is unknown); InvalidRequest
        if it is not a post URI."""
        try:
            at = parse_at_uri(uri)
        except AtprotoError as exc:
            raise InvalidInputError(f"not an AT-URI: {uri[:100]!r}") from exc
        if at.collection != "app.bsky.feed.post" or at.rkey is None:
            raise InvalidInputError(f"not a post URI: {uri[:100]!r}")
        author = self.resolve(at.authority)
        return None if author is None else (author, at.rkey)

    def posts(self, keys: Iterable[PostKey]) -> dict[PostKey, PostRow]:
        """The indexed posts among ``keys``, in one query per few hundred keys."""
        out: dict[PostKey, PostRow] = {}
        for chunk, authors, rkeys in _key_chunks(keys):
            sql = (
                f"SELECT {_POST_COLS} FROM posts WHERE author IN ({_marks(len(authors))}) "
                f"AND rkey IN ({_marks(len(rkeys))})"
            )
            for row in self.db.query(sql, (*authors, *rkeys)):
                post = _post(row)
                if post.key in chunk:  # the query's cross product may hold a few more
                    out[post.key] = post
        return out

    def replies(self, key: PostKey, limit: int = 200) -> list[PostRow]:
        """Direct replies to ``key``, oldest first."""
        rows = self.db.query(
            f"SELECT {_POST_COLS} FROM posts WHERE parent_author = ? AND parent_rkey = ? "
            "ORDER BY sort_at LIMIT ?",
            (key[0], key[1], limit),
        )
        return [_post(r) for r in rows]

    # -- feeds -----------------------------------------------------------------------
    def timeline(self, viewer: int, limit: int, cursor: FeedCursor | None) -> list[FeedItem]:
        """Posts and reposts by the accounts ``viewer`` follows, and the viewer's own."""
        authors = "(SELECT subject FROM follows WHERE actor = ? UNION SELECT ?)"
        return self._feed(authors, (viewer, viewer), limit, cursor, reposts=True)

    def author_feed(
        self, author: int, feed_filter: str, limit: int, cursor: FeedCursor | None
    ) -> list[FeedItem]:
        """``author``'s posts (and reposts, except for the media filters)."""
        extra = ""
        if feed_filter == "posts_no_replies":
            extra = " AND parent_author IS NULL"
        elif feed_filter == "posts_with_media":
            extra = f" AND (embed & {EMBED_IMAGES | EMBED_VIDEO}) != 0 AND parent_author IS NULL"
        elif feed_filter == "posts_with_video":
            extra = f" AND (embed & {EMBED_VIDEO}) != 0 AND parent_author IS NULL"
        elif feed_filter == "posts_and_author_threads":
            extra = " AND (parent_author IS NULL OR root_author = author)"
        media = feed_filter in ("posts_with_media", "posts_with_video")
        return self._feed("(?)", (author,), limit, cursor, reposts=not media, extra=extra)

    def _feed(
        self,
        authors: str,
        args: tuple[int, ...],
        limit: int,
        cursor: FeedCursor | None,
        *,
        reposts: bool,
        extra: str = "",
    ) -> list[FeedItem]:
        upper = cursor.sort_at if cursor is not None else 2**62
        fetch = limit + _TIE_SLACK
        newest = self._newest
        span: dict[str, Any] = {"args": args, "upper": upper, "fetch": fetch}
        items = [
            FeedItem((int(a), str(r)), int(s))
            for a, r, s in newest(
                "posts", "author", ("author", "rkey"), authors, **span, extra=extra
            )
        ]
        if reposts:
            cols = ("actor", "rkey", "subject_author", "subject_rkey")
            items += [
                FeedItem((int(sa), str(sr)), int(s), (int(a), str(r)))
                for a, r, sa, sr, s in newest("reposts", "actor", cols, authors, **span)
            ]
        items.sort(key=lambda i: (i.sort_at, i.tiebreak), reverse=True)
        if cursor is not None:
            items = [i for i in items if (i.sort_at, i.tiebreak) < (upper, cursor.tiebreak)]
        return items[:limit]

    def _newest(
        self,
        table: str,
        owner: str,
        cols: tuple[str, ...],
        authors: str,
        *,
        args: tuple[int, ...],
        upper: int,
        fetch: int,
        extra: str = "",
    ) -> list[Row]:
        """The newest ``fetch`` rows of ``table`` (``cols`` and ``sort_at``) owned by
        ``authors`` at or before ``upper``. On PostgreSQL a set of authors given as a
        subquery is read author by author (``LATERAL``, each through the
        ``(owner, sort_at)`` index and cut at ``fetch``): its planner otherwise scans the
        whole table once statistics say a tenth of it matches, which grows with the
        network rather than with the follows."""
        if self.db.dialect == "postgresql" and authors.startswith("(SELECT"):
            inner = ", ".join(cols)
            outer = ", ".join(f"t.{c}" for c in cols)
            return self.db.query(
                f"SELECT {outer}, t.sort_at FROM {authors} AS f(id) CROSS JOIN LATERAL "
                f"(SELECT {inner}, sort_at FROM {table} WHERE {owner} = f.id "
                f"AND sort_at <= ?{extra} ORDER BY sort_at DESC LIMIT ?) AS t "
                "ORDER BY t.sort_at DESC LIMIT ?",
                (*args, upper, fetch, fetch),
            )
        return self.db.query(
            f"SELECT {', '.join(cols)}, sort_at FROM {table} WHERE {owner} IN {authors} "
            f"AND sort_at <= ?{extra} ORDER BY sort_at DESC LIMIT ?",
            (*args, upper, fetch),
        )

    # -- the viewer ------------------------------------------------------------------
    def post_viewer(
        self, viewer: int, keys: Iterable[PostKey]
    ) -> dict[PostKey, tuple[str | None, str | None]]:
        """``(like rkey, repost rkey)`` of ``viewer`` on each of ``keys`` that has one."""
        likes: dict[PostKey, str] = {}
        reposts: dict[PostKey, str] = {}
        for chunk, authors, rkeys in _key_chunks(keys):
            for table, found in (("likes", likes), ("reposts", reposts)):
                rows = self.db.query(
                    f"SELECT subject_author, subject_rkey, rkey FROM {table} "
                    f"WHERE subject_author IN ({_marks(len(authors))}) "
                    f"AND subject_rkey IN ({_marks(len(rkeys))}) AND actor = ?",
                    (*authors, *rkeys, viewer),
                )
                for a, r, rkey in rows:
                    key = (int(a), str(r))
                    if key in chunk:
                        found[key] = str(rkey)
        return {k: (likes.get(k), reposts.get(k)) for k in likes.keys() | reposts.keys()}

    def relationships(self, viewer: int, ids: Iterable[int]) -> dict[int, Relationship]:
        """How ``viewer`` stands to each of ``ids`` (absent: no relation at all)."""
        wanted = [i for i in set(ids) if i != viewer]
        if not wanted:
            return {}
        marks = _marks(len(wanted))
        following = self._edges("follows", "actor", "subject", viewer, wanted)
        followed_by = self._edges("follows", "subject", "actor", viewer, wanted)
        blocking = self._edges("blocks", "actor", "subject", viewer, wanted)
        blocked_by = self._edges("blocks", "subject", "actor", viewer, wanted)
        muted = {
            int(r[0])
            for r in self.db.query(
                f"SELECT subject FROM mutes WHERE actor = ? AND subject IN ({marks})",
                (viewer, *wanted),
            )
        }
        out: dict[int, Relationship] = {}
        for i in wanted:
            rel = Relationship(
                following.get(i),
                followed_by.get(i),
                blocking.get(i),
                i in blocked_by,
                i in muted,
            )
            if rel != Relationship():
                out[i] = rel
        return out

    def _edges(
        self, table: str, me: str, other: str, viewer: int, ids: list[int]
    ) -> dict[int, str]:
        rows = self.db.query(
            f"SELECT {other}, rkey FROM {table} WHERE {me} = ? AND {other} IN ({_marks(len(ids))})",
            (viewer, *ids),
        )
        return {int(r[0]): str(r[1]) for r in rows}

    def hidden_from(self, viewer: int) -> set[int]:
        """Accounts whose content ``viewer`` does not see: blocked either way, or muted."""
        rows = self.db.query(
            "SELECT subject FROM blocks WHERE actor = ? UNION SELECT actor FROM blocks "
            "WHERE subject = ? UNION SELECT subject FROM mutes WHERE actor = ?",
            (viewer, viewer, viewer),
        )
        return {int(r[0]) for r in rows}

    def blocked_between(self, a: int, b: int) -> bool:
        return (
            self.db.one(
                "SELECT 1 FROM blocks WHERE (actor = ? AND subject = ?) OR "
                "(actor = ? AND subject = ?)",
                (a, b, b, a),
            )
            is not None
        )
