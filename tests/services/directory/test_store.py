"""The directory's store on SQLite and a real PostgreSQL: appends, recovery, races, export."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import timedelta

import pytest

from plaza.atproto.plc import (
    PlcDidNotFoundError,
    PlcError,
    PlcKeyPriorityError,
    PlcPrevNotFoundError,
    PlcSignatureError,
    PlcState,
    apply_operation,
    create_tombstone,
    create_update,
    operation_cid,
    sign_operation,
    validate_audit_log,
)
from plaza.errors import ConflictError
from plaza.services.directory import DirectoryStore
from plaza.services.directory.store import TooManyOperationsError
from tests.services.directory.helpers import T0, identity, key


@pytest.fixture
def store(db_url: str):  # type: ignore[no-untyped-def]
    s = DirectoryStore.open(db_url)
    yield s
    s.close()


def _snapshot(store: DirectoryStore, did: str) -> tuple[object, object]:
    return [e.to_json() for e in store.audit_log(did)], store.export(0, 1000)


def test_create_update_and_reopen(store: DirectoryStore, db_url: str) -> None:
    alice = identity("alice.test")
    store.submit(alice.did, alice.genesis, T0)
    update = create_update(alice.genesis, alice.pds, handle="alice2.test")
    store.submit(alice.did, update, T0 + timedelta(minutes=1))
    state = store.state(alice.did)
    assert [e.cid for e in state.entries] == [
        str(operation_cid(alice.genesis)),
        str(operation_cid(update)),
    ]
    assert state.key_indexes == (1, 1)
    assert state.data is not None and state.data.handle == "alice2.test"
    # A second connection (a restarted directory) sees the same log and derives the same.
    other = DirectoryStore.open(db_url)
    try:
        assert other.state(alice.did) == state
        assert validate_audit_log(alice.did, [e.to_json() for e in other.audit_log(alice.did)])
    finally:
        other.close()
    unknown = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"
    assert store.state(unknown) == PlcState(unknown)


def test_recovery_is_persisted(store: DirectoryStore) -> None:
    bob = identity("bob.test")
    store.submit(bob.did, bob.genesis, T0)
    hijack = create_update(bob.genesis, bob.pds, rotation_keys=[bob.pds.did_key()])
    store.submit(bob.did, hijack, T0 + timedelta(hours=1))
    recovery = create_update(bob.genesis, bob.recovery, handle="bob-again.test")
    applied = store.submit(bob.did, recovery, T0 + timedelta(hours=30))
    assert applied.nullified == (str(operation_cid(hijack)),)
    state = store.state(bob.did)
    assert [e.nullified for e in state.entries] == [False, True, False]
    assert state.data is not None and state.data.handle == "bob-again.test"
    assert validate_audit_log(bob.did, [e.to_json() for e in state.entries]) == state
    # The stored key index of the recovery op rules out any further fork.
    with pytest.raises(PlcKeyPriorityError):
        store.submit(
            bob.did,
            create_update(bob.genesis, bob.recovery, handle="x.test"),
            T0 + timedelta(hours=31),
        )


def test_refused_operations_change_nothing(store: DirectoryStore) -> None:
    carol = identity("carol.test")
    store.submit(carol.did, carol.genesis, T0)
    before = _snapshot(store, carol.did)
    honest = create_update(carol.genesis, carol.pds, handle="evil.test")
    bad_sig = sign_operation(replace(honest, sig=None), key("stranger"))
    dave = identity("dave.test")
    cases: list[tuple[str, object, type[PlcError]]] = [
        (carol.did, bad_sig, PlcSignatureError),
        (carol.did, create_update(dave.genesis, dave.pds, handle="d.test"), PlcPrevNotFoundError),
        (dave.did, create_tombstone(dave.genesis, dave.pds), PlcDidNotFoundError),
    ]
    for did, op, error in cases:
        with pytest.raises(error):
            store.submit(did, op, T0 + timedelta(minutes=5))  # type: ignore[arg-type]
    assert _snapshot(store, carol.did) == before
    assert not store.state(dave.did).exists


def test_commit_refuses_a_decision_made_on_a_stale_log(store: DirectoryStore) -> None:
    erin = identity("erin.test")
    empty = store.state(erin.did)
    first = apply_operation(empty, erin.genesis, T0)
    store.commit(first)
    with pytest.raises(ConflictError, match="created by another"):
        store.commit(apply_operation(empty, erin.genesis, T0))
    state = store.state(erin.did)
    a = apply_operation(state, create_update(erin.genesis, erin.pds, handle="a.test"), T0)
    b = apply_operation(state, create_update(erin.genesis, erin.pds, handle="b.test"), T0)
    store.commit(a)
    before = _snapshot(store, erin.did)
    with pytest.raises(ConflictError, match="changed while"):
        store.commit(b)
    assert _snapshot(store, erin.did) == before


def test_racing_submissions_on_one_prev_fork_nothing(db_url: str) -> None:
    frank = identity("frank.test")
    setup = DirectoryStore.open(db_url)
    setup.submit(frank.did, frank.genesis, T0)
    racers = 6
    stores = [DirectoryStore.open(db_url) for _ in range(racers)]
    ops = [create_update(frank.genesis, frank.pds, handle=f"f{i}.test") for i in range(racers)]
    barrier = threading.Barrier(racers)
    outcomes: list[str] = []

    def race(i: int) -> None:
        barrier.wait()
        try:
            stores[i].submit(frank.did, ops[i], T0 + timedelta(seconds=1))
            outcomes.append("accepted")
        except (PlcError, ConflictError) as exc:
            outcomes.append(exc.code)

    threads = [threading.Thread(target=race, args=(i,)) for i in range(racers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert outcomes.count("accepted") == 1, outcomes
    assert set(outcomes) <= {"accepted", "InsufficientKeyPriority", "Conflict"}
    state = setup.state(frank.did)
    assert len(state.entries) == 2 and not any(e.nullified for e in state.entries)
    validate_audit_log(frank.did, [e.to_json() for e in state.entries])
    for s in [setup, *stores]:
        s.close()


def test_export_pages_in_sequence_order(store: DirectoryStore) -> None:
    people = [identity(f"p{i}.test") for i in range(4)]
    expected = []
    for i, person in enumerate(people):
        store.submit(person.did, person.genesis, T0 + timedelta(seconds=i))
        expected.append(str(operation_cid(person.genesis)))
    update = create_update(people[0].genesis, people[0].pds, handle="p0b.test")
    store.submit(people[0].did, update, T0 + timedelta(seconds=10))
    expected.append(str(operation_cid(update)))

    seen, after = [], 0
    while page := store.export(after, 2):
        assert len(page) <= 2
        assert [r.seq for r in page] == sorted(r.seq for r in page)
        assert page[0].seq > after
        seen.extend(r.entry.cid for r in page)
        after = page[-1].seq
    assert seen == expected
    by_time = store.export_by_time(None, 1000)
    assert [e.cid for e in by_time] == expected
    later = store.export_by_time(T0 + timedelta(seconds=1), 2)
    assert [e.cid for e in later] == expected[2:4]
    assert len(store.export(0, 5000)) == 5  # count is capped, not an error


def test_a_dids_log_is_bounded(db_url: str) -> None:
    """Every read of a DID parses its whole log: its owner must not grow it without end
    (each operation costs them only a signature)."""
    store = DirectoryStore.open(db_url, max_ops_per_did=3)
    try:
        dora = identity("dora.test")
        ops = [dora.genesis]
        for i in range(3):
            ops.append(create_update(ops[-1], dora.pds, handle=f"dora{i}.test"))
        for i, op in enumerate(ops[:3]):
            store.submit(dora.did, op, T0 + timedelta(minutes=i))
        before = _snapshot(store, dora.did)
        with pytest.raises(TooManyOperationsError, match="at most 3"):
            store.submit(dora.did, ops[3], T0 + timedelta(minutes=5))
        assert _snapshot(store, dora.did) == before
    finally:
        store.close()
