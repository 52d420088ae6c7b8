"""Ledger fixtures: one store factory per backend (memory, SQLite, a real PostgreSQL)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from plaza.atproto.crypto import PrivateKey
from plaza.ledger import EventStore, MemoryEventStore, SqlEventStore
from tests.conftest import _PG_MISSING, PG_URL

StoreFactory = Callable[[], EventStore]


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, StoreFactory]]:
    """``(name, factory)``: each call of ``factory`` opens another connection to the
    *same* fresh store, so tests can stage two writers."""
    name = request.param
    opened: list[EventStore] = []
    if name == "memory":
        shared = MemoryEventStore()

        def factory() -> EventStore:
            return shared

        yield name, factory
        return
    if name == "sqlite":
        url = f"sqlite://{tmp_path / 'ledger.db'}"
    else:
        if _PG_MISSING:
            pytest.skip(_PG_MISSING)
        schema = f"t_{uuid.uuid4().hex[:12]}"
        url = f"{PG_URL}?schema={schema}"

    def factory() -> EventStore:
        store = SqlEventStore.open(url)
        opened.append(store)
        return store

    yield name, factory
    for s in opened:
        s.close()
    if name == "postgresql":
        import psycopg

        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def store(backend: tuple[str, StoreFactory]) -> EventStore:
    return backend[1]()


@pytest.fixture(scope="session")
def alice() -> PrivateKey:
    return PrivateKey.from_bytes("ES256K", bytes(range(1, 33)))


@pytest.fixture(scope="session")
def bob() -> PrivateKey:
    return PrivateKey.from_bytes("ES256", bytes(range(2, 34)))
