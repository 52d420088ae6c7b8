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
from plaza.services.appview.compact import (
    DERIVED,
    follow_block,
    note_record,
    pack_post,
    subject_block,
)
from plaza.services.appview.records import PostRef, read_record
from plaza.services.appview.schema import NOTIFICATION_REASONS
from plaza.services.appview.store import AppviewStore, now_us

_REASON = {name: i for i, name in enumerate(NOTIFICATION_REASONS)}
_POST_REASONS = (_REASON["mention"], _REASON["reply"], _REASON["quote"])
_COUNTED = (  # a new post's counts, from what the index already holds (in its INSERT)
    "(SELECT COUNT(*) FROM likes WHERE subject_author = ? AND subject_rkey = ?), "
    "(SELECT COUNT(*) FROM reposts WHERE subject_author = ? AND subject_rkey = ?), "
    "(SELECT COUNT(*) FROM posts WHERE parent_author = ? AND parent_rkey = ?), "
    "(SELECT COUNT(*) FROM posts WHERE quote_author = ? AND quote_rkey = ?)"
)


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
    value: Any = None


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
            value = cbor.decode_fast(block)
            facts = read_record(collection, rkey, value)
        except AtprotoError:
            self.skipped += 1
            return False
        if facts is None:
            return False
        actor = self.store.actor_id(did)
        now = self.clock()
        w = _Write(actor, did, collection, rkey, cid, block, now, value)
        if isinstance(facts, rec.Post):
            self._put_post(w, facts)
        elif isinstance(facts, rec.Subject):
            # A create is one INSERT; a record already held (an update) is replaced.
            if not self._put_subject(w, facts):
                self._delete_subject(actor, collection, rkey)
                self._put_subject(w, facts)
        elif isinstance(facts, rec.Edge):
            if not self._put_edge(w, facts):
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
        actor, rkey, now = w.actor, w.rkey, w.now
        sort_at = min(p.created_us, now) if p.created_us > 0 else now
        parent, quote = self._ref(p.parent), self._ref(p.quote)
        refs = (*parent, *self._ref(p.root), *quote)
        if (
            self.pg
            and (actor, rkey) not in (parent, quote)
            and (parent != quote or quote[0] is None)
            and self._create_post_pg(w, p, sort_at, refs)
        ):
            self._notify_post(w, p)
            return
        # A create is one INSERT (its counts read from the index in it); a post already
        # held (an update) keeps its counts.
        post_id = self._insert_post(w, p, sort_at, refs, None, now)
        created = post_id is not None
        if post_id is None:
            kept = self._delete_post(actor, rkey, update=True)
            assert kept is not None
            post_id = self._insert_post(w, p, sort_at, refs, kept[:4], kept[4])
        if not self.pg:
            self.db.execute("INSERT INTO posts_fts (rowid, text) VALUES (?, ?)", (post_id, p.text))
        if created:
            self.db.execute("UPDATE actors SET posts = posts + 1 WHERE id = ?", (actor,))
        if parent[0] is not None:
            self._bump_post(parent, "replies", 1)
        if quote[0] is not None:
            self._bump_post(quote, "quotes", 1)
        self._notify_post(w, p)

    def _notify_post(self, w: _Write, p: rec.Post) -> None:
        """The reply, quote and mention notifications of a post (one per account)."""
        notified = {w.did}
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

    def _create_post_pg(
        self, w: _Write, p: rec.Post, sort_at: int, refs: tuple[int | str | None, ...]
    ) -> bool:
        """Create a post on PostgreSQL in one round trip: the row with its counts read
        from the index, its search vector, the author's post count and the replied-to
        and quoted posts' counts, all in one data-modifying ``WITH``, every change
        conditional on the row being new. False (nothing done) if the post is held."""
        key = (w.actor, w.rkey)
        sql = (
            "WITH ins AS (INSERT INTO posts (author, rkey, record, text, sort_at, indexed_at, "
            "parent_author, parent_rkey, root_author, root_rkey, quote_author, quote_rkey, "
            "embed, likes, reposts, replies, quotes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, "
            "?, ?, ?, ?, "
            "(SELECT COUNT(*) FROM likes WHERE subject_author = ? AND subject_rkey = ?), "
            "(SELECT COUNT(*) FROM reposts WHERE subject_author = ? AND subject_rkey = ?), "
            "(SELECT COUNT(*) FROM posts WHERE parent_author = ? AND parent_rkey = ?), "
            "(SELECT COUNT(*) FROM posts WHERE quote_author = ? AND quote_rkey = ?)) "
            "ON CONFLICT DO NOTHING RETURNING id), "
            "author AS (UPDATE actors SET posts = posts + 1 WHERE id = ? "
            "AND EXISTS (SELECT 1 FROM ins))"
        )
        stored = pack_post(w.block, w.value, sort_at)
        params: list[object] = [w.actor, w.rkey, stored, p.text, sort_at, w.now, *refs, p.embed]
        params += [*key, *key, *key, *key, w.actor]
        for column, ref in (("replies", refs[0:2]), ("quotes", refs[4:6])):
            if ref[0] is not None:
                sql += (
                    f", {column} AS (UPDATE posts SET {column} = {column} + 1 "
                    "WHERE author = ? AND rkey = ? AND EXISTS (SELECT 1 FROM ins))"
                )
                params += ref
        return bool(self.db.scalar(f"{sql} SELECT COUNT(*) FROM ins", params) == 1)

    def _insert_post(  # noqa: PLR0917 - the row's parts
        self,
        w: _Write,
        p: rec.Post,
        sort_at: int,
        refs: tuple[int | str | None, ...],
        counts: tuple[int, ...] | None,
        indexed_at: int,
    ) -> int | None:
        """Insert the post's row with ``counts`` (None: counted from the index in the
        same statement); its id, or None if the post is already held."""
        row = (
            w.actor,
            w.rkey,
            pack_post(w.block, w.value, sort_at),
            p.text,
            sort_at,
            indexed_at,
            *refs,
            p.embed,
        )
        if counts is None:
            key = (w.actor, w.rkey)
            values, params = _COUNTED, (*row, *key, *key, *key, *key)
        else:
            values, params = "?, ?, ?, ?", (*row, *counts)
        got = self.db.scalar(
            "INSERT INTO posts (author, rkey, record, text, sort_at, indexed_at, "
            "parent_author, parent_rkey, root_author, root_rkey, quote_author, quote_rkey, "
            "embed, likes, reposts, replies, quotes) "
            f"VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, {values}) "
            "ON CONFLICT DO NOTHING RETURNING id",
            params,
        )
        return None if got is None else int(got)

    def _ref(self, ref: PostRef | None) -> tuple[int | None, str | None]:
        if ref is None:
            return None, None
        return self.store.actor_id(ref.did), ref.rkey

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
            "SELECT id, text, parent_author, parent_rkey, quote_author, quote_rkey, likes, "
            "reposts, replies, quotes, indexed_at FROM posts WHERE author = ? AND rkey = ?",
            (actor, rkey),
        )
        if row is None:
            return None
        post_id, text = row[0], row[1]
        if not self.pg:
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
    def _put_subject(self, w: _Write, s: rec.Subject) -> bool:
        """Index a like or repost; False (nothing done) if that record is already held.

        The row, the post's count and the notification are three statements; on
        PostgreSQL, where each is a round trip to the server, they go as one (a
        data-modifying ``WITH``), every part conditional on the row being new.
        """
        actor, did, collection, rkey, now = w.actor, w.did, w.collection, w.rkey, w.now
        author, subject_rkey = self._ref(s.subject)
        created = s.created_us or now
        like = collection == rec.LIKE
        table, reason = ("likes", "like") if like else ("reposts", "repost")
        cols = "actor, rkey, subject_author, subject_rkey, subject_cid, created"
        row: tuple[object, ...] = (actor, rkey, author, subject_rkey, s.subject.cid.raw, created)
        if not like:
            cols += ", sort_at"
            row += (min(created, now),)
        marks = ", ".join("?" * len(row))
        notify = s.subject.did != did
        stored = note_record(
            w.block,
            subject_block(collection, s.subject.did, s.subject.rkey, s.subject.cid.raw, created),
        )
        if self.pg:
            note = (author, actor, _REASON[reason], rkey, None, stored, now) if notify else ()
            sql = (
                f"WITH ins AS (INSERT INTO {table} ({cols}) VALUES ({marks}) "
                "ON CONFLICT DO NOTHING RETURNING 1), "
                f"bump AS (UPDATE posts SET {table} = {table} + 1 WHERE author = ? AND rkey = ? "
                "AND EXISTS (SELECT 1 FROM ins))"
            )
            if notify:
                sql += (
                    ", note AS (INSERT INTO notifications (recipient, author, reason, rkey, "
                    "subject_rkey, record, indexed_at) SELECT ?, ?, ?, ?, ?, ?, ? FROM ins)"
                )
            inserted = self.db.scalar(
                f"{sql} SELECT COUNT(*) FROM ins", (*row, author, subject_rkey, *note)
            )
            return bool(inserted)
        if not self.db.execute(
            f"INSERT INTO {table} ({cols}) VALUES ({marks}) ON CONFLICT DO NOTHING", row
        ):
            return False
        self._bump_post((author, subject_rkey), table, 1)
        if notify:
            self._notify(w, s.subject.did, reason, None, stored)  # the row has the rkey
        return True

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
    def _put_edge(self, w: _Write, e: rec.Edge) -> bool:
        """Index a follow, block or list item; False (nothing done) if already held."""
        actor, did, collection, rkey, now = w.actor, w.did, w.collection, w.rkey, w.now
        subject = self.store.actor_id(e.subject)
        created = e.created_us or now
        if collection == rec.LISTITEM:
            if e.list_owner != did or e.list_rkey is None:
                return True  # an item of someone else's list means nothing
            if not self.db.execute(
                "INSERT INTO list_items (actor, rkey, list_rkey, subject, created) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (actor, rkey, e.list_rkey, subject, created),
            ):
                return False
            self.db.execute(
                "UPDATE lists SET items = items + 1 WHERE actor = ? AND rkey = ?",
                (actor, e.list_rkey),
            )
            return True
        table = "follows" if collection == rec.FOLLOW else "blocks"
        if not self.db.execute(
            f"INSERT INTO {table} (actor, rkey, subject, created) VALUES (?, ?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            (actor, rkey, subject, created),
        ):
            return False
        if collection == rec.FOLLOW:
            # One statement for both counts: the follower's follows, the subject's followers.
            self.db.execute(
                "UPDATE actors SET follows = follows + (CASE WHEN id = ? THEN 1 ELSE 0 END), "
                "followers = followers + (CASE WHEN id = ? THEN 1 ELSE 0 END) WHERE id IN (?, ?)",
                (actor, subject, actor, subject),
            )
            if e.subject != did:
                stored = note_record(w.block, follow_block(e.subject, created))
                self._notify(w, e.subject, "follow", None, stored)
        return True

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
    def _notify(
        self,
        w: _Write,
        recipient: str,
        reason: str,
        subject_rkey: str | None,
        stored: bytes = DERIVED,
    ) -> None:
        """Record a notification; ``stored`` is its record as kept (nothing for a post's,
        which is the post's own; see :mod:`plaza.services.appview.compact`)."""
        self.db.execute(
            "INSERT INTO notifications (recipient, author, reason, rkey, subject_rkey, record, "
            "indexed_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                self.store.actor_id(recipient),
                w.actor,
                _REASON[reason],
                w.rkey,
                subject_rkey,
                stored,
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
