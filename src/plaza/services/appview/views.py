"""Rows into the Lexicon's exact view shapes (``app.bsky.actor.defs``, ``feed.defs``,
``embed.*``), with the viewer's state.

:class:`Views` is built per request for one viewer (an actor id, or None for an
anonymous caller) and hydrates in batches: every method takes many keys and reads each
table once for all of them. Accounts hidden from the viewer (blocked either way) come
back as ``blockedPost`` / ``viewBlocked`` where the Lexicon has a place for them, and
are left out of lists and feeds by the handlers (:meth:`Views.hidden`).

Blob URLs point at the account's host (``com.atproto.sync.getBlob``). Posts and
profiles carry the labels of the labelers the request accepts
(:mod:`plaza.services.appview.labels`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

from plaza.atproto import cbor, datamodel
from plaza.atproto.cid import CID
from plaza.services.appview.labels import Labels, hides, post_subjects, profile_subjects
from plaza.services.appview.reader import ActorRow, FeedItem, PostKey, PostRow, Reader
from plaza.services.appview.times import format_time_us

POST: Final = "app.bsky.feed.post"
INVALID_HANDLE: Final = "handle.invalid"
MAX_EMBED_DEPTH: Final = 2


def post_uri(did: str, rkey: str) -> str:
    return f"at://{did}/{POST}/{rkey}"


class Views:
    """Hydrates rows for one viewer (see the module docstring)."""

    def __init__(self, reader: Reader, viewer: int | None) -> None:
        self.reader = reader
        self.store = reader.store
        self.viewer = viewer
        self._hidden: set[int] | None = None
        self.labels: Labels | None = None  # set by the app view: labels to attach

    def hidden(self) -> set[int]:
        """Actor ids the viewer must not see content from (blocked either way, muted)."""
        if self._hidden is None:
            self._hidden = set() if self.viewer is None else self.reader.hidden_from(self.viewer)
        return self._hidden

    # -- profiles --------------------------------------------------------------------
    def _blob(self, actor: ActorRow, raw: bytes | None) -> str | None:
        if raw is None or actor.pds is None:
            return None
        base = actor.pds.rstrip("/")
        return f"{base}/xrpc/com.atproto.sync.getBlob?did={actor.did}&cid={CID(raw)}"

    def _profile_viewer(self, ids: Iterable[int]) -> dict[int, dict[str, Any]]:
        if self.viewer is None:
            return {}
        out: dict[int, dict[str, Any]] = {}
        rels = self.reader.relationships(self.viewer, ids)
        dids = self.store.dids_of([self.viewer])
        me = dids[self.viewer]
        for i, rel in rels.items():
            v: dict[str, Any] = {"muted": rel.muted, "blockedBy": rel.blocked_by}
            if rel.blocking:
                v["blocking"] = f"at://{me}/app.bsky.graph.block/{rel.blocking}"
            if rel.following:
                v["following"] = f"at://{me}/app.bsky.graph.follow/{rel.following}"
            if rel.followed_by:
                other = self.store.did_of(i)
                v["followedBy"] = f"at://{other}/app.bsky.graph.follow/{rel.followed_by}"
            out[i] = v
        return out

    def profiles(self, ids: Iterable[int], kind: str = "basic") -> dict[int, dict[str, Any]]:
        """``ProfileViewBasic`` (``kind`` "basic"), ``ProfileView`` ("view") or
        ``ProfileViewDetailed`` ("detailed") of each known id."""
        wanted = list(dict.fromkeys(ids))
        rows = self.reader.actors(wanted)
        viewer = self._profile_viewer(rows)
        out: dict[int, dict[str, Any]] = {}
        for i in wanted:
            a = rows.get(i)
            if a is None:
                continue
            p: dict[str, Any] = {"did": a.did, "handle": a.handle or INVALID_HANDLE}
            if a.display_name is not None:
                p["displayName"] = a.display_name
            avatar = self._blob(a, a.avatar)
            if avatar is not None:
                p["avatar"] = avatar
            if kind != "basic":
                if a.description is not None:
                    p["description"] = a.description
                p["indexedAt"] = format_time_us(a.indexed_at)
            if kind == "detailed":
                banner = self._blob(a, a.banner)
                if banner is not None:
                    p["banner"] = banner
                p["followersCount"] = a.followers
                p["followsCount"] = a.follows
                p["postsCount"] = a.posts
                if a.pinned_uri is not None and a.pinned_cid is not None:
                    p["pinnedPost"] = {"uri": a.pinned_uri, "cid": str(CID(a.pinned_cid))}
            if a.profile_created is not None:
                p["createdAt"] = a.profile_created
            if self.viewer is not None and i != self.viewer:
                p["viewer"] = viewer.get(i, {"muted": False, "blockedBy": False})
            p["labels"] = []
            out[i] = p
        if self.labels is not None:
            self.labels.attach(out.values(), profile_subjects)
        return out

    # -- posts -----------------------------------------------------------------------
    def posts(self, keys: Iterable[PostKey], depth: int = 0) -> dict[PostKey, dict[str, Any]]:
        """``PostView`` of each indexed post among ``keys`` (embeds of quoted posts are
        hydrated up to :data:`MAX_EMBED_DEPTH` levels)."""
        rows = self.reader.posts(keys)
        return self._post_views(list(rows.values()), depth)

    def _post_views(self, rows: list[PostRow], depth: int) -> dict[PostKey, dict[str, Any]]:
        quotes = [r.quote for r in rows if r.quote is not None]
        quoted = self.reader.posts(quotes) if depth < MAX_EMBED_DEPTH and quotes else {}
        quoted_views = self._post_views(list(quoted.values()), depth + 1) if quoted else {}
        authors = self.profiles([r.author for r in rows] + [q.author for q in quoted.values()])
        states = (
            self.reader.post_viewer(self.viewer, [r.key for r in rows])
            if self.viewer is not None
            else {}
        )
        out: dict[PostKey, dict[str, Any]] = {}
        for r in rows:
            author = authors.get(r.author)
            if author is None:
                continue
            record = datamodel.to_json(cbor.decode(r.record))
            view: dict[str, Any] = {
                "$type": "app.bsky.feed.defs#postView",
                "uri": post_uri(author["did"], r.rkey),
                "cid": str(r.cid),
                "author": author,
                "record": record,
            }
            embed = self._embed(r, record.get("embed"), quoted_views, author)
            if embed is not None:
                view["embed"] = embed
            view.update(
                replyCount=r.replies,
                repostCount=r.reposts,
                likeCount=r.likes,
                quoteCount=r.quotes,
                indexedAt=format_time_us(r.indexed_at),
            )
            if self.viewer is not None:
                like, repost = states.get(r.key, (None, None))
                me = self.store.did_of(self.viewer)
                v: dict[str, Any] = {"threadMuted": False, "embeddingDisabled": False}
                if like is not None:
                    v["like"] = f"at://{me}/app.bsky.feed.like/{like}"
                if repost is not None:
                    v["repost"] = f"at://{me}/app.bsky.feed.repost/{repost}"
                view["viewer"] = v
            view["labels"] = []
            out[r.key] = view
        if self.labels is not None:
            self.labels.attach(out.values(), post_subjects)
            out = {k: v for k, v in out.items() if not hides(v)}
        return out

    def _embed(
        self,
        row: PostRow,
        embed: Any,
        quoted: dict[PostKey, dict[str, Any]],
        author: dict[str, Any],
    ) -> dict[str, Any] | None:
        if not isinstance(embed, dict):
            return None
        kind = embed.get("$type")
        if kind == "app.bsky.embed.images":
            return self._images(embed, author)
        if kind == "app.bsky.embed.external":
            return self._external(embed, author)
        if kind == "app.bsky.embed.video":
            return self._video(embed, author)
        if kind == "app.bsky.embed.record":
            return {
                "$type": "app.bsky.embed.record#view",
                "record": self._record_view(row.quote, embed.get("record"), quoted),
            }
        if kind == "app.bsky.embed.recordWithMedia":
            media = embed.get("media")
            inner = embed.get("record")
            inner = inner if isinstance(inner, dict) else {}
            media_view = self._embed(row, media, quoted, author)
            view: dict[str, Any] = {
                "$type": "app.bsky.embed.recordWithMedia#view",
                "record": {
                    "$type": "app.bsky.embed.record#view",
                    "record": self._record_view(row.quote, inner.get("record"), quoted),
                },
            }
            if media_view is not None:
                view["media"] = media_view
            return view
        return None

    def _blob_link(self, author: dict[str, Any], blob: Any) -> str | None:
        if not isinstance(blob, dict) or not isinstance(blob.get("ref"), dict):
            return None
        link = blob["ref"].get("$link")
        actor = self.store.find_actor(author["did"])
        rows = self.reader.actors([actor]) if actor is not None else {}
        a = rows.get(actor) if actor is not None else None
        if not isinstance(link, str) or a is None or a.pds is None:
            return None
        return f"{a.pds.rstrip('/')}/xrpc/com.atproto.sync.getBlob?did={a.did}&cid={link}"

    def _images(self, embed: dict[str, Any], author: dict[str, Any]) -> dict[str, Any]:
        images = []
        for img in embed.get("images", []):
            url = self._blob_link(author, img.get("image")) or ""
            view: dict[str, Any] = {"thumb": url, "fullsize": url, "alt": img.get("alt", "")}
            if isinstance(img.get("aspectRatio"), dict):
                view["aspectRatio"] = img["aspectRatio"]
            images.append(view)
        return {"$type": "app.bsky.embed.images#view", "images": images}

    def _external(self, embed: dict[str, Any], author: dict[str, Any]) -> dict[str, Any]:
        ext = embed.get("external", {})
        view: dict[str, Any] = {
            "uri": ext.get("uri", ""),
            "title": ext.get("title", ""),
            "description": ext.get("description", ""),
        }
        thumb = self._blob_link(author, ext.get("thumb"))
        if thumb is not None:
            view["thumb"] = thumb
        return {"$type": "app.bsky.embed.external#view", "external": view}

    def _video(self, embed: dict[str, Any], author: dict[str, Any]) -> dict[str, Any]:
        video = embed.get("video", {})
        link = video.get("ref", {}).get("$link", "") if isinstance(video, dict) else ""
        view: dict[str, Any] = {
            "$type": "app.bsky.embed.video#view",
            "cid": link,
            "playlist": self._blob_link(author, video) or "",
        }
        if isinstance(embed.get("alt"), str):
            view["alt"] = embed["alt"]
        if isinstance(embed.get("aspectRatio"), dict):
            view["aspectRatio"] = embed["aspectRatio"]
        return view

    def _record_view(
        self, key: PostKey | None, ref: Any, quoted: dict[PostKey, dict[str, Any]]
    ) -> dict[str, Any]:
        uri = ref.get("uri", "") if isinstance(ref, dict) else ""
        post = quoted.get(key) if key is not None else None
        if key is not None and key[0] in self.hidden():
            return {
                "$type": "app.bsky.embed.record#viewBlocked",
                "uri": uri,
                "blocked": True,
                "author": {"did": self.store.did_of(key[0])},
            }
        if post is None:
            return {"$type": "app.bsky.embed.record#viewNotFound", "uri": uri, "notFound": True}
        view: dict[str, Any] = {
            "$type": "app.bsky.embed.record#viewRecord",
            "uri": post["uri"],
            "cid": post["cid"],
            "author": post["author"],
            "value": post["record"],
            "labels": post["labels"],
            "replyCount": post["replyCount"],
            "repostCount": post["repostCount"],
            "likeCount": post["likeCount"],
            "quoteCount": post["quoteCount"],
            "indexedAt": post["indexedAt"],
        }
        if "embed" in post:
            view["embeds"] = [post["embed"]]
        return view

    # -- feeds and threads -----------------------------------------------------------
    def not_found(self, uri: str) -> dict[str, Any]:
        return {"$type": "app.bsky.feed.defs#notFoundPost", "uri": uri, "notFound": True}

    def blocked(self, key: PostKey) -> dict[str, Any]:
        did = self.store.did_of(key[0])
        return {
            "$type": "app.bsky.feed.defs#blockedPost",
            "uri": post_uri(did, key[1]),
            "blocked": True,
            "author": {"did": did},
        }

    def feed(self, items: list[FeedItem]) -> list[dict[str, Any]]:
        """``FeedViewPost`` of each item whose post is indexed and visible, with the
        repost reason and the reply context (root and parent)."""
        hidden = self.hidden()
        items = [
            i
            for i in items
            if i.post[0] not in hidden and (i.repost is None or i.repost[0] not in hidden)
        ]
        rows = self.reader.posts([i.post for i in items])
        context = [k for r in rows.values() for k in (r.parent, r.root) if k is not None]
        views = self._post_views(list(rows.values()), 0)
        ctx_views = self.posts(context) if context else {}
        reposters = self.profiles([i.repost[0] for i in items if i.repost is not None])
        out: list[dict[str, Any]] = []
        for item in items:
            post = views.get(item.post)
            if post is None:
                continue
            entry: dict[str, Any] = {"post": post}
            row = rows[item.post]
            if row.parent is not None and row.root is not None:
                entry["reply"] = {
                    "root": self._context(row.root, ctx_views),
                    "parent": self._context(row.parent, ctx_views),
                }
            if item.repost is not None:
                by = reposters.get(item.repost[0])
                if by is None:
                    continue
                entry["reason"] = {
                    "$type": "app.bsky.feed.defs#reasonRepost",
                    "by": by,
                    "uri": f"at://{by['did']}/app.bsky.feed.repost/{item.repost[1]}",
                    "indexedAt": format_time_us(item.sort_at),
                }
            out.append(entry)
        return out

    def _context(self, key: PostKey, views: dict[PostKey, dict[str, Any]]) -> dict[str, Any]:
        if key[0] in self.hidden():
            return self.blocked(key)
        view = views.get(key)
        if view is None:
            return self.not_found(post_uri(self.store.did_of(key[0]), key[1]))
        return view

    def thread(self, key: PostKey, depth: int, parent_height: int) -> dict[str, Any]:
        """``ThreadViewPost`` of ``key``: ``parent_height`` ancestors above, replies
        ``depth`` levels below (hidden authors' replies left out)."""
        rows = self.reader.posts([key])
        row = rows.get(key)
        if row is None:
            return self.not_found(post_uri(self.store.did_of(key[0]), key[1]))
        if key[0] in self.hidden():
            return self.blocked(key)
        node = self._thread_node(row)
        if node["post"] is None:  # hidden by a label
            return self.not_found(post_uri(self.store.did_of(key[0]), key[1]))
        parent = self._parents(row, parent_height)
        if parent is not None:
            node["parent"] = parent
        node["replies"] = self._replies(row, depth)
        return node

    def _thread_node(self, row: PostRow) -> dict[str, Any]:
        view = self._post_views([row], 0).get(row.key)
        return {"$type": "app.bsky.feed.defs#threadViewPost", "post": view}

    def _parents(self, row: PostRow, height: int) -> dict[str, Any] | None:
        if row.parent is None or height <= 0:
            return None
        if row.parent[0] in self.hidden():
            return self.blocked(row.parent)
        parent = self.reader.posts([row.parent]).get(row.parent)
        if parent is None:
            return self.not_found(post_uri(self.store.did_of(row.parent[0]), row.parent[1]))
        node = self._thread_node(parent)
        if node["post"] is None:  # hidden by a label
            return self.not_found(post_uri(self.store.did_of(row.parent[0]), row.parent[1]))
        above = self._parents(parent, height - 1)
        if above is not None:
            node["parent"] = above
        return node

    def _replies(self, row: PostRow, depth: int) -> list[dict[str, Any]]:
        if depth <= 0:
            return []
        hidden = self.hidden()
        out = []
        for child in self.reader.replies(row.key):
            if child.author in hidden:
                continue
            node = self._thread_node(child)
            if node["post"] is None:
                continue
            node["replies"] = self._replies(child, depth - 1)
            out.append(node)
        return out
