"""Custom feeds: ``getFeed``, ``getFeedSkeleton`` (the app view's own algorithms),
``describeFeedGenerator``, ``getFeedGenerator`` and ``getFeedGenerators``
(:mod:`plaza.services.appview.feeds` computes or fetches the skeletons; this module
hydrates them for the viewer)."""

from __future__ import annotations

from typing import Any

from plaza.atproto.errors import AtprotoError
from plaza.atproto.syntax import parse_at_uri
from plaza.errors import InvalidInputError
from plaza.services.appview.feeds import BUILTINS, Generator, SkeletonItem, parse_feed_uri
from plaza.services.appview.reader import FeedItem
from plaza.services.appview.remote import RemoteError
from plaza.services.appview.times import format_time_us
from plaza.services.appview.views import Views
from plaza.services.appview.xrpc import Call, Method, query

MAX_GENERATORS = 25


def _unknown(uri: str) -> InvalidInputError:
    return InvalidInputError(f"could not find feed: {uri[:200]}", code="UnknownFeed")


def _generator(call: Call, uri: str) -> Generator:
    gen = call.av.feeds.generator(uri)
    if gen is None:
        raise _unknown(uri)
    return gen


def _feed_item(views: Views, item: SkeletonItem) -> FeedItem | None:
    """The feed item of a skeleton entry (None: a post the app view does not know); a
    repost reason is kept only when the repost is indexed and reposts that post."""
    try:
        key = views.reader.post_key(item.post)
    except InvalidInputError:
        return None
    if key is None:
        return None
    if item.repost is None:
        return FeedItem(key, 0)
    try:
        at = parse_at_uri(item.repost)
    except AtprotoError:
        return FeedItem(key, 0)
    actor = views.reader.resolve(at.authority) if at.authority.startswith("did:") else None
    if actor is None or at.collection != "app.bsky.feed.repost" or at.rkey is None:
        return FeedItem(key, 0)
    row = views.reader.db.one(
        "SELECT subject_author, subject_rkey, sort_at FROM reposts WHERE actor = ? AND rkey = ?",
        (actor, at.rkey),
    )
    if row is None or (int(row[0]), str(row[1])) != key:
        return FeedItem(key, 0)
    return FeedItem(key, int(row[2]), (actor, at.rkey))


def hydrate(views: Views, items: list[SkeletonItem]) -> list[dict[str, Any]]:
    """``FeedViewPost`` of each skeleton item the viewer may see, in skeleton order."""
    feed_items: list[FeedItem] = []
    contexts: dict[tuple[str, str | None], str] = {}
    for item in items:
        fi = _feed_item(views, item)
        if fi is None:
            continue
        feed_items.append(fi)
        if item.context is not None:
            repost = item.repost if fi.repost is not None else None
            contexts[(item.post, repost)] = item.context
    out = views.feed(feed_items)
    if contexts:
        for entry in out:
            reason = entry.get("reason")
            repost = reason.get("uri") if isinstance(reason, dict) else None
            context = contexts.get((entry["post"]["uri"], repost))
            if context is not None:
                entry["feedContext"] = context
    return out


async def get_feed(call: Call) -> Any:
    uri = call.req_param("feed")
    limit = call.limit()
    cursor = call.param("cursor")
    gen = _generator(call, uri)
    try:
        skeleton = await call.av.feeds.skeleton(gen, limit, cursor)
    except RemoteError as exc:
        raise InvalidInputError(
            f"the feed generator failed: {exc.message}", code="UnknownFeed"
        ) from exc
    out: dict[str, Any] = {"feed": hydrate(call.av.views(call.viewer), skeleton.items)}
    if skeleton.cursor is not None:
        out["cursor"] = skeleton.cursor
    return out


async def get_feed_skeleton(call: Call) -> Any:
    uri = call.req_param("feed")
    limit = call.limit()
    _, rkey = parse_feed_uri(uri)
    if rkey not in BUILTINS:
        raise _unknown(uri)
    skeleton = call.av.feeds.local(rkey, limit, call.param("cursor"))
    out: dict[str, Any] = {"feed": [{"post": i.post} for i in skeleton.items]}
    if skeleton.cursor is not None:
        out["cursor"] = skeleton.cursor
    return out


async def describe_feed_generator(call: Call) -> Any:
    feeds = call.av.feeds
    return {"did": feeds.did, "feeds": [{"uri": feeds.builtin_uri(r)} for r in BUILTINS]}


def _views(call: Call, gens: list[Generator]) -> list[dict[str, Any]]:
    """``GeneratorView`` of each generator (the viewer's like is not tracked yet)."""
    views = call.av.views(call.viewer)
    store = call.av.store
    creators = views.profiles(
        [i for g in gens if (i := store.find_actor(g.creator)) is not None], kind="view"
    )
    by_did = {p["did"]: p for p in creators.values()}
    out = []
    for g in gens:
        creator = by_did.get(g.creator, {"did": g.creator, "handle": "handle.invalid"})
        view: dict[str, Any] = {
            "uri": g.uri,
            "cid": g.cid,
            "did": g.service,
            "creator": creator,
            "displayName": str(g.record.get("displayName", ""))[:640],
            "likeCount": g.likes,
            "labels": [],
            "viewer": {},
            "indexedAt": format_time_us(g.indexed_at),
        }
        for field in ("description", "descriptionFacets", "avatar", "acceptsInteractions"):
            if field in g.record:
                view[field] = g.record[field]
        out.append(view)
    return out


async def get_feed_generator(call: Call) -> Any:
    uri = call.req_param("feed")
    gen = _generator(call, uri)
    valid = True
    if gen.service != call.av.feeds.did:
        try:
            doc = await call.av.feeds.remote.did_document(gen.service)
            valid = "bsky_fg" in doc.services
        except RemoteError:
            valid = False
    return {"view": _views(call, [gen])[0], "isOnline": valid, "isValid": valid}


async def get_feed_generators(call: Call) -> Any:
    uris = call.params("feeds")
    if not uris:
        raise InvalidInputError('Error: Params must have the property "feeds"')
    if len(uris) > MAX_GENERATORS:
        raise InvalidInputError(f"feeds must hold at most {MAX_GENERATORS} items")
    gens = [g for u in uris if (g := call.av.feeds.generator(u)) is not None]
    return {"feeds": _views(call, gens)}


METHODS: list[Method] = [
    query("app.bsky.feed.getFeed", get_feed),
    query("app.bsky.feed.getFeedSkeleton", get_feed_skeleton),
    query("app.bsky.feed.describeFeedGenerator", describe_feed_generator),
    query("app.bsky.feed.getFeedGenerator", get_feed_generator),
    query("app.bsky.feed.getFeedGenerators", get_feed_generators),
]
