"""Versioned schema migrations: a store's tables change only by numbered steps, applied
in order and recorded in the database.

Theory of operation. A store declares its :class:`Migrations`: its name and the steps
numbered 1, 2, 3, ... with no gaps. Opening the store calls :func:`migrate`, which

1. creates the ``schema_migrations`` table if it is missing (one row per applied step:
   store, version, name, time applied; this table's own shape never changes);
2. reads the store's version, the highest one recorded (0 for none), and refuses a
   database whose version is newer than the code's last step
   (:class:`~plaza.db.errors.SchemaTooNewError`);
3. applies each later step in its own transaction together with its row, so a step
   lands with its record or not at all (:class:`~plaza.db.errors.MigrationFailedError`,
   the version unchanged).

Every transaction takes one lock first (SQLite's write lock, as ``BEGIN IMMEDIATE``
does; a transaction-scoped PostgreSQL advisory lock) and reads the version again under
it, so openers in several processes apply each step exactly once: the second waits and
then finds it recorded.

Version 1 of a store is the schema it created before migrations were versioned, written
with ``IF NOT EXISTS``: on a database made then (the tables exist, nothing recorded) it
changes nothing and is recorded, so that database is adopted at version 1 and upgraded
from there. A released step is never edited; a change to the schema is a new step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from plaza.db.database import Database
from plaza.db.errors import MigrationFailedError, SchemaTooNewError

_TABLE: Final = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    store TEXT NOT NULL,
    version INTEGER NOT NULL,
    name TEXT NOT NULL,
    applied_at TEXT NOT NULL,
    PRIMARY KEY (store, version)
)
"""

# ASCII "plazamig". Any constant works if every Plaza process uses it. One key for every
# store and schema: migrations are rare and short, so openers may queue behind each other.
_PG_LOCK: Final = 0x706C617A616D6967

Step = str | Callable[[Database], None]
"""A portable SQL script (statements separated by ``;``, run with
:meth:`Database.executescript`), or a function that changes the database through the
:class:`Database` it is given (for data changes or SQLite table rebuilds)."""


@dataclass(frozen=True)
class Migration:
    """One numbered step of a store's schema."""

    version: int
    name: str
    step: Step


@dataclass(frozen=True)
class Migrations:
    """A store's steps, numbered 1 to :attr:`latest` in order."""

    store: str
    steps: tuple[Migration, ...]

    def __post_init__(self) -> None:
        if not self.store:
            raise ValueError("a store needs a name")
        numbers = [m.version for m in self.steps]
        if numbers != list(range(1, len(numbers) + 1)):
            raise ValueError(f"{self.store}: steps must be numbered 1, 2, 3, ...; got {numbers}")

    @property
    def latest(self) -> int:
        return len(self.steps)


def schema_version(db: Database, store: str) -> int:
    """The highest version of ``store`` recorded in ``db`` (0 if none), creating the
    ``schema_migrations`` table if it is missing."""
    with db.transaction():
        _lock(db)
        return _recorded(db, store)


def migrate(
    db: Database, migrations: Migrations, *, now: Callable[[], datetime] | None = None
) -> list[Migration]:
    """Bring ``db`` to the last step of ``migrations``; return the steps applied now.

    Raises :class:`SchemaTooNewError` if ``db`` records a later version than the last
    step, and :class:`MigrationFailedError` if a step fails (that step is rolled back;
    the steps before it stay applied and recorded). ``now`` gives the time recorded
    with each step (default: the system clock, in UTC). Call it outside any
    transaction: each step commits on its own.
    """
    clock = now or (lambda: datetime.now(UTC))
    store = migrations.store
    current = schema_version(db, store)
    if current > migrations.latest:
        raise SchemaTooNewError(
            f"the database holds {store} schema version {current}, but this Plaza knows "
            f"versions up to {migrations.latest}; run a Plaza at least as new as the one "
            "that upgraded it"
        )
    applied: list[Migration] = []
    for migration in migrations.steps[current:]:
        if _apply(db, store, migration, clock):
            applied.append(migration)
    return applied


def _apply(db: Database, store: str, migration: Migration, clock: Callable[[], datetime]) -> bool:
    """Apply one step unless another opener has; True if this call applied it."""
    try:
        with db.transaction():
            _lock(db)
            current = _recorded(db, store)
            if current >= migration.version:
                return False
            if isinstance(migration.step, str):
                db.executescript(migration.step)
            else:
                migration.step(db)
            db.execute(
                "INSERT INTO schema_migrations (store, version, name, applied_at) "
                "VALUES (?, ?, ?, ?)",
                (store, migration.version, migration.name, clock().isoformat()),
            )
    except Exception as exc:
        raise MigrationFailedError(
            f"{store} migration {migration.version} ({migration.name}) failed and was "
            f"rolled back; the database stays at version {migration.version - 1}: {exc}"
        ) from exc
    return True


def _lock(db: Database) -> None:
    """Inside a transaction: hold the migration lock until its end, then make sure the
    table exists (two sessions creating it at once would collide on PostgreSQL)."""
    if db.dialect == "postgresql":
        db.scalar("SELECT pg_advisory_xact_lock(?)", (_PG_LOCK,))
    # SQLite: the transaction's BEGIN IMMEDIATE already holds the database's write lock.
    db.executescript(_TABLE)


def _recorded(db: Database, store: str) -> int:
    return int(
        db.scalar("SELECT MAX(version) FROM schema_migrations WHERE store = ?", (store,)) or 0
    )
