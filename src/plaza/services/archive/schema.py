"""The archive's tables, as versioned migrations (see :mod:`plaza.db.migrations` and,
for what each table holds, :mod:`plaza.services.archive.store`)."""

from __future__ import annotations

from typing import Final

from plaza.db import Database, Migration, Migrations

_INITIAL: Final = """
CREATE TABLE IF NOT EXISTS archive_repo (
    id SERIAL_PK,
    did TEXT NOT NULL UNIQUE,
    commit_cid BLOB,
    rev TEXT,
    data_cid BLOB,
    active INTEGER NOT NULL DEFAULT 1,
    status TEXT,
    resync INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_try DOUBLE PRECISION NOT NULL DEFAULT 0,
    last_error TEXT
);
CREATE TABLE IF NOT EXISTS archive_block (
    repo INTEGER NOT NULL,
    cid BLOB NOT NULL,
    rev TEXT NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (repo, cid)
) {compact};
CREATE TABLE IF NOT EXISTS archive_record (
    repo INTEGER NOT NULL,
    path TEXT NOT NULL,
    cid BLOB NOT NULL,
    PRIMARY KEY (repo, path)
) {compact};
CREATE INDEX IF NOT EXISTS archive_record_by_cid ON archive_record (repo, cid);
CREATE TABLE IF NOT EXISTS archive_blob_ref (
    repo INTEGER NOT NULL,
    path TEXT NOT NULL,
    cid BLOB NOT NULL,
    rev TEXT NOT NULL,
    PRIMARY KEY (repo, path, cid)
) {compact};
CREATE INDEX IF NOT EXISTS archive_blob_ref_by_cid ON archive_blob_ref (repo, cid);
CREATE TABLE IF NOT EXISTS archive_blob (
    repo INTEGER NOT NULL,
    cid BLOB NOT NULL,
    state TEXT NOT NULL,
    mime TEXT,
    size INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_try DOUBLE PRECISION NOT NULL DEFAULT 0,
    last_error TEXT,
    PRIMARY KEY (repo, cid)
) {compact};
CREATE INDEX IF NOT EXISTS archive_blob_by_state ON archive_blob (state, next_try);
CREATE TABLE IF NOT EXISTS archive_cursor (
    source TEXT PRIMARY KEY,
    seq INTEGER NOT NULL
)
"""


def _create_tables(db: Database) -> None:
    """The tables of version 1. Times are ``DOUBLE PRECISION`` (PostgreSQL's ``REAL``
    is a 4-byte float: a Unix time in it is off by up to a minute). On SQLite the
    tables keyed by their primary key are ``WITHOUT ROWID``: stored in that key's
    order, with no second copy of the key in a separate index (a third less space per
    block)."""
    db.executescript(_INITIAL.format(compact="WITHOUT ROWID" if db.dialect == "sqlite" else ""))


MIGRATIONS: Final = Migrations("archive", (Migration(1, "initial tables", _create_tables),))
"""The archive's schema, step by step (see :mod:`plaza.db.migrations`)."""
