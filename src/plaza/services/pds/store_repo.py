"""The repository half of the PDS store: blocks, roots, the record index and blobs.

A mixin of :class:`plaza.services.pds.store.PdsStore` (one store contract, split by
concept); it needs only ``self.db``. Blob metadata is in
:mod:`plaza.services.pds.store_blobs`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from plaza.db import Database
from plaza.services.pds.rows import EventRow, RecordRef, RepoRoot, RepoWrite

Statement = tuple[str, list[Sequence[object]]]

BLOCK_PAGE = 500  # blocks per query when a repository is read in full
EVENT_INSERT = "INSERT INTO pds_event (seq, did, kind, created_s, frame) VALUES (?, ?, ?, ?, ?)"
ROOT_UPSERT = (
    "INSERT INTO pds_repo_root (did, commit_cid, rev, data_cid) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (did) DO UPDATE SET commit_cid = excluded.commit_cid, "
    "rev = excluded.rev, data_cid = excluded.data_cid"
)


def write_statements(write: RepoWrite, event: EventRow | None = None) -> list[Statement]:
    """The SQL that lands one commit, as ``(sql, rows)`` pairs run in order in one
    transaction (a pair with several rows is an ``executemany``).

    Statements are batched (one multi-row statement per kind of change), because on
    PostgreSQL every statement is work for the server even when pipelined. A block
    that is both removed and added (it left the tree and came back) is only added.
    """
    did = write.did
    rev = write.root.rev
    out: list[Statement] = []
    added = {cid for cid, _ in write.new_blocks}
    removed = [cid for cid in dict.fromkeys(write.removed_blocks) if cid not in added]
    for i in range(0, len(removed), 200):
        chunk = removed[i : i + 200]
        marks = ", ".join("?" * len(chunk))
        out.append((f"DELETE FROM pds_block WHERE did = ? AND cid IN ({marks})", [(did, *chunk)]))
    new_blocks = list(write.new_blocks)
    for i in range(0, len(new_blocks), 100):
        chunk_rows = new_blocks[i : i + 100]
        values = ", ".join("(?, ?, ?, ?)" for _ in chunk_rows)
        params: list[object] = []
        for cid, data in chunk_rows:
            params.extend((did, cid, rev, data))
        out.append(
            (
                f"INSERT INTO pds_block (did, cid, rev, data) VALUES {values} "
                "ON CONFLICT (did, cid) DO NOTHING",
                [params],
            )
        )
    deletes: list[Sequence[object]] = [
        (did, c, k) for (c, k), cid in write.records.items() if cid is None
    ]
    upserts: list[Sequence[object]] = [
        (did, c, k, cid, rev) for (c, k), cid in write.records.items() if cid
    ]
    if deletes:
        out.append(
            ("DELETE FROM pds_record WHERE did = ? AND collection = ? AND rkey = ?", deletes)
        )
    if upserts:
        out.append(
            (
                "INSERT INTO pds_record (did, collection, rkey, cid, rev) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (did, collection, rkey) "
                "DO UPDATE SET cid = excluded.cid, rev = excluded.rev",
                upserts,
            )
        )
    for uri, blobs in write.blob_refs.items():
        out.append(("DELETE FROM pds_record_blob WHERE did = ? AND record_uri = ?", [(did, uri)]))
        if blobs:
            out.append(
                (
                    "INSERT INTO pds_record_blob (did, blob_cid, record_uri) VALUES (?, ?, ?) "
                    "ON CONFLICT DO NOTHING",
                    [(did, b, uri) for b in blobs],
                )
            )
    root = write.root
    out.append((ROOT_UPSERT, [(did, root.commit_cid, root.rev, root.data_cid)]))
    if event is not None:
        out.append((EVENT_INSERT, [_event_params(event)]))
    return out


def pg_commit_statement(write: RepoWrite, event: EventRow) -> tuple[str, list[object]]:
    """The whole of :func:`write_statements` as one PostgreSQL statement (psycopg
    placeholders) and its parameters, for commits through
    :mod:`plaza.services.pds.pg_commit`.

    One statement in autocommit is one transaction and one round trip. Its
    data-modifying WITH clauses all run, on one snapshot; the rows each clause touches
    are disjoint from its siblings' (removed blocks exclude the added ones, a record
    key is either deleted or upserted, blob references that stay are neither deleted
    nor inserted), so the result is that of the statements in order. Only the clauses a
    commit needs are included and the text depends only on the counts of rows, so a
    handful of texts cover nearly every commit and psycopg prepares each once per
    connection. Parameters are scalars: psycopg's adaptation of lists costs far more.
    """
    did, rev = write.did, write.root.rev
    blocks = dict(write.new_blocks)
    removed = [c for c in dict.fromkeys(write.removed_blocks) if c not in blocks]
    deleted = [key for key, cid in write.records.items() if cid is None]
    put = [(key, cid) for key, cid in write.records.items() if cid]
    refs = [(b, uri) for uri, blobs in write.blob_refs.items() for b in blobs]
    clauses: list[str] = []
    params: list[object] = []
    if removed:
        clauses.append(
            "d_blocks AS (DELETE FROM pds_block WHERE did = %s AND cid IN "
            f"({', '.join(['%s'] * len(removed))}))"
        )
        params += [did, *removed]
    if blocks:
        clauses.append(
            "a_blocks AS (INSERT INTO pds_block (did, cid, rev, data) VALUES "
            f"{', '.join(['(%s, %s, %s, %s)'] * len(blocks))} ON CONFLICT (did, cid) DO NOTHING)"
        )
        params += [x for cid, data in blocks.items() for x in (did, cid, rev, data)]
    if deleted:
        clauses.append(
            "d_records AS (DELETE FROM pds_record WHERE did = %s AND (collection, rkey) IN "
            f"({', '.join(['(%s, %s)'] * len(deleted))}))"
        )
        params += [did, *(x for key in deleted for x in key)]
    if put:
        clauses.append(
            "p_records AS (INSERT INTO pds_record (did, collection, rkey, cid, rev) VALUES "
            f"{', '.join(['(%s, %s, %s, %s, %s)'] * len(put))} ON CONFLICT "
            "(did, collection, rkey) DO UPDATE SET cid = excluded.cid, rev = excluded.rev)"
        )
        params += [x for (c, k), cid in put for x in (did, c, k, cid, rev)]
    if write.blob_refs:
        keep = ""
        if refs:
            keep = f" AND (blob_cid, record_uri) NOT IN ({', '.join(['(%s, %s)'] * len(refs))})"
        clauses.append(
            "d_refs AS (DELETE FROM pds_record_blob WHERE did = %s AND record_uri IN "
            f"({', '.join(['%s'] * len(write.blob_refs))}){keep})"
        )
        params += [did, *write.blob_refs, *(x for ref in refs for x in ref)]
    if refs:
        clauses.append(
            "a_refs AS (INSERT INTO pds_record_blob (did, blob_cid, record_uri) VALUES "
            f"{', '.join(['(%s, %s, %s)'] * len(refs))} ON CONFLICT DO NOTHING)"
        )
        params += [x for b, uri in refs for x in (did, b, uri)]
    clauses.append(
        "s_root AS (INSERT INTO pds_repo_root (did, commit_cid, rev, data_cid) "
        "VALUES (%s, %s, %s, %s) ON CONFLICT (did) DO UPDATE SET "
        "commit_cid = excluded.commit_cid, rev = excluded.rev, data_cid = excluded.data_cid)"
    )
    root = write.root
    params += [did, root.commit_cid, rev, root.data_cid]
    sql = (
        "WITH " + ", ".join(clauses) + " INSERT INTO pds_event (seq, did, kind, created_s, "
        "frame) VALUES (%s, %s, %s, %s, %s)"
    )
    params += [event.seq, did, event.kind, event.created_s, event.frame]
    return sql, params


def _event_params(row: EventRow) -> tuple[object, ...]:
    return (row.seq, row.did, row.kind, row.created_s, row.frame)


class RepoTables:
    db: Database

    # -- repository ------------------------------------------------------------------
    def get_root(self, did: str) -> RepoRoot | None:
        row = self.db.one(
            "SELECT commit_cid, rev, data_cid FROM pds_repo_root WHERE did = ?", (did,)
        )
        return None if row is None else RepoRoot(bytes(row[0]), str(row[1]), bytes(row[2]))

    def get_block(self, did: str, cid: bytes) -> bytes | None:
        row = self.db.one("SELECT data FROM pds_block WHERE did = ? AND cid = ?", (did, cid))
        return None if row is None else bytes(row[0])

    def get_blocks(self, did: str, cids: Iterable[bytes]) -> dict[bytes, bytes]:
        out: dict[bytes, bytes] = {}
        wanted = list(dict.fromkeys(cids))
        for i in range(0, len(wanted), 200):
            chunk = wanted[i : i + 200]
            marks = ", ".join("?" * len(chunk))
            sql = f"SELECT cid, data FROM pds_block WHERE did = ? AND cid IN ({marks})"
            for cid, data in self.db.query(sql, (did, *chunk)):
                out[bytes(cid)] = bytes(data)
        return out

    def iter_blocks(self, did: str, since: str | None = None) -> Iterator[tuple[bytes, bytes]]:
        """Every block of the repository, or those added after revision ``since``, in pages."""
        last = b""
        while True:
            rows = self.block_page(did, since, last)
            yield from rows
            if len(rows) < BLOCK_PAGE:
                return
            last = rows[-1][0]

    def block_page(
        self, did: str, since: str | None, after: bytes, limit: int = BLOCK_PAGE
    ) -> list[tuple[bytes, bytes]]:
        """Up to ``limit`` blocks with CIDs after ``after`` (``b""``: from the first), in
        CID order: of the whole repository, or those added after revision ``since``."""
        if since is None:
            rows = self.db.query(
                "SELECT cid, data FROM pds_block WHERE did = ? AND cid > ? ORDER BY cid LIMIT ?",
                (did, after, limit),
            )
        else:
            rows = self.db.query(
                "SELECT cid, data FROM pds_block WHERE did = ? AND rev > ? AND cid > ? "
                "ORDER BY cid LIMIT ?",
                (did, since, after, limit),
            )
        return [(bytes(cid), bytes(data)) for cid, data in rows]

    def count_blocks(self, did: str) -> int:
        return int(self.db.scalar("SELECT COUNT(*) FROM pds_block WHERE did = ?", (did,)) or 0)

    def apply_write(self, write: RepoWrite, event: EventRow | None = None) -> None:
        """Land one commit: blocks, record index, blob references, the new root and, if
        given, its firehose event — the statements of :func:`write_statements`, in one
        transaction."""
        with self.db.transaction():
            for sql, rows in write_statements(write, event):
                if len(rows) == 1:
                    self.db.execute(sql, rows[0])
                else:
                    self.db.executemany(sql, rows)

    def replace_repo(
        self,
        did: str,
        root: RepoRoot,
        blocks: Sequence[tuple[bytes, bytes]],
        records: Sequence[RecordRef],
        blob_refs: dict[str, tuple[bytes, ...]],
    ) -> None:
        """Swap the whole repository for an imported one (idempotent)."""
        with self.db.transaction():
            for table in ("pds_block", "pds_record", "pds_record_blob"):
                self.db.execute(f"DELETE FROM {table} WHERE did = ?", (did,))
            self.db.executemany(
                "INSERT INTO pds_block (did, cid, rev, data) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (did, cid) DO NOTHING",
                [(did, cid, root.rev, data) for cid, data in blocks],
            )
            self.db.executemany(
                "INSERT INTO pds_record (did, collection, rkey, cid, rev) VALUES (?, ?, ?, ?, ?)",
                [(did, r.collection, r.rkey, r.cid, root.rev) for r in records],
            )
            self.db.executemany(
                "INSERT INTO pds_record_blob (did, blob_cid, record_uri) VALUES (?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                [(did, b, uri) for uri, blobs in blob_refs.items() for b in blobs],
            )
            self._set_root(did, root)

    def _set_root(self, did: str, root: RepoRoot) -> None:
        self.db.execute(ROOT_UPSERT, (did, root.commit_cid, root.rev, root.data_cid))

    def append_event(self, row: EventRow) -> None:
        self.db.execute(EVENT_INSERT, _event_params(row))

    # -- record index ----------------------------------------------------------------
    def get_record_cid(self, did: str, collection: str, rkey: str) -> bytes | None:
        row = self.db.one(
            "SELECT cid FROM pds_record WHERE did = ? AND collection = ? AND rkey = ?",
            (did, collection, rkey),
        )
        return None if row is None else bytes(row[0])

    def get_record_block(self, did: str, collection: str, rkey: str) -> tuple[bytes, bytes] | None:
        """``(cid, block)`` of a current record, in one query."""
        row = self.db.one(
            "SELECT r.cid, b.data FROM pds_record r JOIN pds_block b "
            "ON b.did = r.did AND b.cid = r.cid "
            "WHERE r.did = ? AND r.collection = ? AND r.rkey = ?",
            (did, collection, rkey),
        )
        return None if row is None else (bytes(row[0]), bytes(row[1]))

    def records_with_cid(self, did: str, cid: bytes, limit: int) -> list[tuple[str, str]]:
        """Up to ``limit`` ``(collection, rkey)`` of current records whose block is ``cid``."""
        rows = self.db.query(
            "SELECT collection, rkey FROM pds_record WHERE did = ? AND cid = ? LIMIT ?",
            (did, cid, limit),
        )
        return [(str(c), str(k)) for c, k in rows]

    def list_records(
        self, did: str, collection: str, limit: int, cursor: str | None, reverse: bool
    ) -> list[RecordRef]:
        """Records of one collection by record key: descending, or ascending if ``reverse``."""
        if reverse:
            sql = (
                "SELECT rkey, cid FROM pds_record WHERE did = ? AND collection = ? AND rkey > ? "
                "ORDER BY rkey ASC LIMIT ?"
            )
            args: tuple[object, ...] = (did, collection, cursor or "", limit)
        elif cursor is None:
            sql = (
                "SELECT rkey, cid FROM pds_record WHERE did = ? AND collection = ? "
                "ORDER BY rkey DESC LIMIT ?"
            )
            args = (did, collection, limit)
        else:
            sql = (
                "SELECT rkey, cid FROM pds_record WHERE did = ? AND collection = ? AND rkey < ? "
                "ORDER BY rkey DESC LIMIT ?"
            )
            args = (did, collection, cursor, limit)
        return [RecordRef(collection, str(k), bytes(c)) for k, c in self.db.query(sql, args)]

    def list_collections(self, did: str) -> list[str]:
        rows = self.db.query(
            "SELECT DISTINCT collection FROM pds_record WHERE did = ? ORDER BY collection", (did,)
        )
        return [str(r[0]) for r in rows]

    def count_records(self, did: str, collection: str | None = None) -> int:
        if collection is None:
            n = self.db.scalar("SELECT COUNT(*) FROM pds_record WHERE did = ?", (did,))
        else:
            n = self.db.scalar(
                "SELECT COUNT(*) FROM pds_record WHERE did = ? AND collection = ?",
                (did, collection),
            )
        return int(n or 0)

    def repo_bytes(self, did: str) -> int:
        n = self.db.scalar("SELECT SUM(LENGTH(data)) FROM pds_block WHERE did = ?", (did,))
        return int(n or 0)
