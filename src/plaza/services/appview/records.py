"""What the app view indexes of each record, read from its decoded value (sans-IO).

:func:`read_record` checks a record against its Lexicon (the bundled ``app.bsky``
set) and returns the facts the indexer stores: for a post its reply root and parent,
its quoted post, its embed kinds, the DIDs it mentions and its text; for a like or a
repost its subject; for a follow, block or list item the account it names; for a
profile its fields. A record that fails its Lexicon is
:class:`~plaza.atproto.errors.InvalidRecordError` (the indexer skips it); a collection
the app view does not index gives None.

References to posts are :class:`PostRef` ``(did, rkey, cid)``; an AT-URI whose
authority is a handle, or whose collection is not ``app.bsky.feed.post`` where a post
is expected, is no reference (a quote of a list is an embed, not a quote).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from plaza.atproto.cid import CID
from plaza.atproto.errors import AtprotoError, InvalidRecordError
from plaza.atproto.lexicon import default_registry
from plaza.atproto.syntax import parse_at_uri
from plaza.services.appview.schema import (
    EMBED_EXTERNAL,
    EMBED_IMAGES,
    EMBED_RECORD,
    EMBED_VIDEO,
)
from plaza.services.appview.times import parse_time_us

POST: Final = "app.bsky.feed.post"
LIKE: Final = "app.bsky.feed.like"
REPOST: Final = "app.bsky.feed.repost"
FOLLOW: Final = "app.bsky.graph.follow"
BLOCK: Final = "app.bsky.graph.block"
LIST: Final = "app.bsky.graph.list"
LISTITEM: Final = "app.bsky.graph.listitem"
PROFILE: Final = "app.bsky.actor.profile"
GENERATOR: Final = "app.bsky.feed.generator"

INDEXED: Final = frozenset({POST, LIKE, REPOST, FOLLOW, BLOCK, LIST, LISTITEM, PROFILE, GENERATOR})

_MEDIA = {
    "app.bsky.embed.images": EMBED_IMAGES,
    "app.bsky.embed.video": EMBED_VIDEO,
    "app.bsky.embed.external": EMBED_EXTERNAL,
}


@dataclass(frozen=True)
class PostRef:
    did: str
    rkey: str
    cid: CID


@dataclass(frozen=True)
class Post:
    text: str
    created_us: int
    parent: PostRef | None
    root: PostRef | None
    quote: PostRef | None
    embed: int
    mentions: tuple[str, ...]


@dataclass(frozen=True)
class Subject:
    """A like's or repost's subject post, and the record's creation time."""

    subject: PostRef
    created_us: int


@dataclass(frozen=True)
class Edge:
    """A follow, block or list item: the account it names (and the list, for an item)."""

    subject: str
    created_us: int
    list_rkey: str | None = None
    list_owner: str | None = None


@dataclass(frozen=True)
class Profile:
    display_name: str | None
    description: str | None
    avatar: CID | None
    banner: CID | None
    pinned: PostRef | None
    created_at: str | None


@dataclass(frozen=True)
class Opaque:
    """A list or a feed generator: stored whole."""


Facts = Post | Subject | Edge | Profile | Opaque


def post_ref(ref: Any, collection: str = POST) -> PostRef | None:
    """A ``com.atproto.repo.strongRef`` to a record of ``collection``, or None."""
    if not isinstance(ref, dict):
        return None
    uri, cid = ref.get("uri"), ref.get("cid")
    if not isinstance(uri, str) or not isinstance(cid, str):
        return None
    try:
        at = parse_at_uri(uri)
        link = CID.decode(cid)
    except (AtprotoError, ValueError):
        return None
    if not at.is_did or at.collection != collection or at.rkey is None:
        return None
    return PostRef(at.authority, at.rkey, link)


def _blob_cid(blob: Any) -> CID | None:
    ref = blob.get("ref") if isinstance(blob, dict) else None
    return ref if isinstance(ref, CID) else None


def _embed(embed: Any) -> tuple[int, PostRef | None]:
    if not isinstance(embed, dict):
        return 0, None
    kind = embed.get("$type")
    if kind in _MEDIA:
        return _MEDIA[kind], None
    if kind == "app.bsky.embed.record":
        return EMBED_RECORD, post_ref(embed.get("record"))
    if kind == "app.bsky.embed.recordWithMedia":
        media, _ = _embed(embed.get("media"))
        record = embed.get("record")
        quote = post_ref(record.get("record")) if isinstance(record, dict) else None
        return EMBED_RECORD | media, quote
    return 0, None


def _mentions(facets: Any) -> tuple[str, ...]:
    out: list[str] = []
    for facet in facets if isinstance(facets, list) else ():
        for feature in facet.get("features", ()) if isinstance(facet, dict) else ():
            if not isinstance(feature, dict):
                continue
            did = feature.get("did")
            mention = feature.get("$type") == "app.bsky.richtext.facet#mention"
            if mention and isinstance(did, str) and did not in out:
                out.append(did)
    return tuple(out)


def read_record(collection: str, rkey: str, value: Any) -> Facts | None:
    """The indexed facts of a record (see the module docstring)."""
    if collection not in INDEXED:
        return None
    try:
        default_registry().validate_record(collection, value, rkey=rkey)
    except AtprotoError as exc:
        raise InvalidRecordError(f"{collection}/{rkey}: {exc.message}") from exc
    created = parse_time_us(value.get("createdAt"))
    if collection == POST:
        reply = value.get("reply")
        parent = root = None
        if isinstance(reply, dict):
            parent, root = post_ref(reply.get("parent")), post_ref(reply.get("root"))
            if parent is None or root is None:
                raise InvalidRecordError(f"{collection}/{rkey}: reply does not name two posts")
        embed, quote = _embed(value.get("embed"))
        return Post(
            value["text"], created, parent, root, quote, embed, _mentions(value.get("facets"))
        )
    if collection in (LIKE, REPOST):
        subject = post_ref(value.get("subject"))
        if subject is None:
            raise InvalidRecordError(f"{collection}/{rkey}: the subject is not a post")
        return Subject(subject, created)
    if collection in (FOLLOW, BLOCK):
        return Edge(value["subject"], created)
    if collection == LISTITEM:
        try:
            at = parse_at_uri(value["list"])
        except AtprotoError as exc:
            raise InvalidRecordError(f"{collection}/{rkey}: {exc.message}") from exc
        if at.collection != LIST or at.rkey is None:
            raise InvalidRecordError(f"{collection}/{rkey}: list is not a list record")
        return Edge(value["subject"], created, list_rkey=at.rkey, list_owner=at.authority)
    if collection == PROFILE:
        return Profile(
            value.get("displayName"),
            value.get("description"),
            _blob_cid(value.get("avatar")),
            _blob_cid(value.get("banner")),
            post_ref(value.get("pinnedPost")),
            value.get("createdAt"),
        )
    return Opaque()
