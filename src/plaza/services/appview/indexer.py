"""Applying record writes to the app view's tables, counts and notifications.

:meth:`Indexer.put` indexes a created or updated record, :meth:`Indexer.delete` removes
one; both run inside the caller's transaction (the firehose follower's, with the cursor;
the backfill's, with the repository's state), so an event is indexed with everything it
changes or not at all. A record that fails its Lexicon is skipped (``put`` returns
False) and changes nothing.

Counts stay right whatever order records arrive in: a post's like, repost, reply and
quote counts are counted from the index when the post is first indexed (its likes may
have come first, from another repository's backfill), and changed by one on every later
like, repost, reply or quote and their deletes. Actors' follower, follow and post counts
change by one per follow or post indexed or deleted.

An update of a post keeps its counts (only its own references and text change); an
update of any other record replaces it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from plaza.atproto import cbor
from plaza.atproto.cid import CID
from plaza.atproto.errors import AtprotoError
from plaza.services.appview import records as rec
from plaza.services.appview.records import PostRef, read_record
from plaza.services.appview.schema import NOTIFICATION_REASONS
from plaza.services.appview.store import AppviewStore, now_us

_REASON = {name: i for i, name in enumerate(NOTIFICATION_REASONS)}
_POST_REASONS = (_REASON["mention"], _REASON["reply"], _REASON["quote"])


@dataclass(frozen=True)
class _Write:
    """One record being indexed."""

    actor: int
    did: str
    collection: str
    rkey: str
    cid: CID
    block: bytes
    now: int


class Indexer:
    """Writes records into an :class:`AppviewStore` (see the module docstring)."""

    def __init__(self, store: AppviewStore, *, clock: Callable[[], int] = now_us) -> None:
        self.store = store
        self.db = store.db
        self.clock = clock
        self.pg = store.dialect == "postgresql"
        self.skipped = 0

    # -- entry points ----------------------------------------------------------------
    def put(self, did: str, collection: str, rkey: str, cid: CID, block: bytes) -> bool:
        """Index a created or updated record; False if it is not indexed (unknown
        collection, or the record fails its Lexicon)."""
        if collection not in rec.INDEXED:
            return False
        try:
            value = cbor.decode(block)
            facts = read_record(collection, rkey, value)
        except AtprotoError:
            self.skipped += 1
            return False
        if facts is None:
            return False
        actor = self.store.actor_id(did)
        now = self.clock()
        w = _Write(actor, did, collection, rkey, cid, block, now)
        if isinstance(facts, rec.Post):
            self._put_post(w, facts)
        elif isinstance(facts, rec.Subject):
            self._delete_subject(actor, collection, rkey)
            self._put_subject(w, facts)
        elif isinstance(facts, rec.Edge):
            self._delete_edge(actor, collection, rkey)
            self._put_edge(w, facts)
        elif isinstance(facts, rec.Profile):
            if rkey == "self":
                self.put_profile(actor, cid, facts)
        else:
            table = "lists" if collection == rec.LIST else "feed_generators"
            if not self.db.execute(
                f"UPDATE {table} SET cid = ?, record = ? WHERE actor = ? AND rkey = ?",
                (cid.raw, block, actor, rkey),
            ):
                self.db.execute(
                    f"INSERT INTO {table} (actor, rkey, cid, record, indexed_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (actor, rkey, cid.raw, block, now),
                )
                if collection == rec.LIST:  # its items may have come first
                    self.db.execute(
                        "UPDATE lists SET items = (SELECT COUNT(*) FROM list_items "
                        "WHERE actor = ? AND list_rkey = ?) WHERE actor = ? AND rkey = ?",
                        (actor, rkey, actor, rkey),
                    )
        return True

    def delete(self, did: str, collection: str, rkey: str) -> None:
        """Remove a record from the index (nothing happens if it is not indexed)."""
        actor = self.store.find_actor(did)
        if actor is None or collection not in rec.INDEXED:
            return
        if collection == rec.POST:
            self._delete_post(actor, rkey)
        elif collection in (rec.LIKE, rec.REPOST):
            self._delete_subject(actor, collection, rkey)
        elif collection in (rec.FOLLOW, rec.BLOCK, rec.LISTITEM):
            self._delete_edge(actor, collection, rkey)
        elif collection == rec.PROFILE:
            if rkey == "self":
                self.put_profile(actor, None, rec.Profile(None, None, None, None, None, None))
        else:
            table = "lists" if collection == rec.LIST else "feed_generators"
            self.db.execute(f"DELETE FROM {table} WHERE actor = ? AND rkey = ?", (actor, rkey))
            if collection == rec.LIST:
                self.db.execute(
                    "DELETE FROM list_items WHERE actor = ? AND list_rkey = ?", (actor, rkey)
                )

    def set_identity(self, did: str, handle: str | None, pds: str | None) -> None:
        """Record ``did``'s handle (None: no valid handle) and host, searchable by handle."""
        actor = self.store.actor_id(did)
        old = self._actor_text(actor)
        self.db.execute(
            "UPDATE actors SET handle = ?, pds = ? WHERE id = ?",
            (None if handle is None else handle.lower(), pds, actor),
        )
        self._reindex_actor(actor, old)

    # -- posts -----------------------------------------------------------------------
    def _put_post(self, w: _Write, p: rec.Post) -> None:
        actor, did, rkey, cid, block, now = w.actor, w.did, w.rkey, w.cid, w.block, w.now
        kept = self._delete_post(actor, rkey, update=True)
        sort_at = min(p.created_us, now) if p.created_us > 0 else now
        parent = self._ref(p.parent)
        root = self._ref(p.root)
        quote = self._ref(p.quote)
        if kept is None:
            counts = self._post_counts(actor, rkey)
            indexed_at = now
        else:
            counts, indexed_at = kept[:4], kept[4]
        search = ", to_tsvector('simple', ?)" if self.pg else ""
        self.db.execute(
            "INSERT INTO posts (author, rkey, cid, record, sort_at, indexed_at, parent_author, "
            "parent_rkey, root_author, root_rkey, quote_author, quote_rkey, embed, likes, "
            f"reposts, replies, quotes{', search' if self.pg else ''}) "
            f"VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?{search})",
            (
                actor,
                rkey,
                cid.raw,
                block,
                sort_at,
                indexed_at,
                *parent,
                *root,
                *quote,
                p.embed,
                *counts,
                *((p.text,) if self.pg else ()),
            ),
        )
        if not self.pg:
            post_id = self.db.scalar(
                "SELECT id FROM posts WHERE author = ? AND rkey = ?", (actor, rkey)
            )
            self.db.execute("INSERT INTO posts_fts (rowid, text) VALUES (?, ?)", (post_id, p.text))
        if kept is None:
            self.db.execute("UPDATE actors SET posts = posts + 1 WHERE id = ?", (actor,))
        if parent[0] is not None:
            self._bump_post(parent, "replies", 1)
        if quote[0] is not None:
            self._bump_post(quote, "quotes", 1)
        notified = {did}
        post_reasons = [
            (p.parent, "reply"),
            (p.root, "reply"),
            (p.quote, "quote"),
        ]
        for ref, reason in post_reasons:
            if ref is not None and ref.did not in notified:
                notified.add(ref.did)
                self._notify(w, ref.did, reason, ref.rkey)
        for mentioned in p.mentions:
            if mentioned not in notified:
                notified.add(mentioned)
                self._notify(w, mentioned, "mention", None)

    def _ref(self, ref: PostRef | None) -> tuple[int | None, str | None]:
        if ref is None:
            return None, None
        return self.store.actor_id(ref.did), ref.rkey

    def _post_counts(self, author: int, rkey: str) -> tuple[int, int, int, int]:
        def count(sql: str) -> int:
            return int(self.db.scalar(sql, (author, rkey)) or 0)

        return (
            count("SELECT COUNT(*) FROM likes WHERE subject_author = ? AND subject_rkey = ?"),
            count("SELECT COUNT(*) FROM reposts WHERE subject_author = ? AND subject_rkey = ?"),
            count("SELECT COUNT(*) FROM posts WHERE parent_author = ? AND parent_rkey = ?"),
            count("SELECT COUNT(*) FROM posts WHERE quote_author = ? AND quote_rkey = ?"),
        )

    def _bump_post(self, ref: tuple[int | None, str | None], column: str, by: int) -> None:
        self.db.execute(
            f"UPDATE posts SET {column} = {column} + ? WHERE author = ? AND rkey = ?",
            (by, ref[0], ref[1]),
        )

    def _delete_post(
        self, actor: int, rkey: str, *, update: bool = False
    ) -> tuple[int, int, int, int, int] | None:
        """Remove a post; return its counts and indexed_at (None if it was not indexed)."""
        row = self.db.one(
            "SELECT id, record, parent_author, parent_rkey, quote_author, quote_rkey, likes, "
            "reposts, replies, quotes, indexed_at FROM posts WHERE author = ? AND rkey = ?",
            (actor, rkey),
        )
        if row is None:
            return None
        post_id, block = row[0], row[1]
        if not self.pg:
            text = cbor.decode(block).get("text", "")
            self.db.execute(
                "INSERT INTO posts_fts (posts_fts, rowid, text) VALUES ('delete', ?, ?)",
                (post_id, text),
            )
        self.db.execute("DELETE FROM posts WHERE id = ?", (post_id,))
        if row[2] is not None:
            self._bump_post((row[2], row[3]), "replies", -1)
        if row[4] is not None:
            self._bump_post((row[4], row[5]), "quotes", -1)
        marks = ",".join("?" * len(_POST_REASONS))
        self.db.execute(
            f"DELETE FROM notifications WHERE author = ? AND rkey = ? AND reason IN ({marks})",
            (actor, rkey, *_POST_REASONS),
        )
        if not update:
            self.db.execute("UPDATE actors SET posts = posts - 1 WHERE id = ?", (actor,))
        return int(row[6]), int(row[7]), int(row[8]), int(row[9]), int(row[10])

    # -- likes and reposts -----------------------------------------------------------
    def _put_subject(self, w: _Write, s: rec.Subject) -> None:
        actor, did, collection, rkey, now = w.actor, w.did, w.collection, w.rkey, w.now
        subject = self._ref(s.subject)
        created = s.created_us or now
        if collection == rec.LIKE:
            self.db.execute(
                "INSERT INTO likes (actor, rkey, subject_author, subject_rkey, subject_cid, "
                "created) VALUES (?, ?, ?, ?, ?, ?)",
                (actor, rkey, *subject, s.subject.cid.raw, created),
            )
            self._bump_post(subject, "likes", 1)
            reason = "like"
        else:
            self.db.execute(
                "INSERT INTO reposts (actor, rkey, subject_author, subject_rkey, subject_cid, "
                "created, sort_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (actor, rkey, *subject, s.subject.cid.raw, created, min(created, now)),
            )
            self._bump_post(subject, "reposts", 1)
            reason = "repost"
        if s.subject.did != did:
            self._notify(w, s.subject.did, reason, s.subject.rkey)

    def _delete_subject(self, actor: int, collection: str, rkey: str) -> None:
        table, column, reason = (
            ("likes", "likes", "like")
            if collection == rec.LIKE
            else ("reposts", "reposts", "repost")
        )
        row = self.db.one(
            f"SELECT subject_author, subject_rkey FROM {table} WHERE actor = ? AND rkey = ?",
            (actor, rkey),
        )
        if row is None:
            return
        self.db.execute(f"DELETE FROM {table} WHERE actor = ? AND rkey = ?", (actor, rkey))
        self._bump_post((row[0], row[1]), column, -1)
        self._unnotify(actor, rkey, reason)

    # -- follows, blocks, list items -------------------------------------------------
    def _put_edge(self, w: _Write, e: rec.Edge) -> None:
        actor, did, collection, rkey, now = w.actor, w.did, w.collection, w.rkey, w.now
        subject = self.store.actor_id(e.subject)
        created = e.created_us or now
        if collection == rec.LISTITEM:
            if e.list_owner != did or e.list_rkey is None:
                return  # an item of someone else's list means nothing
            self.db.execute(
                "INSERT INTO list_items (actor, rkey, list_rkey, subject, created) "
                "VALUES (?, ?, ?, ?, ?)",
                (actor, rkey, e.list_rkey, subject, created),
            )
            self.db.execute(
                "UPDATE lists SET items = items + 1 WHERE actor = ? AND rkey = ?",
                (actor, e.list_rkey),
            )
            return
        table = "follows" if collection == rec.FOLLOW else "blocks"
        self.db.execute(
            f"INSERT INTO {table} (actor, rkey, subject, created) VALUES (?, ?, ?, ?)",
            (actor, rkey, subject, created),
        )
        if collection == rec.FOLLOW:
            self.db.execute("UPDATE actors SET follows = follows + 1 WHERE id = ?", (actor,))
            self.db.execute("UPDATE actors SET followers = followers + 1 WHERE id = ?", (subject,))
            if e.subject != did:
                self._notify(w, e.subject, "follow", None)

    def _delete_edge(self, actor: int, collection: str, rkey: str) -> None:
        if collection == rec.LISTITEM:
            row = self.db.one(
                "SELECT list_rkey FROM list_items WHERE actor = ? AND rkey = ?", (actor, rkey)
            )
            if row is not None:
                self.db.execute(
                    "DELETE FROM list_items WHERE actor = ? AND rkey = ?", (actor, rkey)
                )
                self.db.execute(
                    "UPDATE lists SET items = items - 1 WHERE actor = ? AND rkey = ?",
                    (actor, row[0]),
                )
            return
        table = "follows" if collection == rec.FOLLOW else "blocks"
        subject = self.db.scalar(
            f"SELECT subject FROM {table} WHERE actor = ? AND rkey = ?", (actor, rkey)
        )
        if subject is None:
            return
        self.db.execute(f"DELETE FROM {table} WHERE actor = ? AND rkey = ?", (actor, rkey))
        if collection == rec.FOLLOW:
            self.db.execute("UPDATE actors SET follows = follows - 1 WHERE id = ?", (actor,))
            self.db.execute("UPDATE actors SET followers = followers - 1 WHERE id = ?", (subject,))
            self._unnotify(actor, rkey, "follow")

    # -- profiles --------------------------------------------------------------------
    def put_profile(self, actor: int, cid: CID | None, p: rec.Profile) -> None:
        """Set ``actor``'s profile fields (all None: no profile) and its search row."""
        old = self._actor_text(actor)
        pinned = p.pinned
        self.db.execute(
            "UPDATE actors SET profile_cid = ?, display_name = ?, description = ?, avatar = ?, "
            "banner = ?, pinned_uri = ?, pinned_cid = ?, profile_created = ? WHERE id = ?",
            (
                None if cid is None else cid.raw,
                p.display_name,
                p.description,
                None if p.avatar is None else p.avatar.raw,
                None if p.banner is None else p.banner.raw,
                None if pinned is None else f"at://{pinned.did}/{rec.POST}/{pinned.rkey}",
                None if pinned is None else pinned.cid.raw,
                p.created_at,
                actor,
            ),
        )
        self._reindex_actor(actor, old)

    def _actor_text(self, actor: int) -> tuple[str, str, str]:
        row = self.db.one(
            "SELECT handle, display_name, description FROM actors WHERE id = ?", (actor,)
        )
        assert row is not None
        return (row[0] or "", row[1] or "", row[2] or "")

    def _reindex_actor(self, actor: int, old: tuple[str, str, str]) -> None:
        new = self._actor_text(actor)
        if new == old:
            return
        if self.pg:
            self.db.execute(
                "UPDATE actors SET search = to_tsvector('simple', ?) WHERE id = ?",
                (" ".join((new[0], new[0].replace(".", " "), new[1], new[2])), actor),
            )
            return
        if any(old):
            self.db.execute(
                "INSERT INTO actors_fts (actors_fts, rowid, handle, display_name, description) "
                "VALUES ('delete', ?, ?, ?, ?)",
                (actor, *old),
            )
        self.db.execute(
            "INSERT INTO actors_fts (rowid, handle, display_name, description) VALUES (?, ?, ?, ?)",
            (actor, *new),
        )

    # -- notifications ---------------------------------------------------------------
    def _notify(self, w: _Write, recipient: str, reason: str, subject_rkey: str | None) -> None:
        self.db.execute(
            "INSERT INTO notifications (recipient, author, reason, rkey, cid, subject_rkey, "
            "record, indexed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                self.store.actor_id(recipient),
                w.actor,
                _REASON[reason],
                w.rkey,
                w.cid.raw,
                subject_rkey,
                w.block,
                w.now,
            ),
        )

    def _unnotify(self, author: int, rkey: str, reason: str) -> None:
        self.db.execute(
            "DELETE FROM notifications WHERE author = ? AND rkey = ? AND reason = ?",
            (author, rkey, _REASON[reason]),
        )


def record_value(block: bytes) -> Any:
    """A stored record's decoded value."""
    return cbor.decode(block)
