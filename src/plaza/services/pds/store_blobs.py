"""The blob half of the PDS store: which account holds which blob, which records
reference them, and the marks of the garbage collector.

A mixin of :class:`plaza.services.pds.store.PdsStore` (one store contract, split by
concept); it needs only ``self.db``. The bytes live in a
:class:`~plaza.services.pds.blobs.BlobStore`; :mod:`plaza.services.pds.blob_gc` is the
collector that uses the marks.
"""

from __future__ import annotations

from plaza.db import Database
from plaza.services.pds.rows import BlobRow

_UNREFERENCED = (
    "NOT EXISTS (SELECT 1 FROM pds_record_blob r WHERE r.did = b.did AND r.blob_cid = b.cid)"
)


class BlobTables:
    db: Database

    def add_blob(self, did: str, row: BlobRow) -> None:
        """Record an upload. Uploading a blob the account holds already keeps its row but
        restarts its grace period (``created_at`` is the latest upload) and unmarks it."""
        with self.db.transaction():
            self.db.execute(
                "INSERT INTO pds_blob (did, cid, mime, size, created_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (did, cid) DO UPDATE SET created_at = excluded.created_at",
                (did, row.cid, row.mime, row.size, row.created_at),
            )
            self.db.execute("DELETE FROM pds_blob_orphan WHERE did = ? AND cid = ?", (did, row.cid))

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

    # -- garbage collection ----------------------------------------------------------
    def mark_unreferenced_blobs(self, now_s: int) -> None:
        """Mark, as of ``now_s``, every held blob no record references (a blob marked
        already keeps its first mark), and drop the marks of blobs referenced again or
        no longer held."""
        with self.db.transaction():
            self.db.execute(
                "INSERT INTO pds_blob_orphan (did, cid, since_s) "
                f"SELECT b.did, b.cid, ? FROM pds_blob b WHERE {_UNREFERENCED} "
                "ON CONFLICT (did, cid) DO NOTHING",
                (now_s,),
            )
            self.db.execute(
                "DELETE FROM pds_blob_orphan WHERE EXISTS (SELECT 1 FROM pds_record_blob r "
                "WHERE r.did = pds_blob_orphan.did AND r.blob_cid = pds_blob_orphan.cid) "
                "OR NOT EXISTS (SELECT 1 FROM pds_blob b "
                "WHERE b.did = pds_blob_orphan.did AND b.cid = pds_blob_orphan.cid)"
            )

    def collectable_blobs(
        self, marked_before_s: int, uploaded_before: str, limit: int
    ) -> list[tuple[str, bytes]]:
        """``(did, cid)`` of blobs marked unreferenced at or before ``marked_before_s`` and
        last uploaded at or before ``uploaded_before`` (an atproto datetime)."""
        rows = self.db.query(
            "SELECT o.did, o.cid FROM pds_blob_orphan o JOIN pds_blob b "
            "ON b.did = o.did AND b.cid = o.cid "
            "WHERE o.since_s <= ? AND b.created_at <= ? ORDER BY o.did, o.cid LIMIT ?",
            (marked_before_s, uploaded_before, limit),
        )
        return [(str(r[0]), bytes(r[1])) for r in rows]

    def collect_blob(
        self, did: str, cid: bytes, marked_before_s: int, uploaded_before: str
    ) -> bool:
        """Forget that ``did`` holds ``cid`` if it still qualifies (see
        :meth:`collectable_blobs`) and no record references it; True if it was
        forgotten. The caller holds the repository's lock, so no commit that could add
        a reference is in flight."""
        with self.db.transaction():
            row = self.db.one(
                "SELECT o.since_s, b.created_at FROM pds_blob_orphan o JOIN pds_blob b "
                "ON b.did = o.did AND b.cid = o.cid WHERE o.did = ? AND o.cid = ?",
                (did, cid),
            )
            if row is None or int(row[0]) > marked_before_s or str(row[1]) > uploaded_before:
                return False
            self.db.execute("DELETE FROM pds_blob_orphan WHERE did = ? AND cid = ?", (did, cid))
            if self.is_blob_referenced(did, cid):
                return False
            self.db.execute("DELETE FROM pds_blob WHERE did = ? AND cid = ?", (did, cid))
            return True
