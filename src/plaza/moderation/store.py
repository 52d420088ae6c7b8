"""The labeler's store over one :class:`plaza.db.Database` (SQLite, or PostgreSQL by
URL), brought to the latest schema of :mod:`plaza.moderation.schema` when opened.

Several processes may share one PostgreSQL store (the API server and the labeler
workers on the bus). Every transaction that issues labels first takes the label log's
lock (:meth:`LabelerStore.lock_labels`, a transaction-scoped advisory lock), and a
label's ``seq`` is drawn under it: so labels commit in ``seq`` order, and a reader
streaming ``seq > cursor`` never passes a label that commits later with a smaller
``seq``. Each label also notifies :attr:`LabelerStore.channel` when it commits, which
wakes the ``subscribeLabels`` streams of every process (:func:`plaza.db.listen`). On
SQLite, ``BEGIN IMMEDIATE`` already makes every writer wait for the one before.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from plaza.atproto import cbor
from plaza.db import Database, connect, migrate, notify
from plaza.moderation.schema import MIGRATIONS

DB_FILE: Final = "labeler.db"
REVIEW_STATUSES: Final = ("open", "waiting", "labelled", "dismissed", "reversed")
_LABEL_LOCK: Final = 0x4C41424C  # with the schema's hash: the label log's advisory lock


@dataclass(frozen=True)
class Review:
    id: int
    kind: str  # "classifier", "report" or "appeal"
    subject: str
    cid: str | None
    did: str
    reason_type: str
    reason: str
    score: float | None
    reporter: str | None
    status: str
    created_at: str
    resolution: str | None

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


_REVIEW_COLUMNS: Final = (
    "id, kind, subject, cid, did, reason_type, reason, score, reporter, status, created_at, "
    "resolution"
)


def _review(row: Any) -> Review:
    i, kind, subject, cid, did, rtype, reason, score, reporter, status, created, res = row
    return Review(
        int(i),
        str(kind),
        str(subject),
        cid,
        str(did),
        str(rtype),
        str(reason),
        None if score is None else float(score),
        reporter,
        str(status),
        str(created),
        res,
    )


class LabelerStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        migrate(db, MIGRATIONS)
        schema = db.scalar("SELECT current_schema()") if db.dialect == "postgresql" else ""
        self.channel = f"plaza_labels_{schema}"[:63]
        """The PostgreSQL channel notified as each label commits (its payload the seq)."""

    @classmethod
    def for_data_dir(cls, data_dir: Path, url: str | None = None) -> LabelerStore:
        """PostgreSQL when ``url`` is given, else SQLite at ``DATA_DIR/labeler.db``."""
        return cls(connect(url or f"sqlite://{data_dir / DB_FILE}"))

    def close(self) -> None:
        self.db.close()

    # labels

    def lock_labels(self) -> None:
        """Inside a transaction: wait for every other transaction issuing labels to end,
        and hold them off until this one does (see the module docstring)."""
        if self.db.dialect == "postgresql":
            self.db.scalar(
                "SELECT pg_advisory_xact_lock(?, hashtext(current_schema()))", (_LABEL_LOCK,)
            )

    def add_label(self, label: dict[str, Any]) -> int:
        """Append a signed label (in the caller's transaction, or one of its own); its
        sequence number."""
        with self.db.transaction():
            self.lock_labels()
            rows = self.db.query(
                "INSERT INTO labels (uri, val, neg, cts, label) VALUES (?, ?, ?, ?, ?) "
                "RETURNING seq",
                (
                    label["uri"],
                    label["val"],
                    int(label.get("neg", False)),
                    label["cts"],
                    cbor.encode(label),
                ),
            )
            seq = int(rows[0][0])
            notify(self.db, self.channel, str(seq))
        return seq

    def labels_after(self, cursor: int, limit: int = 500) -> list[tuple[int, dict[str, Any]]]:
        rows = self.db.query(
            "SELECT seq, label FROM labels WHERE seq > ? ORDER BY seq LIMIT ?", (cursor, limit)
        )
        return [(int(seq), cbor.decode(bytes(raw))) for seq, raw in rows]

    def last_seq(self) -> int:
        rows = self.db.query("SELECT MAX(seq) FROM labels")
        return int(rows[0][0] or 0)

    def current(self, uri: str, val: str) -> bool:
        """Whether ``val`` is on ``uri`` now (its last label is not a negation)."""
        rows = self.db.query(
            "SELECT neg FROM labels WHERE uri = ? AND val = ? ORDER BY seq DESC LIMIT 1",
            (uri, val),
        )
        return bool(rows) and not rows[0][0]

    def query_labels(
        self, patterns: list[str], cursor: int, limit: int
    ) -> list[tuple[int, dict[str, Any]]]:
        """The current (not negated) labels on subjects matching ``patterns`` (exact, or a
        prefix ending in ``*``), after ``cursor``, oldest first."""
        clauses, params = [], []
        for p in patterns:
            if p.endswith("*"):
                clauses.append("uri LIKE ? ESCAPE '\\'")
                esc = p[:-1].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                params.append(esc + "%")
            else:
                clauses.append("uri = ?")
                params.append(p)
        where = " OR ".join(clauses) if clauses else "1=1"
        rows = self.db.query(
            f"SELECT seq, label FROM labels l WHERE ({where}) AND seq > ? AND neg = 0 "
            "AND NOT EXISTS (SELECT 1 FROM labels n WHERE n.uri = l.uri AND n.val = l.val "
            "AND n.seq > l.seq) ORDER BY seq LIMIT ?",
            (*params, cursor, limit),
        )
        return [(int(seq), cbor.decode(bytes(raw))) for seq, raw in rows]

    # reviews

    def add_review(  # noqa: PLR0917 - one row's columns
        self,
        kind: str,
        subject: str,
        cid: str | None,
        did: str,
        reason_type: str,
        reason: str,
        score: float | None,
        reporter: str | None,
        created_at: str,
    ) -> int:
        rows = self.db.query(
            "INSERT INTO reviews (kind, subject, cid, did, reason_type, reason, score, "
            "reporter, status, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'open', ?) "
            "RETURNING id",
            (kind, subject, cid, did, reason_type, reason, score, reporter, created_at),
        )
        return int(rows[0][0])

    def reviews(self, status: str = "open", limit: int = 100) -> list[Review]:
        rows = self.db.query(
            f"SELECT {_REVIEW_COLUMNS} FROM reviews WHERE status = ? ORDER BY id LIMIT ?",
            (status, limit),
        )
        return [_review(r) for r in rows]

    def review(self, review_id: int) -> Review | None:
        rows = self.db.query(f"SELECT {_REVIEW_COLUMNS} FROM reviews WHERE id = ?", (review_id,))
        return _review(rows[0]) if rows else None

    def resolve(self, review_id: int, status: str, resolution: str, at: str) -> None:
        self.db.execute(
            "UPDATE reviews SET status = ?, resolution = ?, resolved_at = ? WHERE id = ?",
            (status, resolution, at, review_id),
        )

    # firehose cursors

    def cursor(self, source: str) -> int:
        rows = self.db.query("SELECT seq FROM ingest WHERE source = ?", (source,))
        return int(rows[0][0]) if rows else 0

    def cursors(self) -> dict[str, int]:
        """Every source's cursor (the firehoses', the bus partitions', the DAO's)."""
        rows = self.db.query("SELECT source, seq FROM ingest ORDER BY source")
        return {str(source): int(seq) for source, seq in rows}

    def set_cursor(self, source: str, seq: int) -> None:
        self.db.execute(
            "INSERT INTO ingest (source, seq) VALUES (?, ?) "
            "ON CONFLICT (source) DO UPDATE SET seq = excluded.seq",
            (source, seq),
        )

    # strikes

    def strike(self, did: str) -> int:
        """Count one more spam label against ``did``; the new count."""
        rows = self.db.query(
            "INSERT INTO strikes (did, count) VALUES (?, 1) ON CONFLICT (did) "
            "DO UPDATE SET count = strikes.count + 1 RETURNING count",
            (did,),
        )
        return int(rows[0][0])
