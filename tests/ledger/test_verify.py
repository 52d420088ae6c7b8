"""Verification names the first bad event: flipped bytes, reordering, drops, replays."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from plaza.atproto.crypto import PrivateKey
from plaza.db import connect
from plaza.ledger import (
    Combined,
    Event,
    EventRejectedError,
    EventStore,
    Ledger,
    MemoryEventStore,
    SqlEventStore,
    sign_checkpoint,
    verify_log,
)


class Counter:
    """A tiny projection: sums payload ``n``; refuses negative numbers."""

    def __init__(self) -> None:
        self.total = 0

    def check(self, event: Event) -> None:
        if event.payload.get("n", 0) < 0:
            raise EventRejectedError("negative numbers are not allowed here")

    def apply(self, event: Event) -> None:
        self.check(event)
        self.total += event.payload.get("n", 0)

    def fingerprint(self) -> bytes:
        return hashlib.sha256(str(self.total).encode()).digest()


def _build(store: EventStore, key: PrivateKey, count: int = 8) -> Ledger:
    ledger = Ledger(store)
    for i in range(count):
        ledger.record(key, author_did=key.did_key(), type="test.note", payload={"n": i}, time=i)
    return ledger


def _raw(store: EventStore) -> list[tuple[int, bytes]]:
    return list(store.read_raw())


def test_clean_log_verifies(store: EventStore, alice: PrivateKey, bob: PrivateKey) -> None:
    ledger = _build(store, alice)
    ledger.checkpoint(bob, time=9, size=4)
    ledger.checkpoint(bob, time=9)
    report = verify_log(
        _raw(store), store.checkpoints(), projection=Counter(), checkpoint_signers={bob.did_key()}
    )
    assert report.ok, report.problem
    assert report.events == 8
    assert report.checkpoints == 2
    assert report.root == ledger.root()
    assert report.fingerprint == hashlib.sha256(b"28").digest()  # 0+1+...+7


def test_flipped_byte_in_memory(alice: PrivateKey) -> None:
    store = MemoryEventStore()
    _build(store, alice)
    raw = bytearray(_raw(store)[5][1])
    raw[-70] ^= 0x01  # inside the payload/author area, before the signature
    store.tamper(5, bytes(raw))
    report = verify_log(_raw(store))
    assert not report.ok
    assert report.problem is not None and report.problem.seq == 5
    assert report.events == 5


def test_flipped_byte_in_sqlite(tmp_path: Path, alice: PrivateKey) -> None:
    url = f"sqlite://{tmp_path / 'l.db'}"
    store = SqlEventStore.open(url)
    _build(store, alice)
    db = connect(url)
    body = bytearray(db.scalar("SELECT body FROM ledger_events WHERE seq = 3"))
    body[20] ^= 0x40
    db.execute("UPDATE ledger_events SET body = ? WHERE seq = 3", (bytes(body),))
    report = verify_log(_raw(store))
    assert report.problem is not None
    assert report.problem.seq == 3, report.problem


@pytest.mark.parametrize("seq", [0, 3, 7])
def test_every_flipped_byte_of_an_event_is_caught(alice: PrivateKey, seq: int) -> None:
    store = MemoryEventStore()
    _build(store, alice)
    original = _raw(store)
    for i in range(len(original[seq][1])):
        events = list(original)
        raw = bytearray(events[seq][1])
        raw[i] ^= 0x01
        events[seq] = (seq, bytes(raw))
        report = verify_log(events)
        assert report.problem is not None and report.problem.seq == seq, (i, report.problem)


def test_reordered(alice: PrivateKey) -> None:
    store = MemoryEventStore()
    _build(store, alice)
    events = [raw for _, raw in _raw(store)]
    events[2], events[3] = events[3], events[2]
    report = verify_log(enumerate(events))
    assert report.problem is not None and report.problem.seq == 2
    assert report.problem.code == "OutOfOrder"


def test_dropped_in_the_middle(alice: PrivateKey) -> None:
    store = MemoryEventStore()
    _build(store, alice)
    events = [raw for _, raw in _raw(store)]
    del events[4]
    report = verify_log(enumerate(events))
    assert report.problem is not None and report.problem.seq == 4


def test_dropped_from_the_tail_is_caught_by_a_checkpoint(
    alice: PrivateKey, bob: PrivateKey
) -> None:
    store = MemoryEventStore()
    ledger = _build(store, alice)
    ledger.checkpoint(bob, time=9)
    truncated = _raw(store)[:6]
    assert verify_log(truncated).ok  # without a checkpoint, a shorter log looks fine
    report = verify_log(truncated, store.checkpoints())
    assert report.problem is not None
    assert (report.problem.seq, report.problem.code) == (6, "MissingEvent")


def test_replayed_old_event(alice: PrivateKey) -> None:
    store = MemoryEventStore()
    _build(store, alice)
    events = _raw(store)
    events.append((8, events[2][1]))
    report = verify_log(events)
    assert report.problem is not None and report.problem.seq == 8


def test_projection_rejection_names_the_event(alice: PrivateKey) -> None:
    store = MemoryEventStore()
    ledger = _build(store, alice, 3)
    ledger.record(alice, author_did=alice.did_key(), type="test.note", payload={"n": -1}, time=5)
    projection = Counter()
    report = verify_log(_raw(store), projection=projection)
    assert report.problem is not None
    assert (report.problem.seq, report.problem.code) == (3, "EventRejected")
    assert projection.total == 3  # state as of the last good event


def test_untrusted_or_wrong_checkpoint(alice: PrivateKey, bob: PrivateKey) -> None:
    store = MemoryEventStore()
    ledger = _build(store, alice)
    cp = ledger.checkpoint(bob, time=9, size=5)
    report = verify_log(_raw(store), [cp], checkpoint_signers={alice.did_key()})
    assert report.problem is not None and report.problem.code == "UntrustedCheckpoint"
    events = list(store.read())
    lying = sign_checkpoint(bob, size=5, root=bytes(32), head=events[4].hash, time=9)
    report = verify_log(_raw(store), [lying])
    assert report.problem is not None and report.problem.code == "CheckpointMismatch"
    wrong_head = sign_checkpoint(bob, size=5, root=cp.root, head=events[3].hash, time=9)
    report = verify_log(_raw(store), [wrong_head])
    assert report.problem is not None and report.problem.seq == 4


def test_rewritten_history_by_the_author_is_caught_by_the_checkpoint(
    alice: PrivateKey, bob: PrivateKey
) -> None:
    """The author re-signs a different event 2 and every event after it: the chain and
    signatures are valid again, but the checkpoint the ledger key signed is not."""
    honest = MemoryEventStore()
    _build(honest, alice, 6)
    cp = Ledger(honest).checkpoint(bob, time=9)
    forged = MemoryEventStore()
    forger = Ledger(forged)
    for i in range(6):
        n = 100 if i == 2 else i
        forger.record(alice, author_did=alice.did_key(), type="test.note", payload={"n": n}, time=i)
    assert verify_log(_raw(forged)).ok
    report = verify_log(_raw(forged), [cp])
    assert report.problem is not None and report.problem.code == "CheckpointMismatch"


class Positive(Counter):
    """Refuses n >= 5, so two projections can disagree about one event."""

    def check(self, event: Event) -> None:
        if event.payload.get("n", 0) >= 5:
            raise EventRejectedError("five or more is not allowed here")


def test_combined_projections_apply_all_or_nothing(alice: PrivateKey) -> None:
    store = MemoryEventStore()
    _build(store, alice, 7)  # payloads n = 0..6
    counter, positive = Counter(), Positive()
    combined = Combined(counter, positive)
    report = verify_log(_raw(store), projection=combined)
    assert report.problem is not None and report.problem.seq == 5
    # Event 5 was refused by the second part, so the first did not apply it either.
    assert counter.total == positive.total == 0 + 1 + 2 + 3 + 4
    assert combined.keys_for(alice.did_key()) == [alice.public_key]
    assert combined.checkpoint_signers() is None
