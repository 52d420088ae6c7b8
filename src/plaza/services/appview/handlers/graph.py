"""``app.bsky.graph.*``: follows, followers, blocks, mutes, lists and relationships.

Lists of accounts leave out those that block the viewer or that the viewer blocks
(except the viewer's own list of blocks); between the viewer and an account blocked
either way, that account's follows, followers and lists are empty. Mutes are private
to the app view and set by the ``muteActor`` / ``unmuteActor`` procedures, which the
viewer's PDS forwards.
"""

from __future__ import annotations

from typing import Any

from plaza.atproto.errors import AtprotoError
from plaza.atproto.syntax import parse_at_uri
from plaza.errors import InvalidInputError
from plaza.services.appview.reader_graph import (
    EdgeRow,
    GraphReader,
    edge_cursor,
    page_cursor,
    subject_cursor,
)
from plaza.services.appview.views import Views
from plaza.services.appview.views_graph import list_item_views, list_views
from plaza.services.appview.xrpc import Call, Method, procedure, query

MAX_RELATIONSHIPS = 30
LIST_PURPOSES = {
    "modlist": "app.bsky.graph.defs#modlist",
    "curatelist": "app.bsky.graph.defs#curatelist",
    "referencelist": "app.bsky.graph.defs#referencelist",
}


def _graph(call: Call) -> GraphReader:
    return GraphReader(call.av.store)


def _subject(call: Call, views: Views, name: str = "actor") -> int:
    ident = views.reader.resolve(call.req_param(name))
    if ident is None or not views.profiles([ident], "view"):
        raise InvalidInputError("Profile not found")
    return ident


def _accounts(views: Views, rows: list[EdgeRow], who: str) -> list[dict[str, Any]]:
    ids = [r.subject if who == "subject" else r.actor for r in rows]
    found = views.profiles(ids, "view")
    return [found[i] for i in ids if i in found]


def _walled(views: Views, subject: int) -> bool:
    """Whether the viewer and ``subject`` block each other (either way)."""
    return views.viewer is not None and views.reader.blocked_between(views.viewer, subject)


async def get_follows(call: Call) -> Any:
    limit = call.limit()
    views = call.av.views(call.viewer)
    subject = _subject(call, views)
    rows = (
        []
        if _walled(views, subject)
        else _graph(call).follows(subject, limit, call.param("cursor"), views.viewer)
    )
    out: dict[str, Any] = {
        "subject": views.profiles([subject], "view")[subject],
        "follows": _accounts(views, rows, "subject"),
    }
    if len(rows) == limit:
        out["cursor"] = edge_cursor(rows[-1])
    return out


async def get_followers(call: Call) -> Any:
    limit = call.limit()
    views = call.av.views(call.viewer)
    subject = _subject(call, views)
    rows = (
        []
        if _walled(views, subject)
        else _graph(call).followers(subject, limit, call.param("cursor"), views.viewer)
    )
    out: dict[str, Any] = {
        "subject": views.profiles([subject], "view")[subject],
        "followers": _accounts(views, rows, "actor"),
    }
    if len(rows) == limit:
        out["cursor"] = subject_cursor(rows[-1])
    return out


async def get_blocks(call: Call) -> Any:
    viewer = call.require_viewer()
    limit = call.limit()
    views = call.av.views(viewer)
    cursor = call.param("cursor")
    rows = [] if views.viewer is None else _graph(call).blocks(views.viewer, limit, cursor)
    out: dict[str, Any] = {"blocks": _accounts(views, rows, "subject")}
    if len(rows) == limit:
        out["cursor"] = edge_cursor(rows[-1])
    return out


async def get_mutes(call: Call) -> Any:
    viewer = call.require_viewer()
    limit = call.limit()
    views = call.av.views(viewer)
    cursor = call.param("cursor")
    ids = [] if views.viewer is None else _graph(call).mutes(views.viewer, limit, cursor)
    found = views.profiles(ids, "view")
    out: dict[str, Any] = {"mutes": [found[i] for i in ids if i in found]}
    if len(ids) == limit:
        out["cursor"] = page_cursor(ids[-1])
    return out


def _mute_target(call: Call) -> tuple[int, int]:
    """The viewer's id (assigned if new) and the id of the body's ``actor``."""
    viewer = call.require_viewer()
    body = call.body
    if not isinstance(body, dict) or not isinstance(body.get("actor"), str):
        raise InvalidInputError('Input must have the property "actor"')
    if body.get("onlyReposts") or body.get("onlyQuoteposts"):
        raise InvalidInputError("scoped mutes (onlyReposts, onlyQuoteposts) are not supported")
    subject = call.av.reader.resolve(body["actor"])
    if subject is None:
        raise InvalidInputError("Actor not found", code="NotFound")
    me = call.av.store.actor_id(viewer)
    if subject == me:
        raise InvalidInputError("Cannot mute oneself")
    return me, subject


async def mute_actor(call: Call) -> Any:
    me, subject = _mute_target(call)
    _graph(call).mute(me, subject)
    return None


async def unmute_actor(call: Call) -> Any:
    me, subject = _mute_target(call)
    _graph(call).unmute(me, subject)
    return None


async def get_lists(call: Call) -> Any:
    limit = call.limit()
    purposes = call.params("purposes")
    unknown = [p for p in purposes if p not in LIST_PURPOSES]
    if unknown:
        raise InvalidInputError(f"purposes must be among {', '.join(LIST_PURPOSES)}")
    wanted = {LIST_PURPOSES[p] for p in purposes}
    views = call.av.views(call.viewer)
    actor = _subject(call, views)
    rows = [] if _walled(views, actor) else _graph(call).lists(actor, limit, call.param("cursor"))
    lists = list_views(views, rows)
    out: dict[str, Any] = {"lists": [v for v in lists if not wanted or v["purpose"] in wanted]}
    if len(rows) == limit:
        out["cursor"] = page_cursor(rows[-1].rkey)
    return out


async def get_list(call: Call) -> Any:
    uri = call.req_param("list")
    limit = call.limit()
    try:
        at = parse_at_uri(uri)
    except AtprotoError as exc:
        raise InvalidInputError(f"list must be an AT-URI: {uri[:100]!r}") from exc
    if at.collection != "app.bsky.graph.list" or at.rkey is None:
        raise InvalidInputError(f"not a list URI: {uri[:100]!r}")
    views = call.av.views(call.viewer)
    graph = _graph(call)
    owner = views.reader.resolve(at.authority)
    row = None if owner is None else graph.one_list(owner, at.rkey)
    if owner is None or row is None or _walled(views, owner):
        raise InvalidInputError("List not found", code="NotFound")
    found = list_views(views, [row])
    if not found:
        raise InvalidInputError("List not found", code="NotFound")
    items = graph.list_items(owner, at.rkey, limit, call.param("cursor"), views.viewer)
    out: dict[str, Any] = {
        "list": found[0],
        "items": list_item_views(views, call.av.store.did_of(owner), items),
    }
    if len(items) == limit:
        out["cursor"] = edge_cursor(items[-1])
    return out


async def get_relationships(call: Call) -> Any:
    actor = call.req_param("actor")
    others = call.params("others")
    if len(others) > MAX_RELATIONSHIPS:
        raise InvalidInputError(f"others must hold at most {MAX_RELATIONSHIPS} items")
    reader = call.av.reader
    me = reader.resolve(actor)
    if me is None:
        raise InvalidInputError(f"Actor not found: {actor}", code="ActorNotFound")
    ids = {o: reader.resolve(o) for o in others}
    relations = _graph(call).relations(me, [i for i in ids.values() if i is not None])
    dids = call.av.store.dids_of([me, *(i for i in ids.values() if i is not None)])
    me_did = dids[me]
    out: list[dict[str, Any]] = []
    for name, ident in ids.items():
        if ident is None:
            out.append(
                {"$type": "app.bsky.graph.defs#notFoundActor", "actor": name, "notFound": True}
            )
            continue
        rel = relations.get(ident)
        other = dids[ident]
        view: dict[str, Any] = {"$type": "app.bsky.graph.defs#relationship", "did": other}
        if rel is not None and rel.following:
            view["following"] = f"at://{me_did}/app.bsky.graph.follow/{rel.following}"
        if rel is not None and rel.followed_by:
            view["followedBy"] = f"at://{other}/app.bsky.graph.follow/{rel.followed_by}"
        if rel is not None and rel.blocking:
            view["blocking"] = f"at://{me_did}/app.bsky.graph.block/{rel.blocking}"
        if rel is not None and rel.blocked_by:
            view["blockedBy"] = f"at://{other}/app.bsky.graph.block/{rel.blocked_by}"
        out.append(view)
    return {"actor": me_did, "relationships": out}


METHODS: list[Method] = [
    query("app.bsky.graph.getFollows", get_follows),
    query("app.bsky.graph.getFollowers", get_followers),
    query("app.bsky.graph.getBlocks", get_blocks),
    query("app.bsky.graph.getMutes", get_mutes),
    procedure("app.bsky.graph.muteActor", mute_actor),
    procedure("app.bsky.graph.unmuteActor", unmute_actor),
    query("app.bsky.graph.getLists", get_lists),
    query("app.bsky.graph.getList", get_list),
    query("app.bsky.graph.getRelationships", get_relationships),
]
