"""Helpers for the stores' upgrade tests: frozen schemas and what a database records."""

from __future__ import annotations

from pathlib import Path

from plaza.db import Database


def frozen_schema(path: Path) -> str:
    """The SQL of a frozen schema file, without its leading ``--`` comment lines."""
    lines = path.read_text().splitlines(keepends=True)
    while lines and lines[0].startswith("--"):
        lines.pop(0)
    return "".join(lines)


def recorded(db: Database, store: str) -> list[tuple[int, str]]:
    """``(version, name)`` of every step of ``store`` recorded in ``db``, in order."""
    rows = db.query(
        "SELECT version, name FROM schema_migrations WHERE store = ? ORDER BY version", (store,)
    )
    return [(int(v), str(n)) for v, n in rows]


def index_names(db: Database) -> set[str]:
    """The indexes in ``db`` (on PostgreSQL, in the connection's current schema)."""
    if db.dialect == "sqlite":
        rows = db.query("SELECT name FROM sqlite_master WHERE type = 'index'")
    else:
        rows = db.query("SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()")
    return {str(r[0]) for r in rows}
