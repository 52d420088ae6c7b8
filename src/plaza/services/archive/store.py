"""The archive's store, over :mod:`plaza.db` (SQLite by default, PostgreSQL by URL).

Tables (made by the steps of :data:`plaza.services.archive.schema.MIGRATIONS`):

- ``archive_repo``: one row per DID the archive knows, with a small integer id the
  other tables use, the archived head (commit CID, rev, data root; NULL until the
  first verified base), the account's status from ``#account`` events, and whether the
  repository must be fetched again (``resync``, with the attempt count and the time of
  the next try);
- ``archive_block``: the blocks of each current repository, with the rev at which each
  arrived (``getRepo?since=`` sends those newer than a rev);
- ``archive_record``: each repository's record paths and CIDs (the record index: a
  record block leaves only when no path links it);
- ``archive_blob_ref``: which record path links which blob, with the rev it arrived in;
- ``archive_blob``: the blobs each DID should hold: ``wanted`` (to fetch, with its
  retry schedule), ``held`` (bytes on disk, with the MIME type and size) or
  ``refused`` (over the size limit);
- ``archive_cursor``: the firehose cursor per source.

Every change an event makes lands in one transaction together with the cursor moving
past that event (``seq``), so a restart resumes exactly after the last event whose
effect is stored. A change that refers to a head other than the archived one (a
concurrent resync moved it) is refused with :class:`StaleHeadError` and changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from plaza.atproto.cid import CID
from plaza.db import Database, Row, connect, migrate
from plaza.errors import ConflictError
from plaza.services.archive.cache import BlockCache
from plaza.services.archive.changes import CommitChange, RepoBase
from plaza.services.archive.schema import MIGRATIONS

WANTED: Final = "wanted"
HELD: Final = "held"
REFUSED: Final = "refused"
PAGE: Final = 500


class StaleHeadError(ConflictError):
    """The archived head is not the one the change was computed against."""


@dataclass(frozen=True)
class RepoHead:
    """An archived DID: its head (None until a base is stored) and status."""

    id: int
    did: str
    commit_cid: CID | None
    rev: str | None
    data: CID | None
    active: bool
    status: str | None
    resync: bool


@dataclass(frozen=True)
class BlobRow:
    did: str
    cid: CID
    state: str
    mime: str | None
    size: int | None
    attempts: int


@dataclass(frozen=True)
class StoreCounts:
    repos: int
    records: int
    blocks: int
    block_bytes: int
    blobs: int
    blob_bytes: int
    blobs_wanted: int
    resyncs_pending: int


def _cid(raw: Any) -> CID | None:
    return None if raw is None else CID(bytes(raw))


_HEAD_SQL: Final = (
    "SELECT id, did, commit_cid, rev, data_cid, active, status, resync FROM archive_repo "
)


def _head(row: Row) -> RepoHead:
    return RepoHead(
        id=int(row[0]),
        did=str(row[1]),
        commit_cid=_cid(row[2]),
        rev=None if row[3] is None else str(row[3]),
        data=_cid(row[4]),
        active=bool(row[5]),
        status=None if row[6] is None else str(row[6]),
        resync=bool(row[7]),
    )


class ArchiveStore:
    """Every archived repository and blob record (see the module docstring)."""

    def __init__(self, db: Database, source: str, *, cache_bytes: int = 32 * 1024 * 1024) -> None:
        """``source`` names the firehose whose cursor this store keeps. Only this object
        may write the archive's tables (its block cache assumes so)."""
        self.db = db
        self.source = source
        self._cache = BlockCache(cache_bytes)
        migrate(db, MIGRATIONS)

    @classmethod
    def open(cls, url: str | Path, source: str) -> ArchiveStore:
        return cls(connect(url), source)

    def close(self) -> None:
        self.db.close()

    # -- the cursor --------------------------------------------------------------------
    def cursor(self) -> int | None:
        value = self.db.scalar("SELECT seq FROM archive_cursor WHERE source = ?", (self.source,))
        return None if value is None else int(value)

    def _advance(self, seq: int | None) -> None:
        if seq is None:
            return
        self.db.execute(
            "INSERT INTO archive_cursor (source, seq) VALUES (?, ?) ON CONFLICT (source) "
            "DO UPDATE SET seq = excluded.seq",
            (self.source, seq),
        )

    def advance(self, seq: int) -> None:
        """Move the cursor past an event that changes nothing here."""
        with self.db.transaction():
            self._advance(seq)

    # -- repositories ------------------------------------------------------------------
    def head(self, did: str) -> RepoHead | None:
        row = self.db.one(_HEAD_SQL + "WHERE did = ?", (did,))
        return None if row is None else _head(row)

    def _repo_id(self, did: str) -> int:
        found = self.db.scalar("SELECT id FROM archive_repo WHERE did = ?", (did,))
        if found is not None:
            return int(found)
        self.db.execute("INSERT INTO archive_repo (did) VALUES (?)", (did,))
        return int(self.db.scalar("SELECT id FROM archive_repo WHERE did = ?", (did,)))

    def _at_head(self, did: str, expected: CID | None) -> int:
        """The DID's repository id (a row is made for a new DID), once its archived head
        is checked to be ``expected`` (:class:`StaleHeadError` otherwise)."""
        row = self.db.one("SELECT id, commit_cid FROM archive_repo WHERE did = ?", (did,))
        repo = self._repo_id(did) if row is None else int(row[0])
        if (None if row is None else _cid(row[1])) != expected:
            raise StaleHeadError("the archived head moved; the change no longer applies")
        return repo

    def block(self, repo: int, cid: CID) -> bytes | None:
        """The archived block ``cid`` of repository ``repo`` (an id of :class:`RepoHead`)."""
        key = (repo, cid.raw)
        data = self._cache.get(key)
        if data is None:
            value = self.db.scalar("SELECT data FROM archive_block WHERE repo = ? AND cid = ?", key)
            if value is None:
                return None
            data = bytes(value)
            self._cache.put(key, data)
        return data

    def blocks_among(self, repo: int, cids: list[CID]) -> set[CID]:
        """Which of ``cids`` repository ``repo`` holds."""
        out: set[CID] = set()
        for i in range(0, len(cids), 200):
            chunk = [c.raw for c in cids[i : i + 200]]
            marks = ", ".join("?" * len(chunk))
            rows = self.db.query(
                f"SELECT cid FROM archive_block WHERE repo = ? AND cid IN ({marks})",
                (repo, *chunk),
            )
            out.update(CID(bytes(r[0])) for r in rows)
        return out

    def apply_commit(self, change: CommitChange, prev_commit: CID, seq: int | None) -> list[CID]:
        """Land a verified commit on the head ``prev_commit`` and move the cursor to
        ``seq``, in one transaction. Returns the blob CIDs no DID holds any more (their
        files may go)."""
        with self.db.transaction():
            repo = self._at_head(change.did, prev_commit)
            self._add_blocks(repo, change.rev, change.new_blocks.items())
            removed = [c.raw for c in change.removed_nodes if c not in change.new_blocks]
            if prev_commit != change.commit_cid:
                removed.append(prev_commit.raw)
            self._drop_blocks(repo, removed)
            records = change.records.items()
            self.db.executemany(
                "DELETE FROM archive_record WHERE repo = ? AND path = ?",
                [(repo, path) for path, cid in records if cid is None],
            )
            self.db.executemany(
                "INSERT INTO archive_record (repo, path, cid) VALUES (?, ?, ?) "
                "ON CONFLICT (repo, path) DO UPDATE SET cid = excluded.cid",
                [(repo, path, cid.raw) for path, cid in records if cid is not None],
            )
            unlinked = [
                c.raw
                for c in change.dropped_records
                if self.db.one(
                    "SELECT 1 FROM archive_record WHERE repo = ? AND cid = ?", (repo, c.raw)
                )
                is None
            ]
            self._drop_blocks(repo, unlinked)
            orphans = self._set_blob_refs(repo, change.rev, change.blob_refs)
            self._set_head(repo, change.commit_cid, change.rev, change.data)
            self._advance(seq)
        return orphans

    def rebase(self, base: RepoBase, expected: CID | None, seq: int | None = None) -> list[CID]:
        """Make a verified whole repository the DID's archived copy, if the archived head
        is still ``expected``: blocks the archive holds already keep the rev they came
        with, the others get the repository's rev. Clears the DID's resync. Returns the
        blob CIDs no DID holds any more."""
        with self.db.transaction():
            repo = self._at_head(base.did, expected)
            have = {
                bytes(r[0])
                for r in self.db.query("SELECT cid FROM archive_block WHERE repo = ?", (repo,))
            }
            want = {c.raw for c in base.blocks}
            self._drop_blocks(repo, sorted(have - want))
            self._add_blocks(
                repo, base.rev, [(c, b) for c, b in base.blocks.items() if c.raw not in have]
            )
            self.db.execute("DELETE FROM archive_record WHERE repo = ?", (repo,))
            self.db.executemany(
                "INSERT INTO archive_record (repo, path, cid) VALUES (?, ?, ?)",
                [(repo, path, cid.raw) for path, cid in base.records.items()],
            )
            old_paths = {
                str(r[0])
                for r in self.db.query(
                    "SELECT DISTINCT path FROM archive_blob_ref WHERE repo = ?", (repo,)
                )
            }
            refs: dict[str, list[CID]] = {p: [] for p in old_paths - set(base.blob_refs)}
            refs.update(base.blob_refs)
            orphans = self._set_blob_refs(repo, base.rev, refs, keep_existing=True)
            self._set_head(repo, base.commit_cid, base.rev, base.data)
            self.db.execute(
                "UPDATE archive_repo SET resync = 0, attempts = 0, next_try = 0, "
                "last_error = NULL WHERE id = ?",
                (repo,),
            )
            self._advance(seq)
        return orphans

    def move_head(
        self, did: str, expected: CID, commit_cid: CID, commit: bytes, *, rev: str, seq: int | None
    ) -> None:
        """A ``#sync`` over the archived data: swap the commit block, keep the rest."""
        with self.db.transaction():
            repo = self._at_head(did, expected)
            self._add_blocks(repo, rev, [(commit_cid, commit)])
            if expected != commit_cid:
                self._drop_blocks(repo, [expected.raw])
            self.db.execute(
                "UPDATE archive_repo SET commit_cid = ?, rev = ? WHERE id = ?",
                (commit_cid.raw, rev, repo),
            )
            self._advance(seq)

    def want_resync(self, did: str, seq: int | None, *, now: float = 0.0) -> None:
        """Mark the DID for a fetch of its whole repository (and move the cursor)."""
        with self.db.transaction():
            repo = self._repo_id(did)
            self.db.execute(
                "UPDATE archive_repo SET resync = 1, next_try = CASE WHEN resync = 1 "
                "THEN next_try ELSE ? END WHERE id = ?",
                (now, repo),
            )
            self._advance(seq)

    def resync_failed(self, did: str, error: str, next_try: float) -> None:
        with self.db.transaction():
            self.db.execute(
                "UPDATE archive_repo SET attempts = attempts + 1, next_try = ?, last_error = ? "
                "WHERE did = ?",
                (next_try, error[:500], did),
            )

    def resyncs_due(self, now: float, limit: int) -> list[tuple[str, int]]:
        """``(did, attempts)`` of the DIDs due for a fetch, the longest waiting first."""
        rows = self.db.query(
            "SELECT did, attempts FROM archive_repo WHERE resync = 1 AND next_try <= ? "
            "ORDER BY next_try, did LIMIT ?",
            (now, limit),
        )
        return [(str(r[0]), int(r[1])) for r in rows]

    def next_resync(self) -> float | None:
        value = self.db.scalar("SELECT MIN(next_try) FROM archive_repo WHERE resync = 1")
        return None if value is None else float(value)

    def set_account(self, did: str, active: bool, status: str | None, seq: int | None) -> None:
        with self.db.transaction():
            repo = self._repo_id(did)
            self.db.execute(
                "UPDATE archive_repo SET active = ?, status = ? WHERE id = ?",
                (1 if active else 0, None if active else status, repo),
            )
            self._advance(seq)

    # -- writes' parts ----------------------------------------------------------------
    def _add_blocks(self, repo: int, rev: str, blocks: Iterable[tuple[CID, bytes]]) -> None:
        self.db.executemany(
            "INSERT INTO archive_block (repo, cid, rev, data) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (repo, cid) DO NOTHING",
            [(repo, cid.raw, rev, data) for cid, data in blocks],
        )

    def _drop_blocks(self, repo: int, cids: Sequence[bytes]) -> None:
        for cid in cids:
            self._cache.forget((repo, cid))
        for i in range(0, len(cids), 200):
            chunk = cids[i : i + 200]
            marks = ", ".join("?" * len(chunk))
            self.db.execute(
                f"DELETE FROM archive_block WHERE repo = ? AND cid IN ({marks})", (repo, *chunk)
            )

    def _set_head(self, repo: int, commit_cid: CID, rev: str, data: CID) -> None:
        self.db.execute(
            "UPDATE archive_repo SET commit_cid = ?, rev = ?, data_cid = ? WHERE id = ?",
            (commit_cid.raw, rev, data.raw, repo),
        )

    def _set_blob_refs(
        self, repo: int, rev: str, refs: dict[str, list[CID]], *, keep_existing: bool = False
    ) -> list[CID]:
        """Replace the blob references of the given paths; want the blobs newly linked,
        forget those no path links any more. Returns the CIDs no DID holds now."""
        touched: set[bytes] = set()
        linked = self._linked_blobs(repo, list(refs))
        for path, cids in refs.items():
            old = linked.get(path, set())
            new = {c.raw for c in cids}
            if keep_existing and old == new:
                continue
            gone = old - new
            for cid in gone:
                self.db.execute(
                    "DELETE FROM archive_blob_ref WHERE repo = ? AND path = ? AND cid = ?",
                    (repo, path, cid),
                )
            self.db.executemany(
                "INSERT INTO archive_blob_ref (repo, path, cid, rev) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (repo, path, cid) DO NOTHING",
                [(repo, path, cid, rev) for cid in sorted(new - old)],
            )
            touched |= old ^ new
        orphans: list[CID] = []
        for cid in sorted(touched):
            still = self.db.one(
                "SELECT 1 FROM archive_blob_ref WHERE repo = ? AND cid = ?", (repo, cid)
            )
            if still is not None:
                self.db.execute(
                    "INSERT INTO archive_blob (repo, cid, state) VALUES (?, ?, ?) "
                    "ON CONFLICT (repo, cid) DO NOTHING",
                    (repo, cid, WANTED),
                )
                continue
            self.db.execute("DELETE FROM archive_blob WHERE repo = ? AND cid = ?", (repo, cid))
            if (
                self.db.one("SELECT 1 FROM archive_blob WHERE cid = ? AND state = ?", (cid, HELD))
                is None
            ):
                orphans.append(CID(cid))
        return orphans

    def _linked_blobs(self, repo: int, paths: Sequence[str]) -> dict[str, set[bytes]]:
        out: dict[str, set[bytes]] = {}
        for i in range(0, len(paths), 200):
            chunk = paths[i : i + 200]
            marks = ", ".join("?" * len(chunk))
            rows = self.db.query(
                f"SELECT path, cid FROM archive_blob_ref WHERE repo = ? AND path IN ({marks})",
                (repo, *chunk),
            )
            for path, cid in rows:
                out.setdefault(str(path), set()).add(bytes(cid))
        return out

    # -- blobs -------------------------------------------------------------------------
    def blobs_due(self, now: float, limit: int) -> list[BlobRow]:
        rows = self.db.query(
            "SELECT r.did, b.cid, b.state, b.mime, b.size, b.attempts FROM archive_blob b "
            "JOIN archive_repo r ON r.id = b.repo WHERE b.state = ? AND b.next_try <= ? "
            "ORDER BY b.next_try, b.repo, b.cid LIMIT ?",
            (WANTED, now, limit),
        )
        return [_blob(r) for r in rows]

    def next_blob_try(self) -> float | None:
        value = self.db.scalar("SELECT MIN(next_try) FROM archive_blob WHERE state = ?", (WANTED,))
        return None if value is None else float(value)

    def blob_held_anywhere(self, cid: CID) -> tuple[str, int] | None:
        """``(mime, size)`` of a blob some DID holds (its bytes are on disk)."""
        row = self.db.one(
            "SELECT mime, size FROM archive_blob WHERE cid = ? AND state = ? LIMIT 1",
            (cid.raw, HELD),
        )
        return None if row is None else (str(row[0]), int(row[1]))

    def blob_held(self, did: str, cid: CID, mime: str, size: int) -> bool:
        """Record that the DID's blob is on disk; False if the DID no longer wants it."""
        with self.db.transaction():
            changed = self.db.execute(
                "UPDATE archive_blob SET state = ?, mime = ?, size = ?, last_error = NULL "
                "WHERE cid = ? AND state = ? "
                "AND repo = (SELECT id FROM archive_repo WHERE did = ?)",
                (HELD, mime, size, cid.raw, WANTED, did),
            )
        return changed > 0

    def blob_failed(self, did: str, cid: CID, error: str, next_try: float, *, refuse: bool) -> None:
        with self.db.transaction():
            self.db.execute(
                "UPDATE archive_blob SET state = ?, attempts = attempts + 1, next_try = ?, "
                "last_error = ? WHERE cid = ? AND state = ? "
                "AND repo = (SELECT id FROM archive_repo WHERE did = ?)",
                (REFUSED if refuse else WANTED, next_try, error[:500], cid.raw, WANTED, did),
            )

    def blob(self, did: str, cid: CID) -> BlobRow | None:
        row = self.db.one(
            "SELECT r.did, b.cid, b.state, b.mime, b.size, b.attempts FROM archive_blob b "
            "JOIN archive_repo r ON r.id = b.repo WHERE r.did = ? AND b.cid = ?",
            (did, cid.raw),
        )
        return None if row is None else _blob(row)

    def list_blobs(self, repo: int, since: str | None, after: bytes, limit: int) -> list[CID]:
        """CIDs of the blobs the DID holds, in CID order after ``after``; with ``since``,
        only those linked by records written after that rev."""
        if since is None:
            rows = self.db.query(
                "SELECT cid FROM archive_blob WHERE repo = ? AND state = ? AND cid > ? "
                "ORDER BY cid LIMIT ?",
                (repo, HELD, after, limit),
            )
        else:
            rows = self.db.query(
                "SELECT DISTINCT b.cid FROM archive_blob b JOIN archive_blob_ref f "
                "ON f.repo = b.repo AND f.cid = b.cid WHERE b.repo = ? AND b.state = ? "
                "AND f.rev > ? AND b.cid > ? ORDER BY b.cid LIMIT ?",
                (repo, HELD, since, after, limit),
            )
        return [CID(bytes(r[0])) for r in rows]

    # -- reads -------------------------------------------------------------------------
    def block_page(
        self, repo: int, since: str | None, after: bytes, limit: int = PAGE
    ) -> list[tuple[bytes, bytes]]:
        """Up to ``limit`` blocks with CIDs after ``after``, in CID order: all of the
        repository's, or those that arrived after rev ``since``."""
        if since is None:
            rows = self.db.query(
                "SELECT cid, data FROM archive_block WHERE repo = ? AND cid > ? "
                "ORDER BY cid LIMIT ?",
                (repo, after, limit),
            )
        else:
            rows = self.db.query(
                "SELECT cid, data FROM archive_block WHERE repo = ? AND rev > ? AND cid > ? "
                "ORDER BY cid LIMIT ?",
                (repo, since, after, limit),
            )
        return [(bytes(c), bytes(d)) for c, d in rows]

    def list_repos(self, after: str, limit: int) -> list[RepoHead]:
        rows = self.db.query(
            _HEAD_SQL + "WHERE did > ? AND commit_cid IS NOT NULL ORDER BY did LIMIT ?",
            (after, limit),
        )
        return [_head(r) for r in rows]

    def counts(self) -> StoreCounts:
        def n(sql: str, params: Sequence[object] = ()) -> int:
            return int(self.db.scalar(sql, params) or 0)

        return StoreCounts(
            repos=n("SELECT COUNT(*) FROM archive_repo WHERE commit_cid IS NOT NULL"),
            records=n("SELECT COUNT(*) FROM archive_record"),
            blocks=n("SELECT COUNT(*) FROM archive_block"),
            block_bytes=n("SELECT SUM(LENGTH(data)) FROM archive_block"),
            blobs=n("SELECT COUNT(DISTINCT cid) FROM archive_blob WHERE state = ?", (HELD,)),
            blob_bytes=n(
                "SELECT SUM(size) FROM (SELECT DISTINCT cid, size FROM archive_blob "
                "WHERE state = ?) AS held",
                (HELD,),
            ),
            blobs_wanted=n("SELECT COUNT(*) FROM archive_blob WHERE state = ?", (WANTED,)),
            resyncs_pending=n("SELECT COUNT(*) FROM archive_repo WHERE resync = 1"),
        )

    def store_bytes(self) -> int:
        """The bytes the store's tables take: the SQLite file's pages, or the PostgreSQL
        relations (tables, indexes, TOAST) of the archive."""
        if self.db.dialect == "sqlite":
            pages = int(self.db.scalar("PRAGMA page_count") or 0)
            free = int(self.db.scalar("PRAGMA freelist_count") or 0)
            return (pages - free) * int(self.db.scalar("PRAGMA page_size") or 0)
        return int(
            self.db.scalar(
                "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = current_schema() AND c.relkind = 'r' "
                "AND c.relname LIKE 'archive%'"
            )
            or 0
        )


def _blob(row: Row) -> BlobRow:
    return BlobRow(
        did=str(row[0]),
        cid=CID(bytes(row[1])),
        state=str(row[2]),
        mime=None if row[3] is None else str(row[3]),
        size=None if row[4] is None else int(row[4]),
        attempts=int(row[5]),
    )
