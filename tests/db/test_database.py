"""plaza.db on PostgreSQL: a connection that dies is replaced before the next statement
outside a transaction, never behind the back of a transaction in progress; sessions that
open a new schema at the same moment all connect."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from plaza.db import Database, connect
from plaza.errors import StorageError
from tests.conftest import _PG_MISSING, PG_URL

pytestmark = pytest.mark.skipif(_PG_MISSING is not None, reason=str(_PG_MISSING))


@pytest.fixture
def db() -> Iterator[Database]:
    schema = f"dbre_{uuid.uuid4().hex[:10]}"
    database = connect(f"{PG_URL}?schema={schema}")
    database.executescript("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
    yield database
    database.close()
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _kill(db: Database) -> None:
    pid = db._conn.info.backend_pid
    with psycopg.connect(PG_URL, autocommit=True) as admin:
        # With a timeout, pg_terminate_backend returns once the backend has exited.
        assert admin.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,)).fetchone() == (True,)


def test_a_dead_connection_is_replaced_before_the_next_statement(db: Database) -> None:
    db.execute("INSERT INTO t (id, v) VALUES (1, 'a')")
    _kill(db)
    assert db.query("SELECT v FROM t") == [("a",)]  # the schema is on the new search path
    db.execute("INSERT INTO t (id, v) VALUES (2, 'b')")
    _kill(db)
    with db.transaction():
        db.execute("INSERT INTO t (id, v) VALUES (3, 'c')")
    assert db.scalar("SELECT COUNT(*) FROM t") == 3


def test_a_statement_that_fails_with_its_connection_is_not_retried(db: Database) -> None:
    """Killed while it runs, a statement fails (whether it took effect would be unknown
    in general) and is not sent again; the statement after it gets a new connection."""
    pid = db._conn.info.backend_pid

    def kill() -> None:
        with psycopg.connect(PG_URL, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))

    timer = threading.Timer(0.3, kill)
    timer.start()
    try:
        with pytest.raises(StorageError):
            db.execute("INSERT INTO t (id, v) SELECT 1, 'slow' FROM pg_sleep(3)")
    finally:
        timer.join()
    db.execute("INSERT INTO t (id, v) VALUES (2, 'b')")
    assert db.query("SELECT id FROM t") == [(2,)]


def test_a_transaction_is_never_continued_on_a_new_connection(db: Database) -> None:
    with pytest.raises(StorageError), db.transaction():
        db.execute("INSERT INTO t (id, v) VALUES (1, 'a')")
        _kill(db)
        db.execute("INSERT INTO t (id, v) VALUES (2, 'b')")
    assert db.query("SELECT id FROM t") == []  # neither half landed
    with db.transaction():
        db.execute("INSERT INTO t (id, v) VALUES (3, 'c')")
    assert db.query("SELECT id FROM t") == [(3,)]


def test_a_closed_database_stays_closed(db: Database) -> None:
    db.close()
    with pytest.raises(StorageError):
        db.query("SELECT 1")


def test_sessions_opening_a_new_schema_at_once_all_connect() -> None:
    schema = f"dbnew_{uuid.uuid4().hex[:10]}"
    start = threading.Barrier(4, timeout=60)
    opened: list[Database] = []
    failures: list[BaseException] = []

    def open_schema() -> None:
        try:
            start.wait()
            opened.append(connect(f"{PG_URL}?schema={schema}"))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            failures.append(exc)

    threads = [threading.Thread(target=open_schema) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert failures == []
        assert [d.scalar("SELECT current_schema()") for d in opened] == [schema] * 4
    finally:
        for d in opened:
            d.close()
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
