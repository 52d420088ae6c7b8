"""Full-text search of posts and actors: FTS5 on SQLite, ``tsvector`` on PostgreSQL.

A query string is read (sans-IO, :func:`parse_query`) into words and ``"quoted
phrases"``; every one must match (AND). Letters and digits make words, everything else
separates them, and case and (on SQLite) diacritics do not matter, the way both
engines tokenize the indexed text with the ``simple`` / ``unicode61`` rules. SQLite's
post index keeps no word positions (``detail=none``, for its size), so it finds the
posts holding every word of a phrase, and the phrase itself is checked against the
post's text (:func:`has_phrases`), reading a bounded number of posts per page as the
record filters below do. A
``from:<handle or DID>`` term limits posts to one author. Filters the index has no
column for (``mentions``, ``lang``, ``domain``, ``url``, ``tag``) are applied to the
records of the matching posts (:mod:`plaza.services.appview.post_filters`), reading a
bounded number of them per page.

Actor search matches every word as a prefix of a word of the handle, display name or
description (``ali`` finds ``alice.test``); post search matches whole words. Results
leave out accounts hidden from the viewer (blocked either way; muted accounts' posts
too) and deactivated accounts.

Posts come newest first (``sort=latest``, a keyset cursor ``<sort_at>:<id>``) or by
engagement (``sort=top``, likes + reposts + replies, an offset cursor); actors by
relevance (FTS5's bm25 / ``ts_rank``) with an offset cursor.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any, Final

from plaza.atproto import cbor
from plaza.errors import InvalidInputError
from plaza.services.appview.compact import unpack_post
from plaza.services.appview.post_filters import PostFilter
from plaza.services.appview.reader import PostKey
from plaza.services.appview.reader_graph import hidden_args, not_hidden, parse_cursor
from plaza.services.appview.store import AppviewStore

MAX_QUERY_CHARS: Final = 1000
MAX_TERMS: Final = 16
MAX_OFFSET: Final = 10_000
SCAN_BATCH: Final = 200  # posts read at once when record filters apply
MAX_SCAN: Final = 2_000  # posts read at most for one page when record filters apply

_TERM = re.compile(r'"([^"]*)"|(\S+)')
_WORD = re.compile(r"[^\W_]+", re.UNICODE)


class BadQueryError(InvalidInputError):
    code = "BadQueryString"


@dataclass(frozen=True)
class Query:
    """A parsed search: each term a tuple of words (a phrase when more than one)."""

    terms: tuple[tuple[str, ...], ...]
    author: str | None = None


def parse_query(raw: str) -> Query:
    """Words and phrases of ``raw`` (see the module docstring); ``from:x`` names an
    author. A query with no word at all is :class:`BadQueryError`."""
    if len(raw) > MAX_QUERY_CHARS:
        raise BadQueryError(f"query is longer than {MAX_QUERY_CHARS} characters")
    terms: list[tuple[str, ...]] = []
    author = None
    for m in _TERM.finditer(raw):
        phrase, word = m.group(1), m.group(2)
        if word is not None and word.lower().startswith("from:") and len(word) > 5:
            author = word[5:].lstrip("@")
            continue
        words = tuple(w.lower() for w in _WORD.findall(phrase if phrase is not None else word))
        if words:
            terms.append(words)
    if not terms and author is None:
        raise BadQueryError("query has no words to search for")
    if len(terms) > MAX_TERMS:
        raise BadQueryError(f"query has more than {MAX_TERMS} terms")
    return Query(tuple(terms), author)


def fts5_match(terms: tuple[tuple[str, ...], ...], *, prefix: bool) -> str:
    """An FTS5 MATCH expression: every term a quoted phrase (AND), prefixed if asked."""
    star = "*" if prefix else ""
    return " ".join('"' + " ".join(t).replace('"', '""') + '"' + star for t in terms)


def fts5_words(terms: tuple[tuple[str, ...], ...]) -> str:
    """An FTS5 MATCH expression for an index without positions: every word of every
    term, each quoted (AND)."""
    return " ".join('"' + w.replace('"', '""') + '"' for t in terms for w in t)


def _fold(word: str) -> str:
    """A word as ``unicode61 remove_diacritics 2`` compares it: lower case, without
    combining marks."""
    decomposed = unicodedata.normalize("NFKD", word.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def has_phrases(text: str, terms: tuple[tuple[str, ...], ...]) -> bool:
    """Whether every term of more than one word is in ``text`` as consecutive words."""
    phrases = [" ".join(_fold(w) for w in t) for t in terms if len(t) > 1]
    if not phrases:
        return True
    words = " " + " ".join(_fold(w) for w in _WORD.findall(text)) + " "
    return all(f" {p} " in words for p in phrases)


def pg_tsquery(terms: tuple[tuple[str, ...], ...], *, prefix: bool) -> str:
    """A ``to_tsquery('simple', ...)`` text: words of a phrase joined by ``<->``, terms
    by ``&``; each word quoted (so nothing in it is an operator), prefixed if asked. A
    phrase may also match as one host name (PostgreSQL's parser keeps ``example.com``
    whole, where the words of a query are split at the dot): ``'example.com'`` is an
    alternative."""
    star = ":*" if prefix else ""

    def word(w: str) -> str:
        return "'" + w.replace("\\", "\\\\").replace("'", "''") + "'" + star

    def term(t: tuple[str, ...]) -> str:
        phrase = " <-> ".join(word(w) for w in t)
        return f"({phrase} | {word('.'.join(t))})" if len(t) > 1 else f"({phrase})"

    return " & ".join(term(t) for t in terms)


def offset_cursor(raw: str | None) -> int:
    key = parse_cursor(raw, "i")
    offset = 0 if key is None else int(key[0])
    if offset > MAX_OFFSET:
        raise InvalidInputError(f"cannot page past {MAX_OFFSET} results")
    return offset


@dataclass(frozen=True)
class PostHit:
    post: PostKey
    id: int
    sort_at: int


class Search:
    """Search queries over an :class:`AppviewStore` (see the module docstring)."""

    def __init__(self, store: AppviewStore) -> None:
        self.store = store
        self.db = store.db
        self.pg = store.dialect == "postgresql"

    def actors(
        self, terms: tuple[tuple[str, ...], ...], viewer: int | None, limit: int, offset: int
    ) -> list[int]:
        """Ids of active accounts whose handle, name or description matches every term as
        a prefix, best first."""
        hide = ""
        hide_args: tuple[int, ...] = ()
        if viewer is not None:  # muting is no reason to be unfindable; blocks are
            hide, hide_args = f" AND {not_hidden('a.id', muted=False)}", (viewer, viewer)
        if self.pg:
            sql = (
                "SELECT a.id FROM actors a WHERE a.search @@ to_tsquery('simple', ?) "
                f"AND a.active = 1 AND a.handle IS NOT NULL{hide} "
                "ORDER BY ts_rank(a.search, to_tsquery('simple', ?)) DESC, a.followers DESC, "
                "a.id LIMIT ? OFFSET ?"
            )
            q = pg_tsquery(terms, prefix=True)
            args: tuple[Any, ...] = (q, *hide_args, q, limit, offset)
        else:
            sql = (
                "SELECT a.id FROM actors_fts f JOIN actors a ON a.id = f.rowid "
                f"WHERE actors_fts MATCH ? AND a.active = 1 AND a.handle IS NOT NULL{hide} "
                "ORDER BY f.rank, a.followers DESC, a.id LIMIT ? OFFSET ?"
            )
            args = (fts5_match(terms, prefix=True), *hide_args, limit, offset)
        return [int(r[0]) for r in self.db.query(sql, args)]

    def posts(
        self,
        query: Query,
        author: int | None,
        viewer: int | None,
        *,
        top: bool,
        since_us: int | None,
        until_us: int | None,
        limit: int,
        cursor: str | None,
        keep: PostFilter | None = None,
    ) -> tuple[list[PostHit], str | None]:
        """Posts matching every term of ``query`` (by ``author`` when given; passing
        ``keep``, read from their records), newest first or ``top`` first; and the cursor
        of the next page (None: no more). With ``keep``, at most :data:`MAX_SCAN` posts
        are read for one page, which may then hold fewer than ``limit``."""
        where: list[str] = []
        args: list[Any] = []
        if query.terms and self.pg:
            where.append("to_tsvector('simple', p.text) @@ to_tsquery('simple', ?)")
            args.append(pg_tsquery(query.terms, prefix=False))
        elif query.terms:
            where.append("p.id IN (SELECT rowid FROM posts_fts WHERE posts_fts MATCH ?)")
            args.append(fts5_words(query.terms))
        if author is not None:
            where.append("p.author = ?")
            args.append(author)
        if since_us is not None:
            where.append("p.sort_at >= ?")
            args.append(since_us)
        if until_us is not None:
            where.append("p.sort_at < ?")
            args.append(until_us)
        where.append("p.author IN (SELECT id FROM actors WHERE active = 1)")
        if viewer is not None:
            where.append(not_hidden("p.author"))
            args += hidden_args(viewer)
        if top:
            order = "p.likes + p.reposts + p.replies DESC, p.sort_at DESC, p.id DESC"
            offset = offset_cursor(cursor)
            key = None
        else:
            order = "p.sort_at DESC, p.id DESC"
            offset = 0
            key = parse_cursor(cursor, "ii")
        phrases = not self.pg and any(len(t) > 1 for t in query.terms)
        records = keep is not None and keep.active
        filtering = records or phrases
        batch = max(limit, SCAN_BATCH) if filtering else limit
        columns = "p.author, p.rkey, p.id, p.sort_at" + (", p.record, p.text" if filtering else "")
        hits: list[PostHit] = []
        scanned = 0
        last: Any = None
        while True:
            page_where, page_args = list(where), list(args)
            if key is not None:
                page_where.append("(p.sort_at, p.id) < (?, ?)")
                page_args += key
            rows = self.db.query(
                f"SELECT {columns} FROM posts p WHERE {' AND '.join(page_where)} "
                f"ORDER BY {order} LIMIT ? OFFSET ?",
                (*page_args, batch, offset + scanned if top else 0),
            )
            for r in rows:
                last = r
                scanned += 1
                if not filtering or (
                    (not phrases or has_phrases(str(r[5]), query.terms))
                    and (
                        keep is None
                        or not records
                        or keep.matches(cbor.decode(unpack_post(bytes(r[4]), str(r[5]), int(r[3]))))
                    )
                ):
                    hits.append(PostHit((int(r[0]), str(r[1])), int(r[2]), int(r[3])))
                if len(hits) == limit:
                    break
            if last is not None and not top:
                key = (int(last[3]), int(last[2]))
            if len(hits) == limit:
                break
            if len(rows) < batch:
                return hits, None  # every match read
            if scanned >= MAX_SCAN:
                break
        if top:
            return hits, str(offset + scanned)
        return hits, f"{last[3]}:{last[2]}"
