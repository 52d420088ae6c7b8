"""Shared fixtures: storage backends (SQLite and a real PostgreSQL) and a free port."""

from __future__ import annotations

import contextlib
import os
import socket
import uuid
from collections.abc import Iterator

import pytest

PG_URL = os.environ.get("PLAZA_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def _pg_available() -> str | None:
    try:
        import psycopg

        with psycopg.connect(PG_URL, connect_timeout=3):
            return None
    except Exception as exc:  # noqa: BLE001 - any failure means the service is missing
        return f"PostgreSQL not reachable at {PG_URL}: {exc}"


_PG_MISSING = _pg_available()


@contextlib.contextmanager
def pg_schema(prefix: str) -> Iterator[str]:
    """The URL of a fresh PostgreSQL schema named ``prefix_<random>``, dropped after;
    skips the test when PostgreSQL is not running."""
    if _PG_MISSING:
        pytest.skip(_PG_MISSING)
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        yield f"{PG_URL}?schema={schema}"
    finally:
        import psycopg

        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A fresh, empty database URL on each backend (PostgreSQL gets its own schema)."""
    if request.param == "sqlite":
        yield f"sqlite://{tmp_path / 'test.db'}"
        return
    with pg_schema("t") as url:
        yield url


@pytest.fixture
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
