"""Custom feeds: the app view's own feed generator and third-party ones.

A custom feed is named by the AT-URI of a generator record
(``at://<publisher>/app.bsky.feed.generator/<rkey>``) whose ``did`` field names the
service that computes it. Computing a feed gives a *skeleton* — post URIs, each
perhaps with a repost reason and an opaque ``feedContext`` — which the app view then
hydrates into ``FeedViewPost``s for the viewer
(:mod:`plaza.services.appview.handlers.feedgen`).

The app view is a feed generator itself: its service DID (``AppviewSettings.did``)
names ``#bsky_fg`` in its DID document, and it answers
``app.bsky.feed.getFeedSkeleton`` for the algorithms in :data:`BUILTINS`. Its own feeds
are published at ``at://<app view DID>/app.bsky.feed.generator/<rkey>`` without a
repository: the app view synthesizes their generator records
(:meth:`FeedGenerators.builtin_record`). Any account may also publish a generator
record naming the app view's DID and a built-in rkey; it is served the same way, with
no network call.

Any other generator is called over the network: its service DID is resolved
(:class:`~plaza.services.appview.remote.Remote`, SSRF-checked, bounded in time and
size), and ``getFeedSkeleton`` is called at its ``#bsky_fg`` endpoint with an
inter-service token (``iss`` the app view's DID, ``aud`` the generator's, ``lxm``
``app.bsky.feed.getFeedSkeleton``) signed by the app view's own key
(:func:`load_service_key`; published as ``#atproto`` in the app view's DID document).
The answer is validated: at most ``limit`` items are kept, each must be a post
AT-URI; anything malformed is an ``UpstreamFailure``.

Built-in algorithm ``hot``: top-level posts of the last 24 hours by engagement
(likes + 2 × reposts + replies + quotes, the counts the indexer keeps), ties newest
first; the cursor is the offset into that ranking. The ranking's first
:data:`MAX_OFFSET` posts are computed once per ``ranking_s`` (30 s) and pages are cut
from that copy, so a request costs a slice, not a scan of the day's posts, and the pages
of one reading agree with each other.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from plaza.atproto import cbor, datamodel
from plaza.atproto.cid import CID
from plaza.atproto.crypto import PrivateKey, parse_private_key
from plaza.atproto.errors import AtprotoError
from plaza.atproto.syntax import parse_at_uri
from plaza.db import Database
from plaza.db.private import private_dirs, private_file
from plaza.errors import InvalidInputError
from plaza.services.appview.remote import Remote, RemoteError
from plaza.services.appview.schema import RECENT_US
from plaza.services.appview.store import AppviewStore
from plaza.services.service_jwt import mint_service_jwt

GENERATOR: Final = "app.bsky.feed.generator"
SKELETON_NSID: Final = "app.bsky.feed.getFeedSkeleton"
KEY_FILE: Final = "service.key"
DAY_US: Final = 24 * 3600 * 1_000_000
MAX_OFFSET: Final = 1_000
MAX_CONTEXT: Final = 2000  # bytes of a skeleton item's feedContext kept
TOKEN_S: Final = 60


@dataclass(frozen=True)
class Builtin:
    """One of the app view's own algorithms."""

    rkey: str
    display_name: str
    description: str


BUILTINS: Final = {
    "hot": Builtin(
        "hot",
        "What's hot",
        "Posts of the last 24 hours that drew the most likes, reposts, replies and quotes.",
    ),
}


@dataclass(frozen=True)
class SkeletonItem:
    post: str  # a post AT-URI
    repost: str | None = None  # the repost's AT-URI when the reason is a repost
    context: str | None = None  # the generator's feedContext, passed through


@dataclass(frozen=True)
class Skeleton:
    items: list[SkeletonItem]
    cursor: str | None


@dataclass(frozen=True)
class Generator:
    """A feed generator as getFeedGenerator shows it."""

    uri: str
    cid: str
    creator: str  # the publisher's DID
    service: str  # the DID that computes the feed
    record: dict[str, Any]  # JSON form
    likes: int
    indexed_at: int


def load_service_key(data_dir: Path) -> PrivateKey:
    """The app view's own signing key, made on first use (``DATA_DIR/service.key``,
    owner-only)."""
    path = data_dir / KEY_FILE
    if path.exists():
        return parse_private_key(path.read_text())
    private_dirs(data_dir)
    key = PrivateKey.generate()
    private_file(path)
    path.write_text(key.multibase() + "\n")
    return key


HOT_QUERY: Final = (
    # the second and third terms are posts_recent's (schema.py), so it serves this
    "SELECT author, rkey FROM posts WHERE sort_at >= ? AND parent_author IS NULL "
    f"AND sort_at >= indexed_at - {RECENT_US} "
    "ORDER BY likes + 2 * reposts + replies + quotes DESC, sort_at DESC, id DESC "
    "LIMIT ? OFFSET ?"
)
"""The ``hot`` ranking: posts since a time, best first (a page of it)."""


def hot(db: Database, now_us: int, limit: int, offset: int) -> list[tuple[int, str]]:
    """The ``hot`` ranking's page: ``(author id, rkey)`` of each post."""
    rows = db.query(HOT_QUERY, (now_us - DAY_US, limit, offset))
    return [(int(a), str(r)) for a, r in rows]


def parse_feed_uri(uri: str) -> tuple[str, str]:
    """``(publisher DID or handle, rkey)`` of a generator AT-URI; InvalidRequest else."""
    try:
        at = parse_at_uri(uri)
    except AtprotoError as exc:
        raise InvalidInputError(f"not an AT-URI: {uri[:100]!r}") from exc
    if at.collection != GENERATOR or at.rkey is None:
        raise InvalidInputError(f"not a feed generator URI: {uri[:100]!r}")
    return at.authority, at.rkey


def parse_skeleton(body: Any, limit: int) -> Skeleton:
    """A generator's ``getFeedSkeleton`` answer, checked (at most ``limit`` items)."""
    if not isinstance(body, dict) or not isinstance(body.get("feed"), list):
        raise RemoteError("the feed generator's answer has no feed list")
    items: list[SkeletonItem] = []
    for entry in body["feed"][:limit]:
        post = entry.get("post") if isinstance(entry, dict) else None
        if not isinstance(post, str):
            raise RemoteError("a feed skeleton item has no post URI")
        try:
            at = parse_at_uri(post)
        except AtprotoError as exc:
            raise RemoteError(f"a feed skeleton item is not an AT-URI: {post[:100]!r}") from exc
        if at.collection != "app.bsky.feed.post" or at.rkey is None:
            raise RemoteError(f"a feed skeleton item is not a post: {post[:100]!r}")
        reason = entry.get("reason")
        repost = None
        if isinstance(reason, dict) and isinstance(reason.get("repost"), str):
            repost = reason["repost"]
        context = entry.get("feedContext")
        if not isinstance(context, str) or len(context.encode()) > MAX_CONTEXT:
            context = None
        items.append(SkeletonItem(post, repost, context))
    cursor = body.get("cursor")
    if cursor is not None and (not isinstance(cursor, str) or len(cursor) > 2000):
        raise RemoteError("the feed generator's cursor is not a short string")
    return Skeleton(items, cursor)


class FeedGenerators:
    """The app view's feeds (see the module docstring)."""

    def __init__(
        self,
        store: AppviewStore,
        remote: Remote,
        did: str,
        key: PrivateKey,
        *,
        clock: Callable[[], float] = time.time,
        ranking_s: float = 30.0,
    ) -> None:
        self.store = store
        self.remote = remote
        self.did = did
        self.key = key
        self.clock = clock
        self.ranking_s = ranking_s
        self._ranking: tuple[float, list[tuple[int, str]]] | None = None

    def builtin_uri(self, rkey: str) -> str:
        return f"at://{self.did}/{GENERATOR}/{rkey}"

    def builtin_record(self, b: Builtin) -> dict[str, Any]:
        return {
            "$type": GENERATOR,
            "did": self.did,
            "displayName": b.display_name,
            "description": b.description,
            "createdAt": "2026-01-01T00:00:00.000Z",
        }

    def generator(self, uri: str) -> Generator | None:
        """The generator named by ``uri`` (a built-in or an indexed record), or None."""
        authority, rkey = parse_feed_uri(uri)
        if authority == self.did:
            b = BUILTINS.get(rkey)
            if b is None:
                return None
            record = self.builtin_record(b)
            cid = str(cbor.cid_of(record))
            return Generator(self.builtin_uri(rkey), cid, self.did, self.did, record, 0, 0)
        actor = (
            self.store.find_actor(authority)
            if authority.startswith("did:")
            else self.store.find_handle(authority.lower())
        )
        if actor is None:
            return None
        row = self.store.db.one(
            "SELECT cid, record, likes, indexed_at FROM feed_generators "
            "WHERE actor = ? AND rkey = ?",
            (actor, rkey),
        )
        if row is None:
            return None
        record = datamodel.to_json(cbor.decode(bytes(row[1])))
        service = record.get("did") if isinstance(record, dict) else None
        if not isinstance(record, dict) or not isinstance(service, str):
            return None
        creator = self.store.did_of(actor)
        return Generator(
            f"at://{creator}/{GENERATOR}/{rkey}",
            str(CID(bytes(row[0]))),
            creator,
            service,
            record,
            int(row[2]),
            int(row[3]),
        )

    def local(self, rkey: str, limit: int, cursor: str | None) -> Skeleton:
        """A page of the built-in algorithm ``rkey`` (InvalidRequest ``UnknownFeed`` if
        there is none)."""
        if rkey not in BUILTINS:
            raise InvalidInputError(f"unknown feed {rkey[:40]!r}", code="UnknownFeed")
        offset = 0
        if cursor is not None:
            if not (cursor.isascii() and cursor.isdigit()) or int(cursor) > MAX_OFFSET:
                raise InvalidInputError("malformed cursor")
            offset = int(cursor)
        now = self.clock()
        if self._ranking is None or now - self._ranking[0] >= self.ranking_s:
            self._ranking = (now, hot(self.store.db, int(now * 1_000_000), MAX_OFFSET, 0))
        ranking = self._ranking[1]
        keys = ranking[offset : offset + limit]
        dids = self.store.dids_of(a for a, _ in keys)
        items = [SkeletonItem(f"at://{dids[a]}/app.bsky.feed.post/{r}") for a, r in keys]
        more = offset + limit < len(ranking)
        return Skeleton(items, str(offset + limit) if more else None)

    async def skeleton(self, gen: Generator, limit: int, cursor: str | None) -> Skeleton:
        """A page of ``gen``'s feed: computed here for the app view's own algorithms,
        else asked of the generator's service."""
        rkey = gen.uri.rsplit("/", 1)[1]
        if gen.service == self.did:
            return self.local(rkey, limit, cursor)
        doc = await self.remote.did_document(gen.service)
        endpoint = doc.services.get("bsky_fg")
        if endpoint is None:
            raise RemoteError(f"{gen.service} names no feed generator service (#bsky_fg)")
        now = int(self.clock())
        token = mint_service_jwt(
            self.key,
            iss=self.did,
            aud=gen.service,
            lxm=SKELETON_NSID,
            now=now,
            exp=now + TOKEN_S,
            jti=secrets.token_hex(16),
        )
        params = [("feed", gen.uri), ("limit", str(limit))]
        if cursor is not None:
            params.append(("cursor", cursor))
        body = await self.remote.get_json(
            f"{endpoint.rstrip('/')}/xrpc/{SKELETON_NSID}",
            params,
            {"authorization": f"Bearer {token}"},
        )
        return parse_skeleton(body, limit)
