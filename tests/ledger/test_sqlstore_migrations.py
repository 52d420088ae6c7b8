"""The SQL event store upgrades a database made before its schema was versioned, on
SQLite and PostgreSQL: adopted at version 1, its log intact, verifiable and growing.
The DAO and the market keep no tables of their own, so this is their upgrade too."""

from __future__ import annotations

from pathlib import Path

from plaza.atproto.crypto import PrivateKey
from plaza.db import connect
from plaza.ledger import Event, SqlEventStore, sign_checkpoint, sign_event, verify_log
from plaza.ledger.sqlstore import migrations
from plaza.ledger.store import EMPTY_HEAD, Head
from tests.db.helpers import frozen_schema, recorded

UNVERSIONED = frozen_schema(Path(__file__).with_name("schema_unversioned.sql"))


def chain(key: PrivateKey, count: int, head: Head = EMPTY_HEAD) -> list[Event]:
    out = []
    for n in range(count):
        ev = sign_event(
            key,
            seq=head.size,
            prev_hash=head.hash,
            time=1_000 + head.size,
            author_did=key.did_key(),
            type="test.note",
            payload={"n": n},
        )
        out.append(ev)
        head = Head(ev.seq + 1, ev.hash, ev.time)
    return out


def make_unversioned(url: str, prefix: str, events: list[Event], key: PrivateKey) -> None:
    """A database as the unversioned store left it: events, a checkpoint, no record."""
    db = connect(url)
    db.executescript(UNVERSIONED.format(p=prefix))
    report = verify_log((e.seq, e.raw) for e in events)
    checkpoint = sign_checkpoint(
        key, size=len(events), root=report.root, head=events[-1].hash, time=2_000
    )
    with db.transaction():
        db.executemany(
            f"INSERT INTO {prefix}_events (seq, hash, type, author, time, body) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [(e.seq, e.hash, e.type, e.author_did, e.time, e.raw) for e in events],
        )
        db.execute(
            f"INSERT INTO {prefix}_checkpoints (size, body) VALUES (?, ?)",
            (checkpoint.size, checkpoint.encode()),
        )
    db.close()


def test_version_1_is_the_unversioned_schema() -> None:
    step = migrations("ledger").steps[0].step
    assert isinstance(step, str) and step.strip() == UNVERSIONED.format(p="ledger").strip()


def test_an_unversioned_ledger_is_upgraded_and_keeps_its_log(
    db_url: str, alice: PrivateKey
) -> None:
    events = chain(alice, 3)
    make_unversioned(db_url, "ledger", events, alice)
    store = SqlEventStore.open(db_url)
    try:
        steps = migrations("ledger").steps
        assert recorded(store.db, "ledger") == [(m.version, m.name) for m in steps]
        assert list(store.read_raw()) == [(e.seq, e.raw) for e in events]
        assert [c.size for c in store.checkpoints()] == [3]
        assert verify_log(store.read_raw(), store.checkpoints()).ok

        head = store.append(chain(alice, 1, store.head()))
        assert head.size == 4
        assert verify_log(store.read_raw(), store.checkpoints()).ok
    finally:
        store.close()


def test_each_prefix_is_its_own_store(db_url: str, alice: PrivateKey) -> None:
    make_unversioned(db_url, "ledger", chain(alice, 1), alice)
    SqlEventStore.open(db_url).close()
    other = SqlEventStore.open(db_url, prefix="audit")
    try:
        assert recorded(other.db, "audit") == [(1, "initial tables")]
        assert recorded(other.db, "ledger") == [(1, "initial tables")]
        assert other.head() == EMPTY_HEAD
    finally:
        other.close()
