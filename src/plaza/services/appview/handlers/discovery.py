"""Finding posts and people: ``app.bsky.feed.searchPosts``, ``app.bsky.actor.searchActors``,
``searchActorsTypeahead`` and ``getSuggestions`` (query syntax and ranking:
:mod:`plaza.services.appview.search`)."""

from __future__ import annotations

from typing import Any

from plaza.errors import InvalidInputError
from plaza.services.appview.reader_graph import GraphReader
from plaza.services.appview.records import parse_time_us
from plaza.services.appview.search import BadQueryError, Search, offset_cursor, parse_query
from plaza.services.appview.xrpc import Call, Method, query

UNSUPPORTED_POST_FILTERS = ("mentions", "lang", "domain", "url", "tag")


def _actor_terms(call: Call) -> tuple[tuple[str, ...], ...]:
    """The words of ``q`` (or the older ``term``); none when it has none."""
    raw = call.param("q") or call.param("term")
    if raw is None:
        return ()
    try:
        return parse_query(raw).terms
    except BadQueryError:
        return ()  # only punctuation (so far): nothing to look for


def _time(call: Call, name: str) -> int | None:
    raw = call.param(name)
    if raw is None:
        return None
    us = parse_time_us(raw) if len(raw) <= 64 else 0
    if us <= 0:
        raise InvalidInputError(f"{name} must be a datetime or a date (YYYY-MM-DD)")
    return us


async def search_posts(call: Call) -> Any:
    raw = call.req_param("q")
    limit = call.limit(25, 100)
    sort = call.param("sort") or "latest"
    if sort not in ("latest", "top"):
        raise InvalidInputError("sort must be latest or top")
    for name in UNSUPPORTED_POST_FILTERS:
        if call.params(name):
            raise InvalidInputError(f"the {name} filter is not supported by this app view")
    q = parse_query(raw)
    views = call.av.views(call.viewer)
    author = None
    named = call.param("author") or q.author
    if named is not None:
        author = views.reader.resolve(named)
        if author is None:
            return {"posts": []}
    if not q.terms and author is None:
        raise BadQueryError("query has no words to search for")
    hits, cursor = Search(call.av.store).posts(
        q,
        author,
        views.viewer,
        top=sort == "top",
        since_us=_time(call, "since"),
        until_us=_time(call, "until"),
        limit=limit,
        cursor=call.param("cursor"),
    )
    found = views.posts([h.post for h in hits])
    out: dict[str, Any] = {"posts": [found[h.post] for h in hits if h.post in found]}
    if cursor is not None:
        out["cursor"] = cursor
    return out


async def search_actors(call: Call) -> Any:
    limit = call.limit(25, 100)
    offset = offset_cursor(call.param("cursor"))
    terms = _actor_terms(call)
    views = call.av.views(call.viewer)
    ids = Search(call.av.store).actors(terms, views.viewer, limit, offset) if terms else []
    found = views.profiles(ids, "view")
    out: dict[str, Any] = {"actors": [found[i] for i in ids if i in found]}
    if len(ids) == limit:
        out["cursor"] = str(offset + limit)
    return out


async def search_actors_typeahead(call: Call) -> Any:
    limit = call.limit(10, 100)
    terms = _actor_terms(call)
    views = call.av.views(call.viewer)
    ids = Search(call.av.store).actors(terms, views.viewer, limit, 0) if terms else []
    found = views.profiles(ids, "basic")
    return {"actors": [found[i] for i in ids if i in found]}


async def get_suggestions(call: Call) -> Any:
    limit = call.limit()
    offset = offset_cursor(call.param("cursor"))
    views = call.av.views(call.viewer)
    ids = GraphReader(call.av.store).suggestions(views.viewer, limit, offset)
    found = views.profiles(ids, "view")
    out: dict[str, Any] = {"actors": [found[i] for i in ids if i in found]}
    if len(ids) == limit:
        out["cursor"] = str(offset + limit)
    return out


METHODS: list[Method] = [
    query("app.bsky.feed.searchPosts", search_posts),
    query("app.bsky.actor.searchActors", search_actors),
    query("app.bsky.actor.searchActorsTypeahead", search_actors_typeahead),
    query("app.bsky.actor.getSuggestions", get_suggestions),
]
