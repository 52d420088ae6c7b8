"""The command core over a real SQLite and PostgreSQL store: sync, build at the head,
check, append, apply; batches; the one retry policy on lost races; the handler table."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator

import pytest

from plaza.atproto.crypto import PrivateKey
from plaza.ledger import (
    AppendConflictError,
    Batch,
    Commands,
    EventPayload,
    EventRejectedError,
    EventSignatureError,
    HandlerTable,
    InvalidEventError,
    Ledger,
    Mutation,
    On,
    Retry,
    SqlEventStore,
    sign_event,
)
from plaza.ledger.event import Event
from plaza.ledger.keystore import Signer

ALICE = Signer.generate()
BOB = Signer.generate()


class Note(EventPayload):
    n: int


class Reset(EventPayload):
    pass


class Notes:
    """A tiny projection: the notes so far. A note must be non-negative, and a note of
    ``-1 * len`` is never legal (so a batch can test that later events see earlier)."""

    def __init__(self) -> None:
        self.notes: tuple[int, ...] = ()
        self.seq = -1

    def check(self, event: Event) -> None:
        TABLE.prepare(self, event)

    def apply(self, event: Event) -> None:
        TABLE.prepare(self, event)()
        self.seq = event.seq

    def fingerprint(self) -> bytes:
        return hashlib.sha256(repr((self.seq, self.notes)).encode()).digest()


def _noted(st: Notes, ev: Event, p: Note) -> Mutation:
    if p.n < 0:
        raise EventRejectedError(f"note {p.n} is negative")
    if p.n in st.notes:
        raise EventRejectedError(f"note {p.n} is already taken")

    def mutate() -> None:
        st.notes = (*st.notes, p.n)

    return mutate


def _reset(st: Notes, ev: Event, p: Reset) -> Mutation:
    def mutate() -> None:
        st.notes = ()

    return mutate


class UnknownNote(EventRejectedError):
    code = "UnknownNote"


class BadNote(EventRejectedError):
    code = "BadNote"


TABLE: HandlerTable[Notes] = HandlerTable(
    "test.",
    {"test.noted": On(Note, _noted), "test.reset": On(Reset, _reset)},
    unknown=UnknownNote,
    invalid=BadNote,
)


class Racing(Notes):
    """Notes whose ``check`` first runs ``interfere`` (while any are queued): another
    writer appends between this writer's build and its append, every time, for sure."""

    def __init__(self) -> None:
        super().__init__()
        self.interfere: list[Callable[[], object]] = []

    def check(self, event: Event) -> None:
        if self.interfere:
            self.interfere.pop(0)()
        super().check(event)


@pytest.fixture
def open_ledger(db_url: str) -> Iterator[Callable[[], Ledger]]:
    """Each call opens another connection to the same fresh store (another writer)."""
    opened: list[SqlEventStore] = []

    def factory() -> Ledger:
        store = SqlEventStore.open(db_url)
        opened.append(store)
        return Ledger(store)

    yield factory
    for s in opened:
        s.close()


def _recording_retry(pauses: list[float], attempts: int = 32) -> Retry:
    return Retry(attempts=attempts, sleep=pauses.append, jitter=lambda: 0.5)


def test_record_syncs_checks_appends_and_applies(open_ledger: Callable[[], Ledger]) -> None:
    mine = Commands(open_ledger(), Notes)
    theirs = Commands(open_ledger(), Notes)
    theirs.record(BOB, "test.noted", {"n": 1}, 1_000)
    ev = mine.record(ALICE, "test.noted", {"n": 2}, 900)
    assert (ev.seq, ev.time) == (1, 1_000)  # built at the synced head, time never back
    assert mine.state.notes == (1, 2)
    assert mine.head.size == 2 and mine.head.hash == ev.hash
    assert theirs.sync() == 1 and theirs.state.notes == (1, 2)


def test_refused_event_changes_nothing(open_ledger: Callable[[], Ledger]) -> None:
    core = Commands(open_ledger(), Notes)
    core.record(ALICE, "test.noted", {"n": 1}, 1_000)
    before = (core.state.fingerprint(), core.head, len(list(core.log.read())))
    with pytest.raises(EventRejectedError, match="already taken"):
        core.record(ALICE, "test.noted", {"n": 1}, 2_000)
    with pytest.raises(BadNote):
        core.record(ALICE, "test.noted", {"n": "1"}, 2_000)
    assert (core.state.fingerprint(), core.head, len(list(core.log.read()))) == before


def test_lost_race_is_rebuilt_on_the_new_head(open_ledger: Callable[[], Ledger]) -> None:
    pauses: list[float] = []
    mine = Commands(open_ledger(), Racing, retry=_recording_retry(pauses))
    theirs = Commands(open_ledger(), Notes)
    mine.state.interfere.append(lambda: theirs.record(BOB, "test.noted", {"n": 7}, 1_000))
    ev = mine.record(ALICE, "test.noted", {"n": 8}, 1_000)
    assert ev.seq == 1  # the first build (seq 0) lost; the retry synced and built on 7
    assert pauses == [0.5 * 0.001]
    assert [e.payload["n"] for e in mine.log.read()] == [7, 8]
    assert mine.state.notes == (7, 8)


def test_lost_race_retry_decides_afresh(open_ledger: Callable[[], Ledger]) -> None:
    """The retry checks against the state the winner left: here it is now illegal."""
    mine = Commands(open_ledger(), Racing, retry=_recording_retry([]))
    theirs = Commands(open_ledger(), Notes)
    mine.state.interfere.append(lambda: theirs.record(BOB, "test.noted", {"n": 8}, 1_000))
    with pytest.raises(EventRejectedError, match="already taken"):
        mine.record(ALICE, "test.noted", {"n": 8}, 1_000)
    assert [e.author_did for e in mine.log.read()] == [BOB.did]


def test_every_attempt_lost_raises_the_conflict(open_ledger: Callable[[], Ledger]) -> None:
    pauses: list[float] = []
    mine = Commands(open_ledger(), Racing, retry=_recording_retry(pauses, attempts=3))
    theirs = Commands(open_ledger(), Notes)
    for i in range(3):
        mine.state.interfere.append(lambda i=i: theirs.record(BOB, "test.noted", {"n": i}, 1))
    with pytest.raises(AppendConflictError):
        mine.record(ALICE, "test.noted", {"n": 99}, 1_000)
    assert len(pauses) == 2  # no pause after the last attempt
    assert [e.payload["n"] for e in mine.log.read()] == [0, 1, 2]
    mine.sync()
    assert mine.state.notes == (0, 1, 2)


def test_retry_pauses_grow_and_are_capped() -> None:
    pauses: list[float] = []
    policy = Retry(base_s=0.001, cap_s=0.05, sleep=pauses.append, jitter=lambda: 1.0)
    for attempt in range(8):
        policy.pause(attempt)
    assert pauses == [0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.05, 0.05]
    with pytest.raises(ValueError):
        Retry(attempts=0)


def test_batch_is_appended_atomically_and_sees_its_own_events(
    open_ledger: Callable[[], Ledger],
) -> None:
    core = Commands(open_ledger(), Notes)

    def two(batch: Batch) -> int:
        batch.record(ALICE, "test.noted", {"n": 1}, 1_000)
        assert core.state.notes == (1,)  # applied at once: later steps see it
        ev = core.record(ALICE, "test.noted", {"n": 2}, 1_000)  # joins the open run
        return ev.seq

    assert core.run(two) == 1
    assert [e.payload["n"] for e in core.log.read()] == [1, 2]
    assert core.head.size == 2
    assert Commands(open_ledger(), Notes).state.fingerprint() == core.state.fingerprint()


def test_batch_that_raises_appends_nothing_and_restores_the_state(
    open_ledger: Callable[[], Ledger],
) -> None:
    core = Commands(open_ledger(), Notes)
    core.record(ALICE, "test.noted", {"n": 1}, 1_000)
    before = core.state.fingerprint()

    def half(batch: Batch) -> None:
        batch.record(ALICE, "test.noted", {"n": 2}, 1_000)
        batch.record(ALICE, "test.noted", {"n": 1}, 1_000)  # refused: already taken

    with pytest.raises(EventRejectedError):
        core.run(half)
    assert [e.payload["n"] for e in core.log.read()] == [1]
    assert core.state.fingerprint() == before
    assert core.head.size == 1


def test_batch_that_loses_the_race_runs_again(open_ledger: Callable[[], Ledger]) -> None:
    pauses: list[float] = []
    core = Commands(open_ledger(), Notes, retry=_recording_retry(pauses))
    theirs = Commands(open_ledger(), Notes)
    calls: list[tuple[int, ...]] = []

    def pair(batch: Batch) -> None:
        calls.append(core.state.notes)
        batch.record(ALICE, "test.noted", {"n": 10}, 1_000)
        batch.record(ALICE, "test.noted", {"n": 11}, 1_000)
        if len(calls) == 1:  # another writer gets in before this run is appended
            theirs.record(BOB, "test.noted", {"n": 5}, 1_000)

    core.run(pair)
    assert calls == [(), (5,)]  # the second run decided on the winner's state
    assert len(pauses) == 1
    assert [e.payload["n"] for e in core.log.read()] == [5, 10, 11]
    assert core.state.notes == (5, 10, 11)


def test_check_builds_and_checks_without_writing(open_ledger: Callable[[], Ledger]) -> None:
    core = Commands(open_ledger(), Notes)
    core.record(ALICE, "test.noted", {"n": 1}, 1_000)
    ev = core.check(ALICE, "test.noted", {"n": 2}, 1_000)
    assert ev.seq == 1 and core.head.size == 1 and core.state.notes == (1,)
    with pytest.raises(EventRejectedError):
        core.check(ALICE, "test.noted", {"n": 1}, 1_000)

    def inside(batch: Batch) -> int:
        batch.record(ALICE, "test.noted", {"n": 2}, 1_000)
        return core.check(ALICE, "test.noted", {"n": 3}, 1_000).seq

    assert core.run(inside) == 2


def test_empty_batch_writes_nothing(open_ledger: Callable[[], Ledger]) -> None:
    core = Commands(open_ledger(), Notes)
    assert core.run(lambda batch: "nothing") == "nothing"
    assert core.head.size == 0


def test_submit_checks_position_then_signature_then_rules(
    open_ledger: Callable[[], Ledger],
) -> None:
    core = Commands(open_ledger(), Notes)
    core.record(ALICE, "test.noted", {"n": 1}, 1_000)
    head = core.head

    def signed(key: PrivateKey, author: str, seq: int, n: int) -> Event:
        return sign_event(
            key,
            seq=seq,
            prev_hash=head.hash,
            time=2_000,
            author_did=author,
            type="test.noted",
            payload={"n": n},
        )

    with pytest.raises(AppendConflictError):
        core.submit(signed(ALICE.key, ALICE.did, 0, 1))  # stale, and illegal too
    with pytest.raises(EventSignatureError):
        core.submit(signed(BOB.key, ALICE.did, 1, 1))  # forged, and illegal too
    with pytest.raises(EventRejectedError):
        core.submit(signed(ALICE.key, ALICE.did, 1, 1))
    ev = core.submit(signed(ALICE.key, ALICE.did, 1, 2))
    assert core.state.notes == (1, 2) and core.head.size == 2
    assert core.log.get(1) == ev


def test_reload_rebuilds_from_the_log(open_ledger: Callable[[], Ledger]) -> None:
    core = Commands(open_ledger(), Notes)
    core.record(ALICE, "test.noted", {"n": 1}, 1_000)
    core.record(ALICE, "test.reset", {}, 1_000)
    core.record(ALICE, "test.noted", {"n": 1}, 1_000)
    old = core.state
    core.reload()
    assert core.state is not old
    assert core.state.fingerprint() == old.fingerprint()


def test_core_follows_a_state_applied_to_outside_it(open_ledger: Callable[[], Ledger]) -> None:
    """With ``position`` the core never applies an event twice to a shared state."""
    ledger = open_ledger()
    core = Commands(ledger, Notes, position=lambda st: st.seq)
    outside = core.log.build(
        ALICE.key, author_did=ALICE.did, type="test.noted", payload={"n": 1}, time=1
    )
    ledger.append(outside)
    core.state.apply(outside)  # another writer in the process applied it already
    assert core.sync() == 0
    ev = core.record(ALICE, "test.noted", {"n": 2}, 1)
    assert ev.seq == 1 and core.state.notes == (1, 2)


def test_ledger_record_writes_at_the_store_head(open_ledger: Callable[[], Ledger]) -> None:
    a, b = open_ledger(), open_ledger()
    a.record(ALICE.key, author_did=ALICE.did, type="test.noted", payload={"n": 1}, time=1)
    ev = b.record(BOB.key, author_did=BOB.did, type="test.noted", payload={"n": 1}, time=1)
    assert ev.seq == 1 and ev.prev_hash == a.get(0).hash


# -- the handler table -------------------------------------------------------------------
def _event(type_: str, payload: dict[str, object]) -> Event:
    return sign_event(
        ALICE.key,
        seq=0,
        prev_hash=bytes(32),
        time=1,
        author_did=ALICE.did,
        type=type_,
        payload=payload,
    )


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({}, "test.noted: missing field 'n'"),
        ({"n": 1, "m": 2, "a": 3}, "test.noted: unknown fields ['a', 'm']"),
        ({"n": "1"}, "test.noted: field 'n': Input should be a valid integer"),
        ({"n": True}, "test.noted: field 'n': Input should be a valid integer"),
    ],
    ids=["missing", "extra", "string-for-int", "bool-for-int"],
)
def test_table_refuses_bad_payloads_by_name(payload: dict[str, object], message: str) -> None:
    st = Notes()
    with pytest.raises(BadNote) as caught:
        TABLE.prepare(st, _event("test.noted", payload))
    assert str(caught.value).startswith(message)
    assert st.notes == ()


def test_table_passes_other_prefixes_and_refuses_unknown_types() -> None:
    st = Notes()
    TABLE.prepare(st, _event("other.noted", {"x": 1}))()
    assert st.notes == ()
    with pytest.raises(UnknownNote, match=r"test\.forgotten"):
        TABLE.prepare(st, _event("test.forgotten", {}))
    with pytest.raises(ValueError, match="outside"):
        HandlerTable("test.", {"x.y": On(Note, _noted)}, unknown=UnknownNote, invalid=BadNote)


def test_invalid_event_type_never_reaches_the_table() -> None:
    with pytest.raises(InvalidEventError):
        _event("Test.Noted", {})
