"""Finding posts and people: ``app.bsky.feed.searchPosts``, ``app.bsky.actor.searchActors``,
``searchActorsTypeahead`` and ``getSuggestions`` (query syntax and ranking:
:mod:`plaza.services.appview.search`)."""

from __future__ import annotations

import re
from typing import Any

from plaza.errors import InvalidInputError
from plaza.services.appview.post_filters import PostFilter
from plaza.services.appview.reader_graph import GraphReader
from plaza.services.appview.search import BadQueryError, Search, offset_cursor, parse_query
from plaza.services.appview.times import parse_time_us
from plaza.services.appview.xrpc import Call, Method, query

MAX_TAGS = 10
MAX_TAG_CHARS = 640
MAX_URL_CHARS = 3000
_LANG = re.compile(r"[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*")


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


def _post_filter(call: Call) -> PostFilter | None:
    """searchPosts' record filters (None: ``mentions`` names no known account)."""
    lang, domain, url, tags = (
        call.param("lang"),
        call.param("domain"),
        call.param("url"),
        call.params("tag"),
    )
    if lang is not None and not _LANG.fullmatch(lang):
        raise InvalidInputError("lang must be a language tag such as en or pt-BR")
    if domain is not None and (len(domain) > 253 or "/" in domain):
        raise InvalidInputError("domain must be a host name")
    if url is not None and (len(url) > MAX_URL_CHARS or "://" not in url):
        raise InvalidInputError("url must be an absolute URL")
    if len(tags) > MAX_TAGS or any(len(t) > MAX_TAG_CHARS for t in tags):
        raise InvalidInputError(f"at most {MAX_TAGS} tags of {MAX_TAG_CHARS} characters each")
    mentions = call.param("mentions")
    did = None
    if mentions is not None:
        ident = call.av.reader.resolve(mentions)
        if ident is None:
            return None
        did = call.av.store.did_of(ident)
    return PostFilter(did, lang, domain, url, tuple(tags))


async def search_posts(call: Call) -> Any:
    raw = call.req_param("q")
    limit = call.limit(25, 100)
    sort = call.param("sort") or "latest"
    if sort not in ("latest", "top"):
        raise InvalidInputError("sort must be latest or top")
    q = parse_query(raw)
    views = call.av.views(call.viewer)
    keep = _post_filter(call)
    if keep is None:
        return {"posts": []}  # mentions an account this app view does not know
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
        keep=keep,
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
