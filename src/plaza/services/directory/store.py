"""The directory's persistent operation log, over :mod:`plaza.db` (SQLite or PostgreSQL).

Three tables, made by the steps of :data:`MIGRATIONS` when the store opens.
``plc_operations`` is the audit log of every DID: one row per accepted
operation with its CID, JSON, ``createdAt``, ``nullified`` flag and the index of the
rotation key that signed it (which later forks are measured against), numbered by a
global ``seq`` that ``/export`` pages through. ``plc_dids`` holds each DID's head CID.
``plc_handles`` holds the handles live DIDs claim
(:mod:`plaza.services.directory.handles`), kept in step with each append.

Every write runs :func:`plaza.atproto.plc.apply_operation` inside one transaction and
then moves the head with a compare-and-swap (``UPDATE ... WHERE head = <head the
decision was made on>``; a genesis is an ``INSERT`` on the primary key). Two
submissions decided on the same log therefore cannot both land: the second finds the
head moved and is refused with :class:`~plaza.errors.ConflictError`, and nothing of it is
written; so is an operation claiming a handle of the network's domains that another DID
holds (:class:`~plaza.services.directory.handles.HandleTakenError`). Writers also take
one lock for the whole transaction (SQLite's write lock via
``BEGIN IMMEDIATE``, a PostgreSQL advisory lock), so ``seq`` order is commit order and
an ``/export`` reader paging by ``seq`` never skips a row that commits late.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from plaza.atproto.errors import PlcError
from plaza.atproto.plc import (
    AppliedOperation,
    LogEntry,
    Operation,
    PlcState,
    apply_operation,
    format_timestamp,
    parse_operation,
    parse_timestamp,
)
from plaza.db import Database, IntegrityError, Migration, Migrations, connect, migrate
from plaza.errors import ConflictError
from plaza.services.directory.handles import DEFAULT_HANDLE_DOMAINS, HandleClaims, create_table

_INITIAL: Final = """
CREATE TABLE IF NOT EXISTS plc_dids (
    did TEXT PRIMARY KEY,
    head TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS plc_operations (
    seq SERIAL_PK,
    did TEXT NOT NULL,
    cid TEXT NOT NULL,
    operation TEXT NOT NULL,
    key_index INTEGER NOT NULL,
    nullified INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    UNIQUE (did, cid)
);
CREATE INDEX IF NOT EXISTS plc_operations_by_did ON plc_operations (did, seq);
CREATE INDEX IF NOT EXISTS plc_operations_by_time ON plc_operations (created_at, cid)
"""

MIGRATIONS: Final = Migrations(
    "directory",
    (
        Migration(1, "initial tables", _INITIAL),
        Migration(2, "handle claims", create_table),
    ),
)
"""The directory's schema, step by step (see :mod:`plaza.db.migrations`)."""

MAX_EXPORT_COUNT: Final = 1000
MAX_OPS_PER_DID: Final = 1000
"""Default bound on one DID's log: every read of the DID parses all of it."""


class TooManyOperationsError(PlcError):
    """The DID's log holds as many operations as the directory keeps for one DID."""

    code = "TooManyOperations"
    status = 429


# Any constant works; it only has to be the same for every directory process.
_PG_WRITE_LOCK: Final = 0x706C63


@dataclass(frozen=True)
class ExportedOp:
    """One row of ``/export``: an audit-log entry and its global sequence number."""

    seq: int
    entry: LogEntry


def _dump(op: Operation) -> str:
    return json.dumps(op.to_json(), separators=(",", ":"), ensure_ascii=False)


class DirectoryStore:
    """Every DID's audit log, with atomic, fork-free appends."""

    def __init__(
        self,
        db: Database,
        *,
        max_ops_per_did: int = MAX_OPS_PER_DID,
        handle_domains: tuple[str, ...] = DEFAULT_HANDLE_DOMAINS,
    ) -> None:
        self.db = db
        self.max_ops_per_did = max_ops_per_did
        self.handles = HandleClaims(db, handle_domains)
        migrate(db, MIGRATIONS)

    @classmethod
    def open(
        cls,
        url: str,
        *,
        max_ops_per_did: int = MAX_OPS_PER_DID,
        handle_domains: tuple[str, ...] = DEFAULT_HANDLE_DOMAINS,
    ) -> DirectoryStore:
        """Open (and create if needed) the store at a :func:`plaza.db.connect` URL."""
        return cls(connect(url), max_ops_per_did=max_ops_per_did, handle_domains=handle_domains)

    def close(self) -> None:
        self.db.close()

    def check(self) -> None:
        """Raise :class:`~plaza.errors.StorageError` if the database does not answer."""
        self.db.scalar("SELECT 1")

    # -- reads -------------------------------------------------------------------------

    def state(self, did: str) -> PlcState:
        """The DID's log and derived state (empty when the DID is unknown)."""
        rows = self.db.query(
            "SELECT cid, operation, key_index, nullified, created_at FROM plc_operations "
            "WHERE did = ? ORDER BY seq",
            (did,),
        )
        entries = tuple(
            LogEntry(did, _load(op), cid, bool(nullified), parse_timestamp(created))
            for cid, op, _, nullified, created in rows
        )
        return PlcState(did, entries, tuple(int(r[2]) for r in rows))

    def resolve_handle(self, handle: str) -> str:
        """The live DID claiming ``handle`` in the network's domains, or
        :class:`~plaza.services.directory.handles.HandleNotFoundError`."""
        return self.handles.resolve(handle)

    def audit_log(self, did: str) -> tuple[LogEntry, ...]:
        return self.state(did).entries

    def export(self, after: int = 0, count: int = MAX_EXPORT_COUNT) -> list[ExportedOp]:
        """Up to ``count`` (at most 1000) operations with ``seq > after``, in ``seq`` order."""
        rows = self.db.query(
            "SELECT seq, did, cid, operation, nullified, created_at FROM plc_operations "
            "WHERE seq > ? ORDER BY seq LIMIT ?",
            (after, _clamp(count)),
        )
        return [
            ExportedOp(int(seq), LogEntry(did, _load(op), cid, bool(n), parse_timestamp(c)))
            for seq, did, cid, op, n, c in rows
        ]

    def export_by_time(
        self, after: datetime | None = None, count: int = MAX_EXPORT_COUNT
    ) -> list[LogEntry]:
        """The legacy export: up to ``count`` entries created after ``after``, by time."""
        sql = "SELECT did, cid, operation, nullified, created_at FROM plc_operations"
        params: list[Any] = []
        if after is not None:
            sql += " WHERE created_at > ?"
            params.append(format_timestamp(after))
        sql += " ORDER BY created_at, cid LIMIT ?"
        params.append(_clamp(count))
        return [
            LogEntry(did, _load(op), cid, bool(n), parse_timestamp(c))
            for did, cid, op, n, c in self.db.query(sql, params)
        ]

    # -- writes ------------------------------------------------------------------------

    def submit(self, did: str, op: Operation, now: datetime) -> AppliedOperation:
        """Check ``op`` against ``did``'s stored log at time ``now`` and append it.

        Raises the :class:`~plaza.atproto.errors.PlcError` subclass naming the broken
        rule (:class:`TooManyOperationsError` once the DID's log is full), or
        :class:`ConflictError` if another writer moved the head; in every case nothing is
        written.
        """
        with self.db.transaction():
            self._lock()
            state = self.state(did)
            if len(state.entries) >= self.max_ops_per_did:
                raise TooManyOperationsError(
                    f"{did} has {len(state.entries)} operations; a directory keeps at most "
                    f"{self.max_ops_per_did} per DID"
                )
            applied = apply_operation(state, op, now)
            self.commit(applied)
        return applied

    def commit(self, applied: AppliedOperation) -> int:
        """Persist an operation accepted against some earlier read of the log.

        Returns the new row's ``seq``. Raises :class:`ConflictError`, writing nothing,
        when the DID's head is no longer the one ``applied`` was decided on, or when the
        operation claims a handle another DID holds (``HandleTakenError``).
        """
        entry = applied.entry
        did = entry.did
        with self.db.transaction():
            self._lock()
            handles = self.handles.check(did, entry.operation)
            if applied.previous_head is None:
                try:
                    self.db.execute(
                        "INSERT INTO plc_dids (did, head) VALUES (?, ?)", (did, entry.cid)
                    )
                except IntegrityError as exc:
                    raise ConflictError(
                        f"{did} was created by another submission at the same time"
                    ) from exc
            else:
                moved = self.db.execute(
                    "UPDATE plc_dids SET head = ? WHERE did = ? AND head = ?",
                    (entry.cid, did, applied.previous_head),
                )
                if moved != 1:
                    raise ConflictError(
                        f"the log of {did} changed while this operation was being checked; "
                        "fetch /log/audit again and resubmit"
                    )
            for cid in applied.nullified:
                self.db.execute(
                    "UPDATE plc_operations SET nullified = 1 WHERE did = ? AND cid = ?", (did, cid)
                )
            row = self.db.one(
                "INSERT INTO plc_operations (did, cid, operation, key_index, nullified, "
                "created_at) VALUES (?, ?, ?, ?, 0, ?) RETURNING seq",
                (did, entry.cid, _dump(entry.operation), applied.key_index,
                 format_timestamp(entry.created_at)),
            )  # fmt: skip
            assert row is not None
            self.handles.replace(did, handles, int(row[0]))
        return int(row[0])

    def _lock(self) -> None:
        if self.db.dialect == "postgresql":
            self.db.scalar("SELECT pg_advisory_xact_lock(?)", (_PG_WRITE_LOCK,))


def _load(text: str) -> Operation:
    # Rows were validated on the way in; parsing again yields the typed value.
    return parse_operation(json.loads(text))


def _clamp(count: int) -> int:
    return max(1, min(count, MAX_EXPORT_COUNT))
