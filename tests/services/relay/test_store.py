"""The relay's store on SQLite and PostgreSQL: migrations, one-transaction batches,
the replay window, and the state a restart reads back."""

from __future__ import annotations

from pathlib import Path

import pytest

from plaza.db import IntegrityError, SchemaTooNewError, connect, schema_version
from plaza.services.relay.outbox import Outbox
from plaza.services.relay.store import MIGRATIONS, AccountState, Batch, EventRow, RelayStore


def test_opening_applies_the_versioned_schema(db_url: str) -> None:
    store = RelayStore.open(db_url)
    try:
        assert schema_version(store.db, "relay") == MIGRATIONS.latest == 1
    finally:
        store.close()
    again = RelayStore.open(db_url)  # a second opening changes nothing
    try:
        assert schema_version(again.db, "relay") == 1
    finally:
        again.close()


def test_a_batch_lands_whole_and_is_read_back(db_url: str) -> None:
    store = RelayStore.open(db_url)
    try:
        assert store.add_host("pds.example.com", "https://pds.example.com", "seed", 10)
        assert not store.add_host("pds.example.com", "https://pds.example.com", "seed", 11)
        acct = AccountState("did:plc:a", "pds.example.com", "bafyhead", "3kaaa", "bafydata")
        store.flush(
            Batch(
                events=[
                    EventRow(1, "did:plc:a", "#commit", b"one"),
                    EventRow(2, "did:plc:a", "#sync", b"two"),
                ],
                accounts={"did:plc:a": acct},
                cursors={"pds.example.com": 41},
            )
        )
        acct.rev, acct.active, acct.status = "3kaab", False, "desynchronized"
        store.flush(Batch(accounts={"did:plc:a": acct}, cursors={"pds.example.com": 42}))
        assert [h.cursor for h in store.hosts()] == [42]
        assert list(store.accounts()) == [acct]
        assert store.account_counts() == {"pds.example.com": 1}
        assert [(e.seq, e.frame) for e in store.events_after(0, 10)] == [(1, b"one"), (2, b"two")]
        assert store.events_after(1, 10) == [EventRow(2, "did:plc:a", "#sync", b"two")]
        assert store.seq_bounds() == (1, 2)
        assert store.list_accounts("", 10) == [acct]
        assert store.list_accounts("did:plc:a", 10) == []
    finally:
        store.close()


def test_a_failed_batch_leaves_nothing(db_url: str) -> None:
    store = RelayStore.open(db_url)
    try:
        store.add_host("h", "http://h", "seed", 0)
        store.flush(Batch(events=[EventRow(1, "did:plc:a", "#commit", b"x")]))
        acct = AccountState("did:plc:b", "h")
        with pytest.raises(IntegrityError):  # seq 1 again: the whole batch is refused
            store.flush(
                Batch(
                    events=[
                        EventRow(2, "did:plc:b", "#commit", b"y"),
                        EventRow(1, "did:plc:b", "#commit", b"z"),
                    ],
                    accounts={"did:plc:b": acct},
                    cursors={"h": 9},
                )
            )
        assert store.seq_bounds() == (1, 1)
        assert list(store.accounts()) == []
        assert [h.cursor for h in store.hosts()] == [0]
    finally:
        store.close()


def test_the_replay_window_keeps_the_newest(db_url: str) -> None:
    store = RelayStore.open(db_url)
    try:
        store.flush(Batch(events=[EventRow(i, "did:plc:a", "#commit", b"x") for i in range(1, 11)]))
        assert store.prune_events(3) == 7
        assert store.seq_bounds() == (8, 10)
        assert store.prune_events(3) == 0
    finally:
        store.close()


def test_the_outbox_numbers_on_from_the_store(db_url: str) -> None:
    store = RelayStore.open(db_url)
    try:
        outbox = Outbox(store)
        assert outbox.emit("did:plc:a", "#identity", {"did": "did:plc:a"}) == 1
        assert outbox.read_after(0) == []  # nothing is visible before it is written
        assert outbox.flush() == 1 and outbox.last_seq == 1
        outbox.emit("did:plc:a", "#identity", {"did": "did:plc:a"})
        outbox.flush()
        assert [r.seq for r in outbox.read_after(0)] == [1, 2]
        reopened = Outbox(store)  # after a restart: the next number follows the stored one
        assert reopened.last_seq == 2 and [r.seq for r in reopened.read_after(0)] == [1, 2]
        assert reopened.emit("did:plc:a", "#identity", {"did": "did:plc:a"}) == 3
    finally:
        store.close()


def test_unknown_newer_schema_is_refused(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path}/relay.db"
    RelayStore.open(url).close()
    db = connect(url)
    db.execute(
        "INSERT INTO schema_migrations (store, version, name, applied_at) "
        "VALUES ('relay', 9, 'x', 'now')"
    )
    db.close()
    with pytest.raises(SchemaTooNewError):
        RelayStore.open(url)
