"""The entryway's tables, as versioned migrations (see :mod:`plaza.db.migrations` and,
for what each holds, :mod:`plaza.network.entryway.store`)."""

from __future__ import annotations

from typing import Final

from plaza.db import Migration, Migrations

_INITIAL: Final = """
CREATE TABLE IF NOT EXISTS entryway_account (
    did TEXT PRIMARY KEY,
    handle TEXT NOT NULL UNIQUE,
    email TEXT UNIQUE,
    password_hash TEXT NOT NULL,
    host_password BLOB NOT NULL,
    created_at TEXT NOT NULL
)
"""

MIGRATIONS: Final = Migrations("entryway", (Migration(1, "accounts", _INITIAL),))
"""The entryway's schema, step by step."""
