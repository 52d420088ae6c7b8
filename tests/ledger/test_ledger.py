"""The Ledger over every backend: signature checks on append, retries, checkpoints, proofs."""

from __future__ import annotations

import pytest

from plaza.atproto.crypto import PrivateKey
from plaza.ledger import (
    AppendConflictError,
    CheckpointError,
    EventSignatureError,
    EventStore,
    Ledger,
    ProofError,
    UnknownAuthorError,
    event_leaf,
    merkle,
    sign_event,
)


def _note(ledger: Ledger, key: PrivateKey, n: int, time: int = 1_000) -> None:
    ledger.record(key, author_did=key.did_key(), type="test.note", payload={"n": n}, time=time)


def test_append_checks_signatures(store: EventStore, alice: PrivateKey, bob: PrivateKey) -> None:
    ledger = Ledger(store)
    head = ledger.head()
    forged = sign_event(
        bob,
        seq=head.size,
        prev_hash=head.hash,
        time=1,
        author_did=alice.did_key(),
        type="test.note",
        payload={},
    )
    with pytest.raises(EventSignatureError):
        ledger.append(forged)
    unknown = sign_event(
        bob,
        seq=0,
        prev_hash=head.hash,
        time=1,
        author_did="did:plc:ewvi7nxzyoun6zhxrhs64oiz",
        type="test.note",
        payload={},
    )
    with pytest.raises(UnknownAuthorError):
        ledger.append(unknown)
    assert len(ledger) == 0
    _note(ledger, alice, 1)
    assert [e.payload for e in ledger.read()] == [{"n": 1}]


def test_build_never_goes_back_in_time(store: EventStore, alice: PrivateKey) -> None:
    ledger = Ledger(store)
    _note(ledger, alice, 1, time=5_000)
    ev = ledger.build(alice, author_did=alice.did_key(), type="test.note", payload={}, time=10)
    assert ev.time == 5_000


def test_stale_build_conflicts(store: EventStore, alice: PrivateKey) -> None:
    ledger = Ledger(store)
    stale = ledger.build(alice, author_did=alice.did_key(), type="test.note", payload={}, time=1)
    _note(ledger, alice, 1)
    with pytest.raises(AppendConflictError):
        ledger.append(stale)
    assert len(ledger) == 1


def test_checkpoints_and_proofs(store: EventStore, alice: PrivateKey, bob: PrivateKey) -> None:
    ledger = Ledger(store)
    for i in range(11):
        _note(ledger, alice, i)
    cp5 = ledger.checkpoint(bob, time=2_000, size=5)
    cp11 = ledger.checkpoint(bob, time=3_000)
    assert [c.size for c in store.checkpoints()] == [5, 11]
    cp11.verify_signature()
    assert cp11.signer == bob.did_key()
    events = list(ledger.read())
    assert cp11.head == events[-1].hash
    assert cp11.root == merkle.root([event_leaf(e) for e in events])
    # A replica that holds only cp5 checks that cp11 extends it ...
    merkle.verify_consistency(5, 11, cp5.root, cp11.root, ledger.consistency_proof(5, 11))
    # ... and that event 7 is in the log, with log2(11) hashes.
    proof = ledger.inclusion_proof(7, 11)
    merkle.verify_inclusion(7, 11, event_leaf(events[7]), proof, cp11.root)
    with pytest.raises(ProofError):
        merkle.verify_inclusion(7, 11, event_leaf(events[6]), proof, cp11.root)
    with pytest.raises(CheckpointError):
        ledger.checkpoint(bob, time=1, size=12)
