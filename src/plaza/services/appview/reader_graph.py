"""Reading the social graph and who interacted with what: follows, followers, blocks,
mutes, lists and their items, relationships, likes, reposts and quotes of a post, an
actor's likes, and suggested accounts. Rows, never JSON (views build the Lexicon's shapes).

Every list is a page, newest first, over a key that is unique and totally ordered:
``(created, rkey)`` for one account's own records, ``(created, actor, rkey)`` for
records many accounts made about one subject. The cursor is that key of the page's
last row, its parts joined by ``:`` (the rkey last, so it may hold ``:`` itself):
:func:`page_cursor` writes it, :func:`parse_cursor` reads it back or refuses it with
``InvalidRequest``. A page holds only rows strictly after the cursor in that order
(SQL row-value comparison), so rows sharing a time are neither skipped nor repeated.

Mutes are the app view's own private state (no record in any repository):
:meth:`GraphReader.mute` and :meth:`GraphReader.unmute` write them.

Accounts that block the viewer or that the viewer blocks are filtered out in SQL by
:func:`not_hidden`, so a page is full whenever more rows exist; muted accounts stay in
lists of accounts (one may follow an account one muted), and are left out of
suggestions, notifications, post search and feeds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from plaza.errors import InvalidInputError
from plaza.services.appview.compact import unpack_post
from plaza.services.appview.reader import PostKey
from plaza.services.appview.store import AppviewStore

MAX_CURSOR_CHARS: Final = 600


def page_cursor(*parts: int | str) -> str:
    """A cursor from a row's page key (see the module docstring)."""
    return ":".join(str(p) for p in parts)


def parse_cursor(raw: str | None, shape: str) -> tuple[Any, ...] | None:
    """Read a cursor whose parts are ``shape`` (``i`` an integer, ``s`` text, last only);
    None when there is none; ``InvalidRequest`` when it is malformed."""
    if raw is None:
        return None
    if len(raw) > MAX_CURSOR_CHARS:
        raise InvalidInputError("malformed cursor")
    parts = raw.split(":", len(shape) - 1)
    if len(parts) != len(shape):
        raise InvalidInputError("malformed cursor")
    out: list[Any] = []
    for kind, part in zip(shape, parts, strict=True):
        if kind == "i":
            if not (part.isascii() and part.isdigit()) or len(part) > 19:
                raise InvalidInputError("malformed cursor")
            out.append(int(part))
        else:
            if not part:
                raise InvalidInputError("malformed cursor")
            out.append(part)
    return tuple(out)


def not_hidden(column: str, *, muted: bool = True) -> str:
    """SQL: ``column`` (an actor id) is not blocked by, blocking, or (``muted``) muted by
    the viewer (three ``?`` parameters, or two without ``muted``, each the viewer's id:
    see :func:`hidden_args`)."""
    sql = (
        f"{column} NOT IN (SELECT subject FROM blocks WHERE actor = ?) AND "
        f"{column} NOT IN (SELECT actor FROM blocks WHERE subject = ?)"
    )
    if muted:
        sql += f" AND {column} NOT IN (SELECT subject FROM mutes WHERE actor = ?)"
    return sql


def hidden_args(viewer: int) -> tuple[int, int, int]:
    return (viewer, viewer, viewer)


@dataclass(frozen=True)
class EdgeRow:
    """A follow, block, like, repost or list item: who made it (``actor``), its rkey,
    the account it is about (``subject``; for likes and reposts, the liker) and when."""

    actor: int
    rkey: str
    subject: int
    created: int


@dataclass(frozen=True)
class LikeRow:
    """One of an actor's likes: the post liked and when."""

    rkey: str
    post: PostKey
    created: int


@dataclass(frozen=True)
class QuoteRow:
    """A post quoting another: its key, sort time, row id and record."""

    post: PostKey
    sort_at: int
    id: int
    record: bytes


@dataclass(frozen=True)
class ListRow:
    actor: int
    rkey: str
    cid: bytes
    record: bytes
    indexed_at: int
    items: int


@dataclass(frozen=True)
class Relation:
    """The records between two accounts: rkeys of the primary account's follow and block
    of the other (``following``, ``blocking``) and of the other's (``followed_by``,
    ``blocked_by``)."""

    following: str | None = None
    followed_by: str | None = None
    blocking: str | None = None
    blocked_by: str | None = None


class GraphReader:
    """Graph queries over an :class:`AppviewStore` (see the module docstring)."""

    def __init__(self, store: AppviewStore) -> None:
        self.store = store
        self.db = store.db

    def _hide(self, column: str, viewer: int | None) -> tuple[str, tuple[int, ...]]:
        """SQL leaving out accounts that block or are blocked by ``viewer`` (mutes do not
        hide anyone from lists of accounts)."""
        if viewer is None:
            return "", ()
        return f" AND {not_hidden(column, muted=False)}", (viewer, viewer)

    # -- one account's own records, by (created, rkey) -------------------------------
    def _own(
        self,
        table: str,
        actor: int,
        limit: int,
        cursor: tuple[Any, ...] | None,
        viewer: int | None,
    ) -> list[EdgeRow]:
        hide, hide_args = self._hide("subject", viewer)
        after = "" if cursor is None else " AND (created, rkey) < (?, ?)"
        after_args = cursor or ()
        rows = self.db.query(
            f"SELECT rkey, subject, created FROM {table} WHERE actor = ?{after}{hide} "
            "ORDER BY created DESC, rkey DESC LIMIT ?",
            (actor, *after_args, *hide_args, limit),
        )
        return [EdgeRow(actor, str(r[0]), int(r[1]), int(r[2])) for r in rows]

    def follows(
        self, actor: int, limit: int, cursor: str | None, viewer: int | None = None
    ) -> list[EdgeRow]:
        """Whom ``actor`` follows, newest first (cursor: :func:`edge_cursor`)."""
        return self._own("follows", actor, limit, parse_cursor(cursor, "is"), viewer)

    def blocks(self, actor: int, limit: int, cursor: str | None) -> list[EdgeRow]:
        """Whom ``actor`` blocks, newest first."""
        return self._own("blocks", actor, limit, parse_cursor(cursor, "is"), None)

    def followers(
        self, subject: int, limit: int, cursor: str | None, viewer: int | None = None
    ) -> list[EdgeRow]:
        """Who follows ``subject``, newest first (cursor: :func:`subject_cursor`)."""
        key = parse_cursor(cursor, "iis")
        hide, hide_args = self._hide("actor", viewer)
        after = "" if key is None else " AND (created, actor, rkey) < (?, ?, ?)"
        rows = self.db.query(
            f"SELECT actor, rkey, created FROM follows WHERE subject = ?{after}{hide} "
            "ORDER BY created DESC, actor DESC, rkey DESC LIMIT ?",
            (subject, *(key or ()), *hide_args, limit),
        )
        return [EdgeRow(int(r[0]), str(r[1]), subject, int(r[2])) for r in rows]

    def mutes(self, actor: int, limit: int, cursor: str | None) -> list[int]:
        """The accounts ``actor`` muted (by id, highest first; cursor: the last id)."""
        key = parse_cursor(cursor, "i")
        after = "" if key is None else " AND subject < ?"
        rows = self.db.query(
            f"SELECT subject FROM mutes WHERE actor = ?{after} ORDER BY subject DESC LIMIT ?",
            (actor, *(key or ()), limit),
        )
        return [int(r[0]) for r in rows]

    def mute(self, actor: int, subject: int) -> None:
        with self.store.transaction():
            if self.db.one("SELECT 1 FROM mutes WHERE actor = ? AND subject = ?", (actor, subject)):
                return
            self.db.execute("INSERT INTO mutes (actor, subject) VALUES (?, ?)", (actor, subject))

    def unmute(self, actor: int, subject: int) -> None:
        with self.store.transaction():
            self.db.execute("DELETE FROM mutes WHERE actor = ? AND subject = ?", (actor, subject))

    # -- likes and reposts -----------------------------------------------------------
    def interactions(
        self,
        table: str,
        *,
        post: PostKey,
        cid: bytes | None,
        limit: int,
        cursor: str | None,
        viewer: int | None,
    ) -> list[EdgeRow]:
        """Likes (``table`` "likes") or reposts ("reposts") of ``post``, newest first;
        only those of version ``cid`` when given. ``subject`` is the liker/reposter."""
        assert table in ("likes", "reposts")
        key = parse_cursor(cursor, "iis")
        hide, hide_args = self._hide("actor", viewer)
        where = "subject_author = ? AND subject_rkey = ?"
        args: tuple[Any, ...] = post
        if cid is not None:
            where += " AND subject_cid = ?"
            args = (*args, cid)
        after = "" if key is None else " AND (created, actor, rkey) < (?, ?, ?)"
        rows = self.db.query(
            f"SELECT actor, rkey, created FROM {table} WHERE {where}{after}{hide} "
            "ORDER BY created DESC, actor DESC, rkey DESC LIMIT ?",
            (*args, *(key or ()), *hide_args, limit),
        )
        return [EdgeRow(int(r[0]), str(r[1]), int(r[0]), int(r[2])) for r in rows]

    def actor_likes(
        self, actor: int, limit: int, cursor: str | None, viewer: int | None
    ) -> list[LikeRow]:
        """The posts ``actor`` liked, newest like first (posts by blocked authors left out)."""
        key = parse_cursor(cursor, "is")
        hide, hide_args = self._hide("subject_author", viewer)
        after = "" if key is None else " AND (created, rkey) < (?, ?)"
        rows = self.db.query(
            "SELECT rkey, subject_author, subject_rkey, created FROM likes "
            f"WHERE actor = ?{after}{hide} ORDER BY created DESC, rkey DESC LIMIT ?",
            (actor, *(key or ()), *hide_args, limit),
        )
        return [LikeRow(str(r[0]), (int(r[1]), str(r[2])), int(r[3])) for r in rows]

    def quotes(
        self, post: PostKey, limit: int, cursor: str | None, viewer: int | None
    ) -> list[QuoteRow]:
        """Posts quoting ``post``, newest first (cursor: ``<sort_at>:<id>``); posts by
        accounts blocked either way or muted are left out."""
        key = parse_cursor(cursor, "ii")
        after = "" if key is None else " AND (sort_at, id) < (?, ?)"
        hide = ""
        hide_args: tuple[int, ...] = ()
        if viewer is not None:
            hide, hide_args = f" AND {not_hidden('author')}", hidden_args(viewer)
        rows = self.db.query(
            "SELECT author, rkey, sort_at, id, record, text FROM posts WHERE quote_author = ? "
            f"AND quote_rkey = ?{after}{hide} ORDER BY sort_at DESC, id DESC LIMIT ?",
            (*post, *(key or ()), *hide_args, limit),
        )
        return [
            QuoteRow(
                (int(r[0]), str(r[1])),
                int(r[2]),
                int(r[3]),
                unpack_post(bytes(r[4]), str(r[5]), int(r[2])),
            )
            for r in rows
        ]

    # -- lists -----------------------------------------------------------------------
    _LIST_COLS: Final = "actor, rkey, cid, record, indexed_at, items"

    @staticmethod
    def _list(r: Any) -> ListRow:
        return ListRow(int(r[0]), str(r[1]), bytes(r[2]), bytes(r[3]), int(r[4]), max(0, int(r[5])))

    def lists(self, actor: int, limit: int, cursor: str | None) -> list[ListRow]:
        """``actor``'s lists, newest rkey first (cursor: the last rkey)."""
        key = parse_cursor(cursor, "s")
        after = "" if key is None else " AND rkey < ?"
        rows = self.db.query(
            f"SELECT {self._LIST_COLS} FROM lists WHERE actor = ?{after} "
            "ORDER BY rkey DESC LIMIT ?",
            (actor, *(key or ()), limit),
        )
        return [self._list(r) for r in rows]

    def one_list(self, actor: int, rkey: str) -> ListRow | None:
        row = self.db.one(
            f"SELECT {self._LIST_COLS} FROM lists WHERE actor = ? AND rkey = ?", (actor, rkey)
        )
        return None if row is None else self._list(row)

    def list_items(
        self, actor: int, list_rkey: str, limit: int, cursor: str | None, viewer: int | None
    ) -> list[EdgeRow]:
        """The items of list ``(actor, list_rkey)``, newest first."""
        key = parse_cursor(cursor, "is")
        hide, hide_args = self._hide("subject", viewer)
        after = "" if key is None else " AND (created, rkey) < (?, ?)"
        rows = self.db.query(
            "SELECT rkey, subject, created FROM list_items WHERE actor = ? AND list_rkey = ?"
            f"{after}{hide} ORDER BY created DESC, rkey DESC LIMIT ?",
            (actor, list_rkey, *(key or ()), *hide_args, limit),
        )
        return [EdgeRow(actor, str(r[0]), int(r[1]), int(r[2])) for r in rows]

    # -- relationships ---------------------------------------------------------------
    def relations(self, actor: int, others: list[int]) -> dict[int, Relation]:
        """The follows and blocks between ``actor`` and each of ``others`` (every one of
        ``others`` is in the answer; :class:`Relation` with all None: none)."""
        wanted = sorted(set(others))
        if not wanted:
            return {}
        marks = ",".join("?" * len(wanted))

        def edges(table: str, me: str, other: str) -> dict[int, str]:
            rows = self.db.query(
                f"SELECT {other}, rkey FROM {table} WHERE {me} = ? AND {other} IN ({marks})",
                (actor, *wanted),
            )
            return {int(r[0]): str(r[1]) for r in rows}

        following = edges("follows", "actor", "subject")
        followed_by = edges("follows", "subject", "actor")
        blocking = edges("blocks", "actor", "subject")
        blocked_by = edges("blocks", "subject", "actor")
        return {
            i: Relation(following.get(i), followed_by.get(i), blocking.get(i), blocked_by.get(i))
            for i in wanted
        }

    # -- suggestions -----------------------------------------------------------------
    def suggestions(self, viewer: int | None, limit: int, offset: int) -> list[int]:
        """Accounts to follow, most followed first: active, with a handle, and (for a
        viewer) neither the viewer, nor followed by, hidden from, or muted by them."""
        where = "active = 1 AND handle IS NOT NULL"
        args: tuple[Any, ...] = ()
        if viewer is not None:
            where += (
                f" AND id != ? AND id NOT IN (SELECT subject FROM follows WHERE actor = ?)"
                f" AND {not_hidden('id')}"
            )
            args = (viewer, viewer, *hidden_args(viewer))
        rows = self.db.query(
            f"SELECT id FROM actors WHERE {where} ORDER BY followers DESC, id DESC "
            "LIMIT ? OFFSET ?",
            (*args, limit, offset),
        )
        return [int(r[0]) for r in rows]


def edge_cursor(row: EdgeRow) -> str:
    """The cursor after ``row`` in a list of one account's own records."""
    return page_cursor(row.created, row.rkey)


def subject_cursor(row: EdgeRow) -> str:
    """The cursor after ``row`` in a list of many accounts' records about one subject."""
    return page_cursor(row.created, row.actor, row.rkey)
