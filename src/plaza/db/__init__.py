"""The one storage layer of every Plaza store: a connection and versioned migrations.

:mod:`plaza.db.database` is the connection (SQLite or PostgreSQL, ``?`` placeholders,
portable type words, transactions, error mapping); :mod:`plaza.db.migrations` changes a
store's tables only by numbered steps, applied in order and recorded in the database;
:mod:`plaza.db.notify` wakes other processes when a transaction commits;
:mod:`plaza.db.private` makes a store's directories and files owner-only.
"""

from __future__ import annotations

from plaza.db.database import Database, Dialect, Row, connect, is_postgres_url
from plaza.db.errors import IntegrityError, MigrationFailedError, SchemaTooNewError
from plaza.db.migrations import Migration, Migrations, migrate, schema_version
from plaza.db.notify import listen, notify
from plaza.db.private import private_dirs, private_file

__all__ = [
    "Database",
    "Dialect",
    "IntegrityError",
    "Migration",
    "MigrationFailedError",
    "Migrations",
    "Row",
    "SchemaTooNewError",
    "connect",
    "is_postgres_url",
    "listen",
    "migrate",
    "notify",
    "private_dirs",
    "private_file",
    "schema_version",
]
