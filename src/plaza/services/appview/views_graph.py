"""Lists and notifications in the Lexicon's shapes (``app.bsky.graph.defs#listView``,
``#listItemView``, ``app.bsky.notification.listNotifications#notification``), built on
:class:`~plaza.services.appview.views.Views` for the profiles inside them; lists and
notifications carry the labels on their record that the caller accepts."""

from __future__ import annotations

from typing import Any, Final

from plaza.atproto import cbor, datamodel
from plaza.atproto.cid import CID
from plaza.services.appview.notifications import NotificationRow
from plaza.services.appview.reader_graph import EdgeRow, ListRow
from plaza.services.appview.schema import NOTIFICATION_COLLECTIONS, NOTIFICATION_REASONS
from plaza.services.appview.times import format_time_us
from plaza.services.appview.views import POST, Views

LIST: Final = "app.bsky.graph.list"
LISTITEM: Final = "app.bsky.graph.listitem"


def list_uri(did: str, rkey: str) -> str:
    return f"at://{did}/{LIST}/{rkey}"


def list_views(views: Views, rows: list[ListRow]) -> list[dict[str, Any]]:
    """``listView`` of each list whose creator is known."""
    creators = views.profiles([r.actor for r in rows], "view")
    hosts = views.reader.actors([r.actor for r in rows])
    out: list[dict[str, Any]] = []
    for r in rows:
        creator = creators.get(r.actor)
        if creator is None:
            continue
        record = datamodel.to_json(cbor.decode(r.record))
        view: dict[str, Any] = {
            "uri": list_uri(creator["did"], r.rkey),
            "cid": str(CID(r.cid)),
            "creator": creator,
            "name": record.get("name", ""),
            "purpose": record.get("purpose", ""),
        }
        if isinstance(record.get("description"), str):
            view["description"] = record["description"]
        if isinstance(record.get("descriptionFacets"), list):
            view["descriptionFacets"] = record["descriptionFacets"]
        avatar = record.get("avatar")
        host = hosts.get(r.actor)
        if isinstance(avatar, dict) and host is not None and host.pds is not None:
            link = avatar.get("ref", {}).get("$link")
            if isinstance(link, str):
                view["avatar"] = (
                    f"{host.pds.rstrip('/')}/xrpc/com.atproto.sync.getBlob"
                    f"?did={host.did}&cid={link}"
                )
        view["listItemCount"] = r.items
        view["labels"] = []
        if views.viewer is not None:
            view["viewer"] = {"muted": False}
        view["indexedAt"] = format_time_us(r.indexed_at)
        out.append(view)
    _labels(views, out)
    return out


def _labels(views: Views, out: list[dict[str, Any]]) -> None:
    """Attach the labels the caller accepts on each view's record (its ``uri``)."""
    if views.labels is not None:
        views.labels.attach(out, lambda v: [v["uri"]])


def list_item_views(views: Views, owner_did: str, rows: list[EdgeRow]) -> list[dict[str, Any]]:
    """``listItemView`` of each item whose subject is known."""
    subjects = views.profiles([r.subject for r in rows], "view")
    return [
        {"uri": f"at://{owner_did}/{LISTITEM}/{r.rkey}", "subject": subjects[r.subject]}
        for r in rows
        if r.subject in subjects
    ]


def notification_views(
    views: Views, recipient_did: str, rows: list[NotificationRow], seen_at: int
) -> list[dict[str, Any]]:
    """``notification`` of each row whose author is known; read when indexed no later
    than ``seen_at``."""
    authors = views.profiles([r.author for r in rows], "view")
    out: list[dict[str, Any]] = []
    for r in rows:
        author = authors.get(r.author)
        if author is None:
            continue
        collection = NOTIFICATION_COLLECTIONS[NOTIFICATION_REASONS.index(r.reason)]
        view: dict[str, Any] = {
            "uri": f"at://{author['did']}/{collection}/{r.rkey}",
            "cid": str(CID(r.cid)),
            "author": author,
            "reason": r.reason,
        }
        if r.subject_rkey is not None:
            view["reasonSubject"] = f"at://{recipient_did}/{POST}/{r.subject_rkey}"
        view["record"] = datamodel.to_json(cbor.decode(r.record))
        view["isRead"] = r.indexed_at <= seen_at
        view["indexedAt"] = format_time_us(r.indexed_at)
        view["labels"] = []
        out.append(view)
    _labels(views, out)
    return out
