"""``app.bsky.notification.*``: the viewer's notifications, their unread count, and
marking them seen. All need a viewer; notifications from accounts the viewer blocks,
is blocked by, or muted are left out (and not counted)."""

from __future__ import annotations

from typing import Any

from plaza.errors import InvalidInputError
from plaza.services.appview.notifications import Notifications, reason_codes
from plaza.services.appview.reader_graph import page_cursor
from plaza.services.appview.times import format_time_us, parse_time_us
from plaza.services.appview.views_graph import notification_views
from plaza.services.appview.xrpc import Call, Method, procedure, query


def _datetime(value: Any, name: str) -> int:
    """An atproto datetime as microseconds, or ``InvalidRequest``."""
    us = parse_time_us(value) if isinstance(value, str) and len(value) <= 64 else 0
    if us <= 0:
        raise InvalidInputError(f"{name} must be a datetime")
    return us


async def list_notifications(call: Call) -> Any:
    viewer = call.require_viewer()
    limit = call.limit()
    if call.param("seenAt") is not None:
        raise InvalidInputError("seenAt is not supported: use updateSeen")
    names = call.params("reasons")
    views = call.av.views(viewer)
    if views.viewer is None:
        return {"notifications": []}
    notes = Notifications(call.av.store)
    rows = notes.list(
        views.viewer, limit, call.param("cursor"), reason_codes(names) if names else None
    )
    seen_at = notes.seen_at(views.viewer)
    out: dict[str, Any] = {"notifications": notification_views(views, viewer, rows, seen_at)}
    if len(rows) == limit:
        out["cursor"] = page_cursor(rows[-1].id)
    if seen_at > 0:
        out["seenAt"] = format_time_us(seen_at)
    return out


async def get_unread_count(call: Call) -> Any:
    viewer = call.require_viewer()
    raw = call.param("seenAt")
    me = call.av.store.find_actor(viewer)
    if me is None:
        return {"count": 0}
    notes = Notifications(call.av.store)
    seen_at = notes.seen_at(me) if raw is None else _datetime(raw, "seenAt")
    return {"count": notes.unread(me, seen_at)}


async def update_seen(call: Call) -> Any:
    viewer = call.require_viewer()
    body = call.body
    if not isinstance(body, dict) or "seenAt" not in body:
        raise InvalidInputError('Input must have the property "seenAt"')
    seen_at = _datetime(body["seenAt"], "seenAt")
    Notifications(call.av.store).set_seen(call.av.store.actor_id(viewer), seen_at)
    return None


METHODS: list[Method] = [
    query("app.bsky.notification.listNotifications", list_notifications),
    query("app.bsky.notification.getUnreadCount", get_unread_count),
    procedure("app.bsky.notification.updateSeen", update_seen),
]
