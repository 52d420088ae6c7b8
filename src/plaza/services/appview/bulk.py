"""Bulk backfill: many repositories the index does not hold yet, written table by table.

:class:`BulkLoader` is the fast path of a first backfill (a new app view catching up
with a network). Records are checked against their Lexicons and turned into rows as
they are added (:meth:`BulkLoader.add_repo`, or :meth:`BulkLoader.add_records` for
records verified elsewhere); :meth:`BulkLoader.flush` then writes every buffered row in
one transaction, each table at once — ``COPY`` on PostgreSQL, one prepared ``INSERT``
over all rows on SQLite — with the accounts' ids assigned in one pass, the search
indexes filled, notifications written and the repositories marked current. Counts are
recomputed from the rows, set-wise, by :meth:`BulkLoader.recount` (call it once after
the last flush; :meth:`flush` does it unless told not to).

Only a repository the index holds nothing of belongs here: one already indexed is
handed to :func:`~plaza.services.appview.backfill.apply_repo`, which diffs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from plaza.atproto import cbor
from plaza.atproto.cid import CID
from plaza.atproto.errors import AtprotoError
from plaza.atproto.repo_verify import VerifiedRepo
from plaza.services.appview import records as rec
from plaza.services.appview.backfill import apply_repo
from plaza.services.appview.compact import (
    DERIVED,
    follow_block,
    note_record,
    pack_post,
    subject_block,
)
from plaza.services.appview.indexer import Indexer
from plaza.services.appview.schema import NOTIFICATION_REASONS, REPO_CURRENT, REPO_UNSEEN
from plaza.services.appview.store import now_us

_REASON: Final = {name: i for i, name in enumerate(NOTIFICATION_REASONS)}
_CHUNK: Final = 900
_GROUP: Final = 500  # repositories whose states are read in one query

_POST_COLS: Final = (
    "author",
    "rkey",
    "record",
    "text",
    "sort_at",
    "indexed_at",
    "parent_author",
    "parent_rkey",
    "root_author",
    "root_rkey",
    "quote_author",
    "quote_rkey",
    "embed",
)


@dataclass
class _Buffer:
    """Rows with DIDs where ids go; resolved at flush."""

    posts: list[tuple[Any, ...]] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    likes: list[tuple[Any, ...]] = field(default_factory=list)
    reposts: list[tuple[Any, ...]] = field(default_factory=list)
    follows: list[tuple[Any, ...]] = field(default_factory=list)
    blocks: list[tuple[Any, ...]] = field(default_factory=list)
    lists: list[tuple[Any, ...]] = field(default_factory=list)
    items: list[tuple[Any, ...]] = field(default_factory=list)
    generators: list[tuple[Any, ...]] = field(default_factory=list)
    profiles: list[tuple[Any, ...]] = field(default_factory=list)
    notes: list[tuple[Any, ...]] = field(default_factory=list)
    repos: list[tuple[str, str | None]] = field(default_factory=list)
    dids: set[str] = field(default_factory=set)
    records: int = 0


class BulkLoader:
    """Buffers repositories' rows and writes them table by table (see the module doc)."""

    def __init__(self, indexer: Indexer, *, clock: Callable[[], int] = now_us) -> None:
        self.indexer = indexer
        self.store = indexer.store
        self.db = indexer.db
        self.clock = clock
        self.skipped = 0
        self._buf = _Buffer()
        self._pending: list[VerifiedRepo] = []
        self._pending_records = 0

    def add_repo(self, repo: VerifiedRepo) -> None:
        """Buffer a verified repository (one already indexed is diffed in instead, by
        :func:`~plaza.services.appview.backfill.apply_repo`, before the next write).
        Repositories wait in groups of :data:`_GROUP` so that their accounts' states are
        read in one query per group, not one per repository."""
        self._pending.append(repo)
        self._pending_records += len(repo.records)
        if len(self._pending) >= _GROUP:
            self._settle()

    def _settle(self) -> None:
        """Sort the waiting repositories: new ones buffered, held ones diffed in."""
        pending, self._pending, self._pending_records = self._pending, [], 0
        states: dict[str, int] = {}
        dids = sorted({repo.did for repo in pending})
        for i in range(0, len(dids), _CHUNK):
            chunk = dids[i : i + _CHUNK]
            marks = ",".join("?" * len(chunk))
            for did, state in self.db.query(
                f"SELECT did, repo_state FROM actors WHERE did IN ({marks})", chunk
            ):
                states[str(did)] = int(state)
        for repo in pending:
            if states.get(repo.did, REPO_UNSEEN) != REPO_UNSEEN:
                apply_repo(self.indexer, repo)
                continue
            records = []
            for path, cid in repo.records.items():
                collection, _, rkey = path.partition("/")
                records.append((collection, rkey, cid, repo.blocks[cid]))
            self.add_records(repo.did, records, rev=repo.rev)

    def add_records(
        self, did: str, records: Iterable[tuple[str, str, CID, bytes]], *, rev: str | None
    ) -> None:
        """Buffer one repository's records ``(collection, rkey, cid, block)``, already
        verified; records outside the indexed collections or failing their Lexicon are
        skipped."""
        b = self._buf
        b.dids.add(did)
        b.repos.append((did, rev))
        now = self.clock()
        for collection, rkey, cid, block in records:
            if collection not in rec.INDEXED:
                continue
            try:
                value = cbor.decode_fast(block)
                facts = rec.read_record(collection, rkey, value)
            except AtprotoError:
                self.skipped += 1
                continue
            if facts is None:
                continue
            b.records += 1
            self._add(did, collection, rkey, cid, block, value, facts, now)

    def _add(  # noqa: PLR0917 - one record's parts, as add_records holds them
        self,
        did: str,
        collection: str,
        rkey: str,
        cid: CID,
        block: bytes,
        value: Any,
        facts: rec.Facts,
        now: int,
    ) -> None:
        b = self._buf
        if isinstance(facts, rec.Post):
            refs: list[str | None] = []
            for ref in (facts.parent, facts.root, facts.quote):
                if ref is not None:
                    b.dids.add(ref.did)
                refs += [None, None] if ref is None else [ref.did, ref.rkey]
            sort_at = min(facts.created_us, now) if facts.created_us > 0 else now
            stored = pack_post(block, value, sort_at)
            b.posts.append((did, rkey, stored, facts.text, sort_at, now, *refs, facts.embed))
            b.texts.append(facts.text)
            told = {did}
            for ref, reason in (
                (facts.parent, "reply"),
                (facts.root, "reply"),
                (facts.quote, "quote"),
            ):
                if ref is not None and ref.did not in told:
                    told.add(ref.did)
                    b.notes.append((ref.did, did, _REASON[reason], rkey, ref.rkey, DERIVED, now))
            for mentioned in facts.mentions:
                if mentioned not in told:
                    told.add(mentioned)
                    b.dids.add(mentioned)
                    b.notes.append((mentioned, did, _REASON["mention"], rkey, None, DERIVED, now))
        elif isinstance(facts, rec.Subject):
            s = facts.subject
            b.dids.add(s.did)
            created = facts.created_us or now
            if collection == rec.LIKE:
                b.likes.append((did, rkey, s.did, s.rkey, s.cid.raw, created))
            else:
                b.reposts.append((did, rkey, s.did, s.rkey, s.cid.raw, created, min(created, now)))
            if s.did != did:
                reason = "like" if collection == rec.LIKE else "repost"
                kept = note_record(
                    block, subject_block(collection, s.did, s.rkey, s.cid.raw, created)
                )
                b.notes.append((s.did, did, _REASON[reason], rkey, None, kept, now))
        elif isinstance(facts, rec.Edge):
            b.dids.add(facts.subject)
            created = facts.created_us or now
            if collection == rec.LISTITEM:
                if facts.list_owner == did and facts.list_rkey is not None:
                    b.items.append((did, rkey, facts.list_rkey, facts.subject, created))
            elif collection == rec.FOLLOW:
                b.follows.append((did, rkey, facts.subject, created))
                if facts.subject != did:
                    kept = note_record(block, follow_block(facts.subject, created))
                    b.notes.append((facts.subject, did, _REASON["follow"], rkey, None, kept, now))
            else:
                b.blocks.append((did, rkey, facts.subject, created))
        elif isinstance(facts, rec.Profile):
            if rkey == "self":
                b.profiles.append((did, cid, facts))
        elif collection == rec.LIST:
            b.lists.append((did, rkey, cid.raw, block, now))
        else:
            b.generators.append((did, rkey, cid.raw, block, now))

    @property
    def buffered(self) -> int:
        """Records buffered since the last flush (those of repositories still waiting
        for their state counted whole)."""
        return self._buf.records + self._pending_records

    # -- writing ---------------------------------------------------------------------
    def flush(self, *, recount: bool = True) -> int:
        """Write every buffered row in one transaction; return the records written."""
        self._settle()
        b, self._buf = self._buf, _Buffer()
        with self.store.transaction():
            ids = self._assign(b.dids)

            def sub(rows: list[tuple[Any, ...]], *cols: int) -> list[tuple[Any, ...]]:
                out = []
                for row in rows:
                    r = list(row)
                    for c in cols:
                        if r[c] is not None:
                            r[c] = ids[r[c]]
                    out.append(tuple(r))
                return out

            self._posts(sub(b.posts, 0, 6, 8, 10), b.texts)
            copy = self.db.copy_rows
            copy(
                "likes",
                ("actor", "rkey", "subject_author", "subject_rkey", "subject_cid", "created"),
                sub(b.likes, 0, 2),
            )
            copy(
                "reposts",
                (
                    "actor",
                    "rkey",
                    "subject_author",
                    "subject_rkey",
                    "subject_cid",
                    "created",
                    "sort_at",
                ),
                sub(b.reposts, 0, 2),
            )
            copy("follows", ("actor", "rkey", "subject", "created"), sub(b.follows, 0, 2))
            copy("blocks", ("actor", "rkey", "subject", "created"), sub(b.blocks, 0, 2))
            copy("lists", ("actor", "rkey", "cid", "record", "indexed_at"), sub(b.lists, 0))
            copy(
                "list_items",
                ("actor", "rkey", "list_rkey", "subject", "created"),
                sub(b.items, 0, 3),
            )
            copy(
                "feed_generators",
                ("actor", "rkey", "cid", "record", "indexed_at"),
                sub(b.generators, 0),
            )
            copy(
                "notifications",
                (
                    "recipient",
                    "author",
                    "reason",
                    "rkey",
                    "subject_rkey",
                    "record",
                    "indexed_at",
                ),
                sub(b.notes, 0, 1),
            )
            for did, cid, profile in b.profiles:
                self.indexer.put_profile(ids[did], cid, profile)
            self.db.executemany(
                "UPDATE actors SET rev = ?, repo_state = ? WHERE id = ?",
                [(rev, REPO_CURRENT, ids[did]) for did, rev in b.repos],
            )
            if recount:
                self.recount()
        return b.records

    def _assign(self, dids: set[str]) -> dict[str, int]:
        """Ids of every DID, assigning the new ones in one pass."""
        ids: dict[str, int] = {}
        unknown = []
        for did in dids:
            got = self.store.find_cached(did)
            if got is None:
                unknown.append(did)
            else:
                ids[did] = got
        known = self.store.lookup_many(unknown)
        ids.update(known)
        fresh = [d for d in unknown if d not in known]
        now = self.clock()
        self.db.copy_rows(
            "actors", ("did", "indexed_at", "repo_state"), [(d, now, REPO_UNSEEN) for d in fresh]
        )
        ids.update(self.store.lookup_many(fresh))
        return ids

    def _posts(self, rows: list[tuple[Any, ...]], texts: list[str]) -> None:
        if not rows:
            return
        if self.db.dialect == "postgresql":
            self.db.execute(
                "CREATE TEMP TABLE IF NOT EXISTS bulk_posts (author BIGINT, rkey TEXT, "
                "record BYTEA, text TEXT, sort_at BIGINT, indexed_at BIGINT, "
                "parent_author BIGINT, parent_rkey TEXT, root_author BIGINT, root_rkey TEXT, "
                "quote_author BIGINT, quote_rkey TEXT, embed BIGINT) ON COMMIT DELETE ROWS"
            )
            self.db.copy_rows("bulk_posts", _POST_COLS, rows)
            cols = ", ".join(_POST_COLS)
            self.db.execute(f"INSERT INTO posts ({cols}) SELECT {cols} FROM bulk_posts")
            return
        # SQLite: ids handed out here (the transaction holds the write lock), so the
        # search rows can name them without reading each post back.
        first = int(self.db.scalar("SELECT COALESCE(MAX(id), 0) FROM posts")) + 1
        ids = range(first, first + len(rows))
        self.db.copy_rows(
            "posts", ("id", *_POST_COLS), [(i, *r) for i, r in zip(ids, rows, strict=True)]
        )
        self.db.copy_rows("posts_fts", ("rowid", "text"), list(zip(ids, texts, strict=True)))

    def recount(self) -> None:
        """Recompute every post's and account's counts from the rows (set-wise)."""
        db = self.db
        db.execute(
            "UPDATE lists SET items = c.n FROM (SELECT actor AS a, list_rkey AS r, COUNT(*) AS n "
            "FROM list_items GROUP BY actor, list_rkey) AS c "
            "WHERE lists.actor = c.a AND lists.rkey = c.r AND lists.items != c.n"
        )
        for column, table, a, r in (
            ("likes", "likes", "subject_author", "subject_rkey"),
            ("reposts", "reposts", "subject_author", "subject_rkey"),
            ("replies", "posts", "parent_author", "parent_rkey"),
            ("quotes", "posts", "quote_author", "quote_rkey"),
        ):
            db.execute(
                f"UPDATE posts SET {column} = c.n FROM (SELECT {a} AS a, {r} AS r, COUNT(*) AS n "
                f"FROM {table} WHERE {a} IS NOT NULL GROUP BY {a}, {r}) AS c "
                f"WHERE posts.author = c.a AND posts.rkey = c.r AND posts.{column} != c.n"
            )
        for column, table, key in (
            ("followers", "follows", "subject"),
            ("follows", "follows", "actor"),
            ("posts", "posts", "author"),
        ):
            db.execute(
                f"UPDATE actors SET {column} = c.n FROM (SELECT {key} AS k, COUNT(*) AS n "
                f"FROM {table} GROUP BY {key}) AS c "
                f"WHERE actors.id = c.k AND actors.{column} != c.n"
            )
