"""The one conformance suite every event store passes: memory, SQLite and PostgreSQL.

Each test runs once per backend (the ``backend`` fixture in tests/ledger/conftest.py).
Two "writers" are two connections to the same store, as two processes would be.
"""

from __future__ import annotations

import itertools
import threading

import pytest

from plaza.atproto.crypto import PrivateKey
from plaza.ledger import (
    EMPTY_HEAD,
    GENESIS_PREV,
    AppendConflictError,
    Event,
    EventNotFoundError,
    EventStore,
    InvalidEventError,
    Ledger,
    Retry,
    sign_checkpoint,
    sign_event,
)
from plaza.ledger.store import Head
from tests.ledger.conftest import StoreFactory


def _event(key: PrivateKey, head: Head, n: int = 0, time: int = 1_000) -> Event:
    return sign_event(
        key,
        seq=head.size,
        prev_hash=head.hash,
        time=max(time, head.time),
        author_did=key.did_key(),
        type="test.note",
        payload={"n": n},
    )


def _fill(store: EventStore, key: PrivateKey, count: int) -> list[Event]:
    out = []
    for i in range(count):
        ev = _event(key, store.head(), i, time=1_000 + i)
        store.append([ev])
        out.append(ev)
    return out


class TestEventStoreConformance:
    def test_empty_store(self, store: EventStore) -> None:
        assert store.head() == EMPTY_HEAD
        assert len(store) == 0
        assert list(store.read()) == []
        assert store.hashes() == []
        assert store.checkpoints() == []
        with pytest.raises(EventNotFoundError):
            store.get(0)

    def test_append_and_read_back(self, store: EventStore, alice: PrivateKey) -> None:
        events = _fill(store, alice, 5)
        head = store.head()
        assert head == Head(5, events[-1].hash, events[-1].time)
        assert list(store.read()) == events
        assert [raw for _, raw in store.read_raw()] == [e.raw for e in events]
        assert store.get(3) == events[3]
        assert list(store.read(1, 3)) == events[1:3]
        assert store.hashes(2) == [e.hash for e in events[2:]]
        assert events[0].prev_hash == GENESIS_PREV
        assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(events))

    def test_positions_past_any_integer_column_read_nothing(
        self, store: EventStore, alice: PrivateKey
    ) -> None:
        """A reader's position comes from outside (an HTTP query): a huge one is simply
        past the end, not an overflow in the database driver."""
        events = _fill(store, alice, 2)
        huge = 10**30
        assert list(store.read(huge, huge + 100)) == []
        assert list(store.read(1, huge)) == events[1:]
        assert store.hashes(huge) == [] and store.hashes(0, huge) == [e.hash for e in events]
        with pytest.raises(EventNotFoundError):
            store.get(huge)

    def test_run_is_atomic(self, store: EventStore, alice: PrivateKey) -> None:
        first = _event(alice, store.head(), 0)
        second = _event(alice, Head(1, first.hash, first.time), 1)
        broken = _event(alice, Head(2, b"\x01" * 32, first.time), 2)  # links to nothing
        with pytest.raises(AppendConflictError):
            store.append([first, second, broken])
        assert store.head() == EMPTY_HEAD
        store.append([first, second])
        assert list(store.read()) == [first, second]

    def test_taken_position_conflicts_and_changes_nothing(
        self, store: EventStore, alice: PrivateKey, bob: PrivateKey
    ) -> None:
        events = _fill(store, alice, 3)
        stale = _event(bob, Head(2, events[1].hash, events[1].time), 99)
        with pytest.raises(AppendConflictError) as info:
            store.append([stale])
        assert info.value.code == "AppendConflict"
        assert info.value.status == 409
        assert list(store.read()) == events

    def test_gap_is_refused(self, store: EventStore, alice: PrivateKey) -> None:
        events = _fill(store, alice, 2)
        gap = _event(alice, Head(3, events[-1].hash, events[-1].time))
        with pytest.raises(InvalidEventError, match="gap"):
            store.append([gap])
        assert len(store) == 2

    def test_foreign_history_is_refused(self, store: EventStore, alice: PrivateKey) -> None:
        _fill(store, alice, 2)
        fork = _event(alice, Head(2, b"\x07" * 32, 5_000))
        with pytest.raises(AppendConflictError, match="different history"):
            store.append([fork])
        assert len(store) == 2

    def test_time_never_runs_backwards(self, store: EventStore, alice: PrivateKey) -> None:
        store.append([_event(alice, store.head(), time=5_000)])
        head = store.head()
        early = sign_event(
            alice,
            seq=head.size,
            prev_hash=head.hash,
            time=4_999,
            author_did=alice.did_key(),
            type="test.note",
            payload={},
        )
        with pytest.raises(InvalidEventError, match="backwards"):
            store.append([early])
        assert len(store) == 1

    def test_second_connection_sees_the_same_log(
        self, backend: tuple[str, StoreFactory], alice: PrivateKey
    ) -> None:
        one = backend[1]()
        events = _fill(one, alice, 4)
        two = backend[1]()
        assert list(two.read()) == events
        assert two.head() == one.head()

    def test_checkpoints(self, store: EventStore, alice: PrivateKey) -> None:
        events = _fill(store, alice, 3)
        cp1 = sign_checkpoint(alice, size=1, root=b"\x01" * 32, head=events[0].hash, time=7)
        cp3 = sign_checkpoint(alice, size=3, root=b"\x03" * 32, head=events[2].hash, time=8)
        store.add_checkpoint(cp3)
        store.add_checkpoint(cp1)
        store.add_checkpoint(cp1)  # storing the same checkpoint again is a no-op
        assert store.checkpoints() == [cp1, cp3]
        assert store.latest_checkpoint() == cp3
        other = sign_checkpoint(alice, size=3, root=b"\x09" * 32, head=events[2].hash, time=8)
        with pytest.raises(AppendConflictError):
            store.add_checkpoint(other)
        assert store.checkpoints() == [cp1, cp3]

    def test_two_writers_at_one_position(
        self, backend: tuple[str, StoreFactory], alice: PrivateKey, bob: PrivateKey
    ) -> None:
        w1, w2 = backend[1](), backend[1]()
        _fill(w1, alice, 2)
        head = w1.head()
        assert w2.head() == head
        mine, theirs = _event(alice, head, 100), _event(bob, head, 200)
        barrier = threading.Barrier(2)
        results: dict[str, BaseException | None] = {}

        def write(name: str, store: EventStore, ev: Event) -> None:
            barrier.wait()
            try:
                store.append([ev])
                results[name] = None
            except BaseException as exc:  # noqa: BLE001 - recorded and asserted below
                results[name] = exc

        threads = [
            threading.Thread(target=write, args=("w1", w1, mine)),
            threading.Thread(target=write, args=("w2", w2, theirs)),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        errors = [e for e in results.values() if e is not None]
        assert len(results) == 2
        assert len(errors) == 1, results
        assert isinstance(errors[0], AppendConflictError)
        winner = mine if results["w1"] is None else theirs
        loser_store, loser_event = (w2, theirs) if winner is mine else (w1, mine)
        assert w1.get(2) == winner
        assert len(w1) == 3
        # Nothing lost: the loser rebuilds at the new head and appends.
        retry = _event(
            bob if loser_event is theirs else alice, loser_store.head(), loser_event.payload["n"]
        )
        loser_store.append([retry])
        assert [e.payload["n"] for e in w1.read(2)] == [winner.payload["n"], retry.payload["n"]]

    def test_many_writers_with_retry_lose_nothing(
        self, backend: tuple[str, StoreFactory], alice: PrivateKey, bob: PrivateKey
    ) -> None:
        patient = Retry(attempts=200)
        writers = [(Ledger(backend[1](), retry=patient), key) for key in (alice, bob, alice)]
        per_writer = 8

        def run(idx: int) -> None:
            ledger, key = writers[idx]
            for i in range(per_writer):
                ledger.record(
                    key,
                    author_did=key.did_key(),
                    type="test.note",
                    payload={"w": idx, "i": i},
                    time=1_000,
                )

        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(writers))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        events = list(writers[0][0].read())
        assert len(events) == per_writer * len(writers)
        seen = {(e.payload["w"], e.payload["i"]) for e in events}
        assert seen == {(w, i) for w in range(len(writers)) for i in range(per_writer)}
        assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(events))
