"""The repository half of the PDS store: blocks, roots, the record index and blobs.

A mixin of :class:`plaza.services.pds.store.PdsStore` (one store contract, split by
concept); it needs only ``self.db``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from plaza.db import Database
from plaza.services.pds.rows import BlobRow, EventRow, RecordRef, RepoRoot, RepoWrite

Statement = tuple[str, list[Sequence[object]]]

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


# The whole of write_statements as one PostgreSQL statement (psycopg placeholders), for
# commits through plaza.services.pds.pg_commit: one statement in autocommit is one
# transaction and one round trip, and its text never changes, so the server prepares
# it once per connection. Data-modifying WITH clauses all run, on one snapshot: the
# rows each clause touches are disjoint from its siblings' (removed blocks exclude the
# added ones; a record key is either deleted or upserted; blob references that stay are
# neither deleted nor inserted), so the result is that of the statements in order.
PG_COMMIT = """
WITH
del_blocks AS (
    DELETE FROM pds_block WHERE did = %(did)s AND cid = ANY(%(removed)s::bytea[])
),
add_blocks AS (
    INSERT INTO pds_block (did, cid, rev, data)
    SELECT %(did)s, c, %(rev)s, d FROM unnest(%(cids)s::bytea[], %(datas)s::bytea[]) AS t(c, d)
    ON CONFLICT (did, cid) DO NOTHING
),
del_records AS (
    DELETE FROM pds_record r USING unnest(%(del_colls)s::text[], %(del_rkeys)s::text[]) AS t(c, k)
    WHERE r.did = %(did)s AND r.collection = t.c AND r.rkey = t.k
),
put_records AS (
    INSERT INTO pds_record (did, collection, rkey, cid, rev)
    SELECT %(did)s, c, k, x, %(rev)s
    FROM unnest(%(put_colls)s::text[], %(put_rkeys)s::text[], %(put_cids)s::bytea[]) AS t(c, k, x)
    ON CONFLICT (did, collection, rkey) DO UPDATE SET cid = excluded.cid, rev = excluded.rev
),
del_refs AS (
    DELETE FROM pds_record_blob b USING unnest(%(ref_uris)s::text[]) AS u(uri)
    WHERE b.did = %(did)s AND b.record_uri = u.uri AND NOT EXISTS (
        SELECT 1 FROM unnest(%(ref_blobs)s::bytea[], %(ref_blob_uris)s::text[]) AS n(c, uri)
        WHERE n.c = b.blob_cid AND n.uri = b.record_uri
    )
),
add_refs AS (
    INSERT INTO pds_record_blob (did, blob_cid, record_uri)
    SELECT %(did)s, c, uri
    FROM unnest(%(ref_blobs)s::bytea[], %(ref_blob_uris)s::text[]) AS n(c, uri)
    ON CONFLICT DO NOTHING
),
set_root AS (
    INSERT INTO pds_repo_root (did, commit_cid, rev, data_cid)
    VALUES (%(did)s, %(commit_cid)s, %(rev)s, %(data_cid)s)
    ON CONFLICT (did) DO UPDATE SET commit_cid = excluded.commit_cid,
        rev = excluded.rev, data_cid = excluded.data_cid
)
INSERT INTO pds_event (seq, did, kind, created_s, frame)
VALUES (%(seq)s, %(did)s, %(kind)s, %(created_s)s, %(frame)s)
"""


def pg_commit_params(write: RepoWrite, event: EventRow) -> dict[str, object]:
    """The parameters of :data:`PG_COMMIT` for one commit and its event."""
    blocks = dict(write.new_blocks)
    deleted = [key for key, cid in write.records.items() if cid is None]
    put = [(key, cid) for key, cid in write.records.items() if cid]
    refs = [(uri, b) for uri, blobs in write.blob_refs.items() for b in blobs]
    return {
        "did": write.did,
        "rev": write.root.rev,
        "removed": [c for c in dict.fromkeys(write.removed_blocks) if c not in blocks],
        "cids": list(blocks),
        "datas": list(blocks.values()),
        "del_colls": [c for c, _ in deleted],
        "del_rkeys": [k for _, k in deleted],
        "put_colls": [c for (c, _), _ in put],
        "put_rkeys": [k for (_, k), _ in put],
        "put_cids": [cid for _, cid in put],
        "ref_uris": list(write.blob_refs),
        "ref_blobs": [b for _, b in refs],
        "ref_blob_uris": [uri for uri, _ in refs],
        "commit_cid": write.root.commit_cid,
        "data_cid": write.root.data_cid,
        "seq": event.seq,
        "kind": event.kind,
        "created_s": event.created_s,
        "frame": event.frame,
    }


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
            if since is None:
                rows = self.db.query(
                    "SELECT cid, data FROM pds_block WHERE did = ? AND cid > ? "
                    "ORDER BY cid LIMIT 500",
                    (did, last),
                )
            else:
                rows = self.db.query(
                    "SELECT cid, data FROM pds_block WHERE did = ? AND rev > ? AND cid > ? "
                    "ORDER BY cid LIMIT 500",
                    (did, since, last),
                )
            for cid, data in rows:
                yield bytes(cid), bytes(data)
            if len(rows) < 500:
                return
            last = bytes(rows[-1][0])

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

    # -- blobs -----------------------------------------------------------------------
    def add_blob(self, did: str, row: BlobRow) -> None:
        self.db.execute(
            "INSERT INTO pds_blob (did, cid, mime, size, created_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (did, cid) DO NOTHING",
            (did, row.cid, row.mime, row.size, row.created_at),
        )

    def get_blob(self, did: str, cid: bytes) -> BlobRow | None:
        row = self.db.one(
            "SELECT cid, mime, size, created_at FROM pds_blob WHERE did = ? AND cid = ?",
            (did, cid),
        )
        return None if row is None else BlobRow(bytes(row[0]), str(row[1]), int(row[2]), row[3])

    def list_blobs(self, did: str, after: bytes | None, limit: int) -> list[bytes]:
        rows = self.db.query(
            "SELECT cid FROM pds_blob WHERE did = ? AND cid > ? ORDER BY cid LIMIT ?",
            (did, after or b"", limit),
        )
        return [bytes(r[0]) for r in rows]

    def list_referenced_blobs(self, did: str, since: str | None = None) -> list[bytes]:
        """Blob CIDs referenced by current records (added after ``since`` if given)."""
        if since is None:
            rows = self.db.query(
                "SELECT DISTINCT blob_cid FROM pds_record_blob WHERE did = ? ORDER BY blob_cid",
                (did,),
            )
        else:
            rows = self.db.query(
                "SELECT DISTINCT b.blob_cid FROM pds_record_blob b JOIN pds_record r "
                "ON r.did = b.did AND b.record_uri = "
                "'at://' || r.did || '/' || r.collection || '/' || r.rkey "
                "WHERE b.did = ? AND r.rev > ? ORDER BY b.blob_cid",
                (did, since),
            )
        return [bytes(r[0]) for r in rows]

    def list_missing_blobs(
        self, did: str, after: bytes | None, limit: int
    ) -> list[tuple[bytes, str]]:
        """Referenced blobs with no stored bytes: ``(cid, one record URI)``."""
        rows = self.db.query(
            "SELECT b.blob_cid, MIN(b.record_uri) FROM pds_record_blob b "
            "LEFT JOIN pds_blob s ON s.did = b.did AND s.cid = b.blob_cid "
            "WHERE b.did = ? AND s.cid IS NULL AND b.blob_cid > ? "
            "GROUP BY b.blob_cid ORDER BY b.blob_cid LIMIT ?",
            (did, after or b"", limit),
        )
        return [(bytes(r[0]), str(r[1])) for r in rows]

    def blob_counts(self, did: str) -> tuple[int, int]:
        """``(expected, imported)``: referenced blob CIDs, and those of them stored."""
        expected = self.db.scalar(
            "SELECT COUNT(DISTINCT blob_cid) FROM pds_record_blob WHERE did = ?", (did,)
        )
        imported = self.db.scalar(
            "SELECT COUNT(DISTINCT b.blob_cid) FROM pds_record_blob b JOIN pds_blob s "
            "ON s.did = b.did AND s.cid = b.blob_cid WHERE b.did = ?",
            (did,),
        )
        return int(expected or 0), int(imported or 0)

    def blob_bytes(self, did: str) -> int:
        return int(self.db.scalar("SELECT SUM(size) FROM pds_blob WHERE did = ?", (did,)) or 0)

    def is_blob_referenced(self, did: str, cid: bytes) -> bool:
        row = self.db.one(
            "SELECT 1 FROM pds_record_blob WHERE did = ? AND blob_cid = ? LIMIT 1", (did, cid)
        )
        return row is not None

    def delete_blob(self, did: str, cid: bytes) -> None:
        self.db.execute("DELETE FROM pds_blob WHERE did = ? AND cid = ?", (did, cid))

    def blob_owner_count(self, cid: bytes) -> int:
        """How many accounts hold this blob (the bytes on disk are shared)."""
        return int(self.db.scalar("SELECT COUNT(*) FROM pds_blob WHERE cid = ?", (cid,)) or 0)
