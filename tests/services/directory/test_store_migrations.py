"""The directory's store upgrades a database made before its schema was versioned, on
SQLite and PostgreSQL: adopted at version 1, its audit logs intact and still growing."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from plaza.atproto.plc import (
    PlcState,
    apply_operation,
    create_update,
    format_timestamp,
    operation_cid,
)
from plaza.db import connect
from plaza.services.directory import DirectoryStore, HandleTakenError
from plaza.services.directory.store import MIGRATIONS
from tests.db.helpers import frozen_schema, recorded
from tests.services.directory.helpers import T0, Identity, identity

UNVERSIONED = frozen_schema(Path(__file__).with_name("schema_unversioned.sql"))


def make_unversioned(url: str, people: list[Identity]) -> None:
    """A database as the unversioned store left it: each DID's genesis, no record."""
    db = connect(url)
    db.executescript(UNVERSIONED)
    with db.transaction():
        for person in people:
            applied = apply_operation(PlcState(person.did), person.genesis, T0)
            entry = applied.entry
            db.execute("INSERT INTO plc_dids (did, head) VALUES (?, ?)", (person.did, entry.cid))
            db.execute(
                "INSERT INTO plc_operations (did, cid, operation, key_index, nullified, "
                "created_at) VALUES (?, ?, ?, ?, 0, ?)",
                (person.did, entry.cid, json.dumps(entry.operation.to_json()),
                 applied.key_index, format_timestamp(entry.created_at)),
            )  # fmt: skip
    db.close()


def test_version_1_is_the_unversioned_schema() -> None:
    step = MIGRATIONS.steps[0].step
    assert isinstance(step, str) and step.strip() == UNVERSIONED.strip()


def test_an_unversioned_database_is_upgraded_and_keeps_its_logs(db_url: str) -> None:
    alice, bob = identity("alice.test"), identity("bob.test")
    make_unversioned(db_url, [alice, bob])
    store = DirectoryStore.open(db_url)
    try:
        assert recorded(store.db, "directory") == [(m.version, m.name) for m in MIGRATIONS.steps]
        state = store.state(alice.did)
        assert [e.cid for e in state.entries] == [str(operation_cid(alice.genesis))]
        assert state.data is not None and state.data.handle == "alice.test"
        assert [op.seq for op in store.export()] == [1, 2]

        update = create_update(alice.genesis, alice.pds, handle="alice2.test")
        store.submit(alice.did, update, T0 + timedelta(minutes=1))
        moved = store.state(alice.did)
        assert moved.data is not None and moved.data.handle == "alice2.test"
        assert [(op.seq, op.entry.did) for op in store.export(after=2)] == [(3, alice.did)]
    finally:
        store.close()


def test_the_upgrade_fills_the_handle_claims_from_every_head(db_url: str) -> None:
    alice, bob = identity("alice.test"), identity("bob.test")
    # Two DIDs claiming one handle, as a directory without claims could accept.
    twin = identity("alice.test", "https://pds-two.example")
    make_unversioned(db_url, [alice, bob, twin])
    store = DirectoryStore.open(db_url)
    try:
        assert store.resolve_handle("bob.test") == bob.did
        assert store.resolve_handle("alice.test") == alice.did  # the earliest claim wins
        moved = create_update(bob.genesis, bob.pds, handle="alice.test")
        with pytest.raises(HandleTakenError):
            store.submit(bob.did, moved, T0 + timedelta(minutes=1))
    finally:
        store.close()
