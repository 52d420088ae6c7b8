"""plaza.db.migrations on SQLite and PostgreSQL: steps applied in order, once, each with
its record or not at all; a database newer than the code is refused."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from plaza.db import (
    Database,
    Migration,
    MigrationFailedError,
    Migrations,
    SchemaTooNewError,
    connect,
    migrate,
    schema_version,
)
from plaza.errors import StorageError

T0 = datetime(2026, 5, 1, 9, 30, tzinfo=UTC)

NOTES_V1 = "CREATE TABLE IF NOT EXISTS note (id INTEGER PRIMARY KEY, body TEXT NOT NULL)"
NOTES_V2 = "ALTER TABLE note ADD COLUMN author TEXT; CREATE INDEX note_author ON note (author)"


def notes(*extra: Migration) -> Migrations:
    return Migrations(
        "notes", (Migration(1, "notes", NOTES_V1), Migration(2, "authors", NOTES_V2), *extra)
    )


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = connect(db_url)
    yield database
    database.close()


def recorded(db: Database) -> list[tuple[object, ...]]:
    return db.query("SELECT store, version, name, applied_at FROM schema_migrations ORDER BY 1, 2")


def test_a_fresh_database_gets_every_step_in_order_and_recorded(db: Database) -> None:
    applied = migrate(db, notes(), now=lambda: T0)
    assert [m.version for m in applied] == [1, 2]
    assert recorded(db) == [
        ("notes", 1, "notes", T0.isoformat()),
        ("notes", 2, "authors", T0.isoformat()),
    ]
    db.execute("INSERT INTO note (id, body, author) VALUES (1, 'hi', 'ann')")
    assert schema_version(db, "notes") == 2


def test_running_again_applies_nothing(db: Database) -> None:
    calls: list[int] = []

    def count(d: Database) -> None:
        calls.append(1)
        d.execute("INSERT INTO note (id, body, author) VALUES (1, 'seeded', NULL)")

    steps = notes(Migration(3, "seed", count))
    assert len(migrate(db, steps)) == 3
    assert migrate(db, steps) == []
    assert calls == [1]
    assert len(recorded(db)) == 3
    assert db.scalar("SELECT COUNT(*) FROM note") == 1


def test_a_later_step_upgrades_a_database_at_an_earlier_version(db: Database) -> None:
    migrate(db, Migrations("notes", (Migration(1, "notes", NOTES_V1),)))
    db.execute("INSERT INTO note (id, body) VALUES (1, 'kept')")
    applied = migrate(db, notes())
    assert [m.name for m in applied] == ["authors"]
    assert db.query("SELECT id, body, author FROM note") == [(1, "kept", None)]


def test_tables_made_before_versioning_are_adopted_as_version_1(db: Database) -> None:
    db.executescript(NOTES_V1)  # what the store made before it had migrations
    db.execute("INSERT INTO note (id, body) VALUES (1, 'old')")
    assert [m.version for m in migrate(db, notes())] == [1, 2]
    assert db.query("SELECT id, body, author FROM note") == [(1, "old", None)]


def test_a_database_newer_than_the_code_is_refused(db: Database) -> None:
    migrate(db, notes())
    older_code = Migrations("notes", (Migration(1, "notes", NOTES_V1),))
    with pytest.raises(SchemaTooNewError) as info:
        migrate(db, older_code)
    assert info.value.code == "SchemaTooNew"
    assert "version 2" in info.value.message
    assert schema_version(db, "notes") == 2


def test_a_failing_step_is_rolled_back_and_leaves_the_version(db: Database) -> None:
    broken = "CREATE TABLE tag (name TEXT PRIMARY KEY); INSERT INTO no_such_table VALUES (1)"
    with pytest.raises(MigrationFailedError) as info:
        migrate(db, notes(Migration(3, "tags", broken)))
    assert info.value.code == "MigrationFailed"
    assert "stays at version 2" in info.value.message
    assert schema_version(db, "notes") == 2
    with pytest.raises(StorageError):
        db.query("SELECT name FROM tag")  # the step's first statement was undone too

    def half(d: Database) -> None:
        d.execute("INSERT INTO note (id, body) VALUES (7, 'half')")
        raise ValueError("a bug in the step")

    with pytest.raises(MigrationFailedError):
        migrate(db, notes(Migration(3, "half", half)))
    assert db.scalar("SELECT COUNT(*) FROM note") == 0
    fixed = "CREATE TABLE tag (name TEXT PRIMARY KEY)"
    assert [m.name for m in migrate(db, notes(Migration(3, "tags", fixed)))] == ["tags"]


def test_stores_in_one_database_have_their_own_versions(db: Database) -> None:
    migrate(db, notes())
    other = Migrations("other", (Migration(1, "things", "CREATE TABLE thing (id INTEGER)"),))
    assert len(migrate(db, other)) == 1
    assert (schema_version(db, "notes"), schema_version(db, "other")) == (2, 1)


def test_concurrent_openers_apply_each_step_once(db_url: str) -> None:
    ran: list[str] = []

    def seed(d: Database) -> None:
        ran.append(threading.current_thread().name)
        # A second run would violate the key: the test fails either way.
        d.execute("INSERT INTO note (id, body) VALUES (1, 'once')")

    steps = notes(Migration(3, "seed", seed))
    databases = [connect(db_url) for _ in range(4)]
    start = threading.Barrier(len(databases), timeout=60)
    failures: list[BaseException] = []

    def opener(database: Database) -> None:
        try:
            start.wait()
            migrate(database, steps)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            failures.append(exc)
        finally:
            database.close()

    threads = [threading.Thread(target=opener, args=(d,)) for d in databases]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert len(ran) == 1
    check = connect(db_url)
    try:
        assert [r[1] for r in recorded(check)] == [1, 2, 3]
        assert check.scalar("SELECT COUNT(*) FROM note") == 1
    finally:
        check.close()


@pytest.mark.parametrize("versions", [[2], [1, 3], [2, 1], [1, 1]])
def test_steps_must_be_numbered_from_one_without_gaps(versions: list[int]) -> None:
    with pytest.raises(ValueError, match="numbered"):
        Migrations("bad", tuple(Migration(v, f"v{v}", "SELECT 1") for v in versions))
