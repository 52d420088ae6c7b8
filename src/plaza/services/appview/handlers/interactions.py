"""Who liked, reposted or quoted a post, and what an account liked:
``app.bsky.feed.getLikes``, ``getRepostedBy``, ``getQuotes`` and ``getActorLikes``.

Likers and reposters that block the viewer or that the viewer blocks are left out;
quotes by them or by accounts the viewer muted too.
``getActorLikes`` answers only for the viewer's own likes (as Bluesky's app view does:
likes are not browsable by others), as a feed of the liked posts.
"""

from __future__ import annotations

from typing import Any

from plaza.atproto import cbor
from plaza.atproto.cid import CID
from plaza.atproto.errors import AtprotoError
from plaza.atproto.syntax import parse_at_uri
from plaza.errors import InvalidInputError
from plaza.services.appview.reader import FeedItem, PostKey
from plaza.services.appview.reader_graph import GraphReader, page_cursor, subject_cursor
from plaza.services.appview.times import format_time_us
from plaza.services.appview.xrpc import Call, Method, query


def _subject(call: Call) -> tuple[str, PostKey | None, bytes | None]:
    """The ``uri`` parameter, the post it names (None: not a known post) and the ``cid``
    parameter's bytes."""
    uri = call.req_param("uri")
    try:
        at = parse_at_uri(uri)
    except AtprotoError as exc:
        raise InvalidInputError(f"uri must be an AT-URI: {uri[:100]!r}") from exc
    raw_cid = call.param("cid")
    cid = None
    if raw_cid is not None:
        try:
            cid = CID.decode(raw_cid).raw
        except (AtprotoError, ValueError) as exc:
            raise InvalidInputError(f"cid is not a CID: {raw_cid[:100]!r}") from exc
    if at.collection != "app.bsky.feed.post" or at.rkey is None:
        return uri, None, cid  # likes of other records are not indexed
    author = call.av.reader.resolve(at.authority)
    return uri, None if author is None else (author, at.rkey), cid


async def get_likes(call: Call) -> Any:
    limit = call.limit()
    uri, post, cid = _subject(call)
    views = call.av.views(call.viewer)
    rows = (
        []
        if post is None
        else GraphReader(call.av.store).interactions(
            "likes",
            post=post,
            cid=cid,
            limit=limit,
            cursor=call.param("cursor"),
            viewer=views.viewer,
        )
    )
    actors = views.profiles([r.actor for r in rows], "view")
    likes = [
        {
            "indexedAt": format_time_us(r.created),
            "createdAt": format_time_us(r.created),
            "actor": actors[r.actor],
        }
        for r in rows
        if r.actor in actors
    ]
    out: dict[str, Any] = {"uri": uri}
    if cid is not None:
        out["cid"] = str(CID(cid))
    out["likes"] = likes
    if len(rows) == limit:
        out["cursor"] = subject_cursor(rows[-1])
    return out


async def get_reposted_by(call: Call) -> Any:
    limit = call.limit()
    uri, post, cid = _subject(call)
    views = call.av.views(call.viewer)
    rows = (
        []
        if post is None
        else GraphReader(call.av.store).interactions(
            "reposts",
            post=post,
            cid=cid,
            limit=limit,
            cursor=call.param("cursor"),
            viewer=views.viewer,
        )
    )
    actors = views.profiles([r.actor for r in rows], "view")
    out: dict[str, Any] = {"uri": uri}
    if cid is not None:
        out["cid"] = str(CID(cid))
    out["repostedBy"] = [actors[r.actor] for r in rows if r.actor in actors]
    if len(rows) == limit:
        out["cursor"] = subject_cursor(rows[-1])
    return out


def _quotes_version(record: bytes, cid: str) -> bool:
    """Whether a quoting post's record quotes version ``cid`` (the index keeps only the
    quoted post's key)."""
    embed = cbor.decode(record).get("embed")
    inner = embed.get("record") if isinstance(embed, dict) else None
    if isinstance(inner, dict) and isinstance(inner.get("record"), dict):
        inner = inner["record"]  # recordWithMedia
    ref = inner.get("cid") if isinstance(inner, dict) else None
    return ref == cid  # a strong reference's cid is a string


async def get_quotes(call: Call) -> Any:
    limit = call.limit()
    uri, post, cid = _subject(call)
    views = call.av.views(call.viewer)
    rows = (
        []
        if post is None
        else GraphReader(call.av.store).quotes(post, limit, call.param("cursor"), views.viewer)
    )
    want = None if cid is None else str(CID(cid))
    keys = [r.post for r in rows if want is None or _quotes_version(r.record, want)]
    found = views.posts(keys)
    out: dict[str, Any] = {"uri": uri}
    if want is not None:
        out["cid"] = want
    out["posts"] = [found[k] for k in keys if k in found]
    if len(rows) == limit:
        out["cursor"] = page_cursor(rows[-1].sort_at, rows[-1].id)
    return out


async def get_actor_likes(call: Call) -> Any:
    viewer = call.require_viewer()
    actor = call.req_param("actor")
    limit = call.limit()
    views = call.av.views(viewer)
    ident = views.reader.resolve(actor)
    if ident is None:
        raise InvalidInputError("Profile not found")
    if ident != views.viewer:
        raise InvalidInputError("Profile not found: only your own likes can be listed")
    rows = GraphReader(call.av.store).actor_likes(ident, limit, call.param("cursor"), ident)
    feed = views.feed([FeedItem(r.post, r.created) for r in rows])
    out: dict[str, Any] = {"feed": feed}
    if len(rows) == limit:
        out["cursor"] = page_cursor(rows[-1].created, rows[-1].rkey)
    return out


METHODS: list[Method] = [
    query("app.bsky.feed.getLikes", get_likes),
    query("app.bsky.feed.getRepostedBy", get_reposted_by),
    query("app.bsky.feed.getQuotes", get_quotes),
    query("app.bsky.feed.getActorLikes", get_actor_likes),
]
