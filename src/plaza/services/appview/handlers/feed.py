"""``app.bsky.feed.*``: timelines, author feeds, threads and posts."""

from __future__ import annotations

from typing import Any

from plaza.errors import InvalidInputError
from plaza.services.appview.reader import AUTHOR_FILTERS, FeedCursor, FeedItem
from plaza.services.appview.xrpc import Call, Method, query

MAX_POSTS = 25


def _page(call: Call, items: list[FeedItem], limit: int) -> dict[str, Any]:
    views = call.av.views(call.viewer)
    out: dict[str, Any] = {"feed": views.feed(items)}
    if len(items) == limit:
        last = items[-1]
        out["cursor"] = str(FeedCursor(last.sort_at, last.tiebreak))
    return out


async def get_timeline(call: Call) -> Any:
    viewer = call.require_viewer()
    limit = call.limit()
    cursor = FeedCursor.parse(call.param("cursor"))
    algorithm = call.param("algorithm")
    if algorithm not in (None, "reverse-chronological"):
        raise InvalidInputError(f"unknown algorithm {algorithm[:40]!r}")
    reader = call.av.reader
    me = reader.store.find_actor(viewer)
    items = [] if me is None else reader.timeline(me, limit, cursor)
    return _page(call, items, limit)


async def get_author_feed(call: Call) -> Any:
    actor = call.req_param("actor")
    limit = call.limit()
    cursor = FeedCursor.parse(call.param("cursor"))
    feed_filter = call.param("filter") or "posts_with_replies"
    if feed_filter not in AUTHOR_FILTERS:
        raise InvalidInputError(f"filter must be one of {', '.join(AUTHOR_FILTERS)}")
    reader = call.av.reader
    author = reader.resolve(actor)
    if author is None:
        raise InvalidInputError("Profile not found")
    views = call.av.views(call.viewer)
    if author in views.hidden():
        blocked = views.reader.relationships(views.viewer or 0, [author]).get(author)
        if blocked is not None and blocked.blocked_by:
            raise InvalidInputError("Requester is blocked by the actor", code="BlockedByActor")
        if blocked is not None and blocked.blocking:
            raise InvalidInputError("Requester has blocked the actor", code="BlockedActor")
    items = reader.author_feed(author, feed_filter, limit, cursor)
    return _page(call, items, limit)


async def get_post_thread(call: Call) -> Any:
    uri = call.req_param("uri")
    depth = call.int_param("depth", 6, 0, 1000)
    parent_height = call.int_param("parentHeight", 80, 0, 1000)
    views = call.av.views(call.viewer)
    key = views.reader.post_key(uri)
    thread = None if key is None else views.thread(key, depth, parent_height)
    if thread is None or thread.get("notFound"):
        raise InvalidInputError(f"Post not found: {uri}", code="NotFound")
    return {"thread": thread}


async def get_posts(call: Call) -> Any:
    uris = call.params("uris")
    if not uris:
        raise InvalidInputError('Error: Params must have the property "uris"')
    if len(uris) > MAX_POSTS:
        raise InvalidInputError(f"uris must hold at most {MAX_POSTS} items")
    views = call.av.views(call.viewer)
    keys = [views.reader.post_key(u) for u in uris]
    found = views.posts([k for k in keys if k is not None])
    hidden = views.hidden()
    return {
        "posts": [found[k] for k in keys if k is not None and k in found and k[0] not in hidden]
    }


METHODS: list[Method] = [
    query("app.bsky.feed.getTimeline", get_timeline),
    query("app.bsky.feed.getAuthorFeed", get_author_feed),
    query("app.bsky.feed.getPostThread", get_post_thread),
    query("app.bsky.feed.getPosts", get_posts),
]
