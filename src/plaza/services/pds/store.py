"""The one storage contract of the hosting service, on SQLite (WAL) or PostgreSQL.

Everything a PDS keeps, except blob bytes (see :mod:`plaza.services.pds.blobs`), lives
in these tables: accounts and their secrets, signing keys reserved for accounts to
come, each repository's blocks and root, a record
index, blob metadata, references and collection marks, sessions, app passwords,
confirmation tokens, preferences, the firehose event log and usage counters, made and
changed by the numbered steps of :data:`MIGRATIONS` when the store opens. SQL is
written once through :mod:`plaza.db`; the same conformance suite
(``tests/services/pds/test_store.py``) runs on both backends.

Repository blocks are stored per account with the ``rev`` of the commit that added them,
so ``getRepo?since=`` is one indexed range scan. A commit removes the blocks it made
unreachable, so the table always holds exactly the current repository plus its commit.

Calls are synchronous and short. Callers group a logical write into one
``with store.transaction():`` so it lands entirely or not at all.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from plaza.db import Database, Migration, Migrations, connect, migrate
from plaza.services.pds.rows import (
    ACTIVE,
    DEACTIVATED,
    DELETED,
    STATUSES,
    TAKENDOWN,
    AccountRow,
    AppPasswordRow,
    BlobRow,
    EventRow,
    RecordRef,
    RefreshTokenRow,
    RepoRoot,
    RepoWrite,
    UsageRow,
)
from plaza.services.pds.store_blobs import BlobTables
from plaza.services.pds.store_repo import RepoTables

__all__ = [
    "ACTIVE",
    "DEACTIVATED",
    "DELETED",
    "MIGRATIONS",
    "STATUSES",
    "TAKENDOWN",
    "AccountRow",
    "AppPasswordRow",
    "BlobRow",
    "EventRow",
    "PdsStore",
    "RecordRef",
    "RefreshTokenRow",
    "RepoRoot",
    "RepoWrite",
    "UsageRow",
]

_INITIAL = """
CREATE TABLE IF NOT EXISTS pds_account (
    did TEXT PRIMARY KEY,
    handle TEXT NOT NULL UNIQUE,
    email TEXT UNIQUE,
    password_hash TEXT NOT NULL,
    signing_key BLOB NOT NULL,
    created_at TEXT NOT NULL,
    status TEXT NOT NULL,
    status_at TEXT,
    delete_after TEXT,
    email_confirmed INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS pds_repo_root (
    did TEXT PRIMARY KEY,
    commit_cid BLOB NOT NULL,
    rev TEXT NOT NULL,
    data_cid BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS pds_block (
    did TEXT NOT NULL,
    cid BLOB NOT NULL,
    rev TEXT NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (did, cid)
);
CREATE INDEX IF NOT EXISTS pds_block_rev ON pds_block (did, rev);
CREATE TABLE IF NOT EXISTS pds_record (
    did TEXT NOT NULL,
    collection TEXT NOT NULL,
    rkey TEXT NOT NULL,
    cid BLOB NOT NULL,
    rev TEXT NOT NULL,
    PRIMARY KEY (did, collection, rkey)
);
CREATE INDEX IF NOT EXISTS pds_record_cid ON pds_record (did, cid);
CREATE TABLE IF NOT EXISTS pds_blob (
    did TEXT NOT NULL,
    cid BLOB NOT NULL,
    mime TEXT NOT NULL,
    size INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (did, cid)
);
CREATE TABLE IF NOT EXISTS pds_blob_orphan (
    did TEXT NOT NULL,
    cid BLOB NOT NULL,
    since_s INTEGER NOT NULL,
    PRIMARY KEY (did, cid)
);
CREATE TABLE IF NOT EXISTS pds_record_blob (
    did TEXT NOT NULL,
    blob_cid BLOB NOT NULL,
    record_uri TEXT NOT NULL,
    PRIMARY KEY (did, blob_cid, record_uri)
);
CREATE TABLE IF NOT EXISTS pds_app_password (
    did TEXT NOT NULL,
    name TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    privileged INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (did, name)
);
CREATE TABLE IF NOT EXISTS pds_refresh_token (
    jti TEXT PRIMARY KEY,
    did TEXT NOT NULL,
    app_password TEXT,
    expires_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS pds_refresh_token_did ON pds_refresh_token (did);
CREATE TABLE IF NOT EXISTS pds_email_token (
    did TEXT NOT NULL,
    purpose TEXT NOT NULL,
    token_hash TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (did, purpose)
);
CREATE TABLE IF NOT EXISTS pds_preferences (
    did TEXT PRIMARY KEY,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS pds_event (
    seq INTEGER PRIMARY KEY,
    did TEXT NOT NULL,
    kind TEXT NOT NULL,
    created_s INTEGER NOT NULL,
    frame BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS pds_usage (
    did TEXT PRIMARY KEY,
    requests INTEGER NOT NULL,
    egress_bytes INTEGER NOT NULL
)
"""

# A commit that rewrites a record with blobs deletes its references by (did, record_uri),
# and freeing a blob's bytes counts its holders by cid alone: without these indexes both
# scan (the account's references; every account's blobs).
_BLOB_LOOKUPS = """
CREATE INDEX pds_record_blob_uri ON pds_record_blob (did, record_uri);
CREATE INDEX pds_blob_cid ON pds_blob (cid)
"""

# Signing keys reserved by com.atproto.server.reserveSigningKey, found by their public
# did:key (what a DID document names) and, for the per-DID bound, by DID.
_RESERVED_KEYS = """
CREATE TABLE pds_reserved_key (
    key_did TEXT PRIMARY KEY,
    did TEXT,
    private_key BLOB NOT NULL,
    created_s INTEGER NOT NULL,
    expires_s INTEGER NOT NULL
);
CREATE INDEX pds_reserved_key_did ON pds_reserved_key (did);
CREATE INDEX pds_reserved_key_expires ON pds_reserved_key (expires_s)
"""

MIGRATIONS = Migrations(
    "pds",
    (
        Migration(1, "initial tables", _INITIAL),
        Migration(2, "index blob references by record, blobs by CID", _BLOB_LOOKUPS),
        Migration(3, "reserved signing keys", _RESERVED_KEYS),
    ),
)
"""The PDS's schema, step by step (see :mod:`plaza.db.migrations`)."""

_ACCOUNT_COLS = (
    "did, handle, email, password_hash, signing_key, created_at, status, status_at, "
    "delete_after, email_confirmed"
)


def _account(row: tuple[Any, ...] | None) -> AccountRow | None:
    if row is None:
        return None
    return AccountRow(
        did=str(row[0]),
        handle=str(row[1]),
        email=row[2] if row[2] is None else str(row[2]),
        password_hash=str(row[3]),
        signing_key=bytes(row[4]),
        created_at=str(row[5]),
        status=str(row[6]),
        status_at=None if row[7] is None else str(row[7]),
        delete_after=None if row[8] is None else str(row[8]),
        email_confirmed=bool(row[9]),
    )


class PdsStore(RepoTables, BlobTables):
    """The PDS's tables over one :class:`plaza.db.Database`.

    Repository tables (blocks, roots, records) come from :class:`RepoTables`, blob
    metadata from :class:`BlobTables`.
    """

    def __init__(self, db: Database) -> None:
        """Bring ``db`` to the latest schema (:data:`MIGRATIONS`) and use it."""
        self.db = db
        migrate(db, MIGRATIONS)

    @classmethod
    def open(cls, url: str) -> PdsStore:
        return cls(connect(url))

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[PdsStore]:
        with self.db.transaction():
            yield self

    # -- accounts --------------------------------------------------------------------
    def create_account(self, row: AccountRow) -> None:
        """Insert an account; :class:`plaza.db.IntegrityError` if DID, handle or email exists."""
        self.db.execute(
            f"INSERT INTO pds_account ({_ACCOUNT_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                row.did,
                row.handle,
                row.email,
                row.password_hash,
                row.signing_key,
                row.created_at,
                row.status,
                row.status_at,
                row.delete_after,
                int(row.email_confirmed),
            ),
        )

    def get_account(self, did: str) -> AccountRow | None:
        return _account(
            self.db.one(f"SELECT {_ACCOUNT_COLS} FROM pds_account WHERE did = ?", (did,))
        )

    def get_account_by_handle(self, handle: str) -> AccountRow | None:
        sql = f"SELECT {_ACCOUNT_COLS} FROM pds_account WHERE handle = ?"
        return _account(self.db.one(sql, (handle.lower(),)))

    def get_account_by_email(self, email: str) -> AccountRow | None:
        sql = f"SELECT {_ACCOUNT_COLS} FROM pds_account WHERE email = ?"
        return _account(self.db.one(sql, (email.lower(),)))

    def set_status(
        self, did: str, status: str, at: str | None, delete_after: str | None = None
    ) -> None:
        if status not in STATUSES:
            raise ValueError(f"unknown account status {status!r}")
        self.db.execute(
            "UPDATE pds_account SET status = ?, status_at = ?, delete_after = ? WHERE did = ?",
            (status, at, delete_after, did),
        )

    def set_handle(self, did: str, handle: str) -> None:
        self.db.execute("UPDATE pds_account SET handle = ? WHERE did = ?", (handle.lower(), did))

    def set_password(self, did: str, password_hash: str) -> None:
        self.db.execute(
            "UPDATE pds_account SET password_hash = ? WHERE did = ?", (password_hash, did)
        )

    def list_accounts(self, after: str | None, limit: int) -> list[AccountRow]:
        sql = f"SELECT {_ACCOUNT_COLS} FROM pds_account WHERE did > ? ORDER BY did LIMIT ?"
        rows = self.db.query(sql, (after or "", limit))
        return [a for a in map(_account, rows) if a is not None]

    def delete_account(self, did: str) -> None:
        """Remove the account and everything stored for it, except its firehose events."""
        with self.db.transaction():
            for table in (
                "pds_block",
                "pds_record",
                "pds_blob",
                "pds_blob_orphan",
                "pds_record_blob",
                "pds_app_password",
                "pds_refresh_token",
                "pds_email_token",
                "pds_preferences",
                "pds_reserved_key",
                "pds_repo_root",
                "pds_account",
            ):
                self.db.execute(f"DELETE FROM {table} WHERE did = ?", (did,))

    # -- reserved signing keys ---------------------------------------------------------
    def add_reserved_key(
        self, key_did: str, did: str | None, private_key: bytes, now_s: int, expires_s: int
    ) -> None:
        """Keep a reserved key (its public ``did:key``, the DID it is for, if any)."""
        self.db.execute(
            "INSERT INTO pds_reserved_key (key_did, did, private_key, created_s, expires_s) "
            "VALUES (?, ?, ?, ?, ?)",
            (key_did, did, private_key, now_s, expires_s),
        )

    def reserved_key_for(self, did: str, now_s: int) -> str | None:
        """The ``did:key`` of a live reservation made for ``did``, or ``None``."""
        row = self.db.one(
            "SELECT key_did FROM pds_reserved_key WHERE did = ? AND expires_s > ? "
            "ORDER BY created_s LIMIT 1",
            (did, now_s),
        )
        return None if row is None else str(row[0])

    def reserved_key(self, key_did: str, did: str, now_s: int) -> bytes | None:
        """The secret of the live reservation ``key_did``, if it was made for ``did`` or
        for no DID; ``None`` otherwise."""
        row = self.db.one(
            "SELECT private_key FROM pds_reserved_key WHERE key_did = ? AND expires_s > ? "
            "AND (did IS NULL OR did = ?)",
            (key_did, now_s, did),
        )
        return None if row is None else bytes(row[0])

    def count_unbound_reserved_keys(self, now_s: int) -> int:
        row = self.db.one(
            "SELECT COUNT(*) FROM pds_reserved_key WHERE did IS NULL AND expires_s > ?", (now_s,)
        )
        return 0 if row is None else int(row[0])

    def drop_reserved_keys(self, did: str, key_did: str) -> None:
        """Forget the reservations made for ``did`` and the reservation ``key_did``."""
        self.db.execute("DELETE FROM pds_reserved_key WHERE did = ? OR key_did = ?", (did, key_did))

    def prune_reserved_keys(self, now_s: int) -> int:
        return self.db.execute("DELETE FROM pds_reserved_key WHERE expires_s <= ?", (now_s,))

    # -- sessions and app passwords --------------------------------------------------
    def add_refresh_token(self, row: RefreshTokenRow) -> None:
        self.db.execute(
            "INSERT INTO pds_refresh_token (jti, did, app_password, expires_at) "
            "VALUES (?, ?, ?, ?)",
            (row.jti, row.did, row.app_password, row.expires_at),
        )

    def get_refresh_token(self, jti: str) -> RefreshTokenRow | None:
        row = self.db.one(
            "SELECT jti, did, app_password, expires_at FROM pds_refresh_token WHERE jti = ?",
            (jti,),
        )
        if row is None:
            return None
        return RefreshTokenRow(str(row[0]), str(row[1]), row[2], int(row[3]))

    def delete_refresh_token(self, jti: str) -> bool:
        return self.db.execute("DELETE FROM pds_refresh_token WHERE jti = ?", (jti,)) > 0

    def delete_refresh_tokens(self, did: str, app_password: str | None = None) -> None:
        if app_password is None:
            self.db.execute("DELETE FROM pds_refresh_token WHERE did = ?", (did,))
        else:
            self.db.execute(
                "DELETE FROM pds_refresh_token WHERE did = ? AND app_password = ?",
                (did, app_password),
            )

    def prune_refresh_tokens(self, now: int) -> int:
        return self.db.execute("DELETE FROM pds_refresh_token WHERE expires_at < ?", (now,))

    def add_app_password(self, did: str, row: AppPasswordRow) -> None:
        """Insert; :class:`plaza.db.IntegrityError` if the name is taken."""
        self.db.execute(
            "INSERT INTO pds_app_password (did, name, password_hash, privileged, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (did, row.name, row.password_hash, int(row.privileged), row.created_at),
        )

    def list_app_passwords(self, did: str) -> list[AppPasswordRow]:
        rows = self.db.query(
            "SELECT name, password_hash, privileged, created_at FROM pds_app_password "
            "WHERE did = ? ORDER BY created_at, name",
            (did,),
        )
        return [AppPasswordRow(str(n), str(h), bool(p), str(c)) for n, h, p, c in rows]

    def delete_app_password(self, did: str, name: str) -> bool:
        return (
            self.db.execute("DELETE FROM pds_app_password WHERE did = ? AND name = ?", (did, name))
            > 0
        )

    # -- confirmation tokens ---------------------------------------------------------
    def put_email_token(self, did: str, purpose: str, token_hash: str, expires_at: int) -> None:
        self.db.execute(
            "INSERT INTO pds_email_token (did, purpose, token_hash, expires_at) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (did, purpose) DO UPDATE SET "
            "token_hash = excluded.token_hash, expires_at = excluded.expires_at",
            (did, purpose, token_hash, expires_at),
        )

    def get_email_token(self, did: str, purpose: str) -> tuple[str, int] | None:
        row = self.db.one(
            "SELECT token_hash, expires_at FROM pds_email_token WHERE did = ? AND purpose = ?",
            (did, purpose),
        )
        return None if row is None else (str(row[0]), int(row[1]))

    def delete_email_token(self, did: str, purpose: str) -> None:
        self.db.execute("DELETE FROM pds_email_token WHERE did = ? AND purpose = ?", (did, purpose))

    # -- preferences -----------------------------------------------------------------
    def get_preferences(self, did: str) -> str | None:
        row = self.db.one("SELECT body FROM pds_preferences WHERE did = ?", (did,))
        return None if row is None else str(row[0])

    def put_preferences(self, did: str, body: str) -> None:
        self.db.execute(
            "INSERT INTO pds_preferences (did, body) VALUES (?, ?) "
            "ON CONFLICT (did) DO UPDATE SET body = excluded.body",
            (did, body),
        )

    # -- firehose events -------------------------------------------------------------
    def events_after(self, seq: int, limit: int) -> list[EventRow]:
        rows = self.db.query(
            "SELECT seq, did, kind, created_s, frame FROM pds_event WHERE seq > ? "
            "ORDER BY seq LIMIT ?",
            (seq, limit),
        )
        return [EventRow(int(s), str(d), str(k), int(c), bytes(f)) for s, d, k, c, f in rows]

    def seq_bounds(self) -> tuple[int | None, int | None]:
        """``(oldest, newest)`` retained sequence numbers, or ``(None, None)``."""
        row = self.db.one("SELECT MIN(seq), MAX(seq) FROM pds_event")
        if row is None or row[0] is None:
            return None, None
        return int(row[0]), int(row[1])

    def prune_events(self, before_s: int) -> int:
        """Drop events older than ``before_s`` (unix seconds), always keeping the newest."""
        return self.db.execute(
            "DELETE FROM pds_event WHERE created_s < ? AND seq < (SELECT MAX(seq) FROM pds_event)",
            (before_s,),
        )

    # -- usage counters --------------------------------------------------------------
    def add_usage(self, rows: Sequence[tuple[str, int, int]]) -> None:
        """Add ``(did, requests, egress_bytes)`` increments."""
        self.db.executemany(
            "INSERT INTO pds_usage (did, requests, egress_bytes) VALUES (?, ?, ?) "
            "ON CONFLICT (did) DO UPDATE SET requests = pds_usage.requests + excluded.requests, "
            "egress_bytes = pds_usage.egress_bytes + excluded.egress_bytes",
            rows,
        )

    def get_usage(self, did: str) -> tuple[int, int]:
        row = self.db.one("SELECT requests, egress_bytes FROM pds_usage WHERE did = ?", (did,))
        return (0, 0) if row is None else (int(row[0]), int(row[1]))

    def usage_rows(self, after: str | None, limit: int, did: str | None = None) -> list[UsageRow]:
        """Stored usage per account (DID order), from the tables themselves."""
        where = "a.did = ?" if did is not None else "a.did > ?"
        arg = did if did is not None else (after or "")
        rows = self.db.query(
            "SELECT a.did, "
            "(SELECT COUNT(*) FROM pds_record r WHERE r.did = a.did), "
            "(SELECT COALESCE(SUM(LENGTH(b.data)), 0) FROM pds_block b WHERE b.did = a.did), "
            "(SELECT COALESCE(SUM(s.size), 0) FROM pds_blob s WHERE s.did = a.did), "
            "COALESCE(u.requests, 0), COALESCE(u.egress_bytes, 0) "
            f"FROM pds_account a LEFT JOIN pds_usage u ON u.did = a.did WHERE {where} "
            "ORDER BY a.did LIMIT ?",
            (arg, limit),
        )
        return [UsageRow(str(r[0]), *(int(v) for v in r[1:])) for r in rows]
