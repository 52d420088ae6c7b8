"""Tampering: each attack is rejected live, or named by verify, and changes no state."""

from __future__ import annotations

import functools
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plaza.dao.errors import (
    DuplicateVoteError,
    NotFoundInStateError,
    NotMemberError,
    ProposalClosedError,
)
from plaza.dao.service import Dao
from plaza.dao.state import TABLE, DaoState
from plaza.errors import PlazaError
from plaza.ledger import (
    AppendConflictError,
    EventSignatureError,
    MemoryEventStore,
    SqlEventStore,
    sign_event,
    verify_log,
)
from tests.dao.conftest import DAY, T0, World, found, make_world


def _busy(dao: Dao, world: World) -> int:
    pid = dao.propose(
        world.alice,
        "treasury",
        "Pay the relay",
        T0,
        effect={"amount": 1_000, "payee": "relay co-op"},
    )
    dao.vote(world.alice, pid, {"choice": "yes"}, T0 + 1)
    dao.vote(world.bob, pid, {"choice": "no"}, T0 + 2)
    return pid


def _verify(store: object) -> object:
    s = store  # a store of any backend
    return verify_log(s.read_raw(), s.checkpoints(), projection=DaoState())  # type: ignore[attr-defined]


def test_clean_ledger_verifies_and_rederives_the_state(dao: Dao, world: World) -> None:
    _busy(dao, world)
    dao.checkpoint(world.ledger_key, T0 + 3)
    report = _verify(dao.store)
    assert report.ok, report.problem  # type: ignore[attr-defined]
    assert report.fingerprint == dao.state.fingerprint()  # type: ignore[attr-defined]


def test_checkpoint_by_a_key_that_is_not_a_ledger_key(dao: Dao, world: World) -> None:
    _busy(dao, world)
    dao.ledger.checkpoint(world.alice.key, time=T0 + 3)
    report = _verify(dao.store)
    assert report.problem.code == "UntrustedCheckpoint"  # type: ignore[attr-defined]


def test_changed_byte_in_sqlite_is_named(tmp_path: object, world: World) -> None:
    url = f"sqlite://{tmp_path}/dao.db"
    dao = found(SqlEventStore.open(url), world)
    _busy(dao, world)
    db = SqlEventStore.open(url).db
    body = bytearray(db.scalar("SELECT body FROM ledger_events WHERE seq = 2"))
    i = body.index(b"yes")
    body[i : i + 3] = b"yas"
    db.execute("UPDATE ledger_events SET body = ? WHERE seq = 2", (bytes(body),))
    report = _verify(SqlEventStore.open(url))
    assert (report.problem.seq, report.problem.code) == (2, "BadSignature")  # type: ignore[attr-defined]


def test_reorder_and_drop_are_named(dao: Dao, world: World) -> None:
    _busy(dao, world)
    raw = [r for _, r in dao.store.read_raw()]
    swapped = [raw[0], raw[2], raw[1], raw[3]]
    report = verify_log(enumerate(swapped), projection=DaoState())
    assert report.problem.seq == 1  # type: ignore[union-attr]
    dropped = [raw[0], raw[2], raw[3]]
    report = verify_log(enumerate(dropped), projection=DaoState())
    assert report.problem.seq == 1  # type: ignore[union-attr]


def test_replayed_old_signed_vote(dao: Dao, world: World) -> None:
    _busy(dao, world)
    old_vote = dao.ledger.get(2)
    before = dao.state.fingerprint()
    # Submitted again as is: its position is taken.
    with pytest.raises(AppendConflictError):
        dao.submit(old_vote)
    # Re-positioned at the head by someone without bob's key: the signature fails.
    head = dao.ledger.head()
    forged = sign_event(
        world.dave.key,
        seq=head.size,
        prev_hash=head.hash,
        time=head.time,
        author_did=old_vote.author_did,
        type=old_vote.type,
        payload=old_vote.payload,
    )
    with pytest.raises(EventSignatureError):
        dao.submit(forged)
    assert dao.state.fingerprint() == before
    assert len(dao.ledger) == 4
    # Appended to an exported log: verify names it.
    raw = [r for _, r in dao.store.read_raw()]
    report = verify_log(enumerate([*raw, old_vote.raw]), projection=DaoState())
    assert (report.problem.seq, report.problem.code) == (4, "OutOfOrder")  # type: ignore[union-attr]


@pytest.mark.parametrize("attack", ["vote-twice", "non-member", "after-close"])
def test_illegal_votes(world: World, attack: str) -> None:
    store = MemoryEventStore()
    dao = found(store, world)
    pid = _busy(dao, world)
    voter, when, error = {
        "vote-twice": (world.alice, T0 + 3, DuplicateVoteError),
        "non-member": (world.dave, T0 + 3, NotMemberError),
        "after-close": (world.carol, T0 + 7 * DAY, ProposalClosedError),
    }[attack]
    before = dao.state.fingerprint()
    with pytest.raises(error):
        dao.vote(voter, pid, {"choice": "yes"}, when)
    assert dao.state.fingerprint() == before
    assert len(dao.ledger) == 4
    # Forced into the store with a valid signature (a dishonest operator): verify names it.
    bad = dao.ledger.build(
        voter.key,
        author_did=voter.did,
        type="dao.vote.cast",
        payload={"proposal": pid, "ballot": {"choice": "yes"}},
        time=when,
    )
    store.append([bad])
    report = _verify(store)
    assert report.problem.seq == 4  # type: ignore[attr-defined]
    assert report.problem.code == error.code  # type: ignore[attr-defined]


def test_hostile_payloads_are_rule_errors_live_and_on_replay(dao: Dao, world: World) -> None:
    """A payload the handlers choke on must be a named bad event, never a crash of verify."""
    head = dao.store.head()
    # str.isdigit() is true for "²", which int() refuses.
    payload = {"delegate": world.bob.did, "scope": "proposal", "key": "\u00b2"}
    ev = dao.ledger.build(
        world.alice.key,
        author_did=world.alice.did,
        type="dao.delegation.set",
        payload=payload,
        time=T0 + 1,
        head=head,
    )
    with pytest.raises(NotFoundInStateError):
        dao.state.check(ev)
    dao.store.append([ev])  # straight into the store, past the live checks
    report = _verify(dao.store)
    assert report.problem is not None  # type: ignore[attr-defined]
    assert (report.problem.seq, report.problem.code) == (ev.seq, "NotFound")  # type: ignore[attr-defined]


_FIELDS = [
    "did", "role", "proof", "member", "kind", "delegate", "scope", "key", "expires", "type",
    "title", "body", "choices", "effect", "effects", "proposal", "ballot", "points", "action",
    "reason", "motion", "amount", "from", "memo", "fake", "payee", "category", "choice",
    "votes", "scores", "ranking", "approvals", "params", "escrow", "provider", "accounts",
]  # fmt: skip
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-3, 2**64 - 1)
    | st.text(max_size=6)
    | st.binary(max_size=3)
    | st.sampled_from(["1", "2", "\u00b2", "global", "topic", "proposal", "yes", "rfb.create"])
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(_FIELDS), inner, max_size=4)
    ),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    type_=st.sampled_from(sorted(TABLE.rows)),
    payload=st.dictionaries(st.sampled_from(_FIELDS), _VALUES, max_size=5),
    who=st.integers(0, 3),
)
def test_any_payload_is_a_plaza_error_or_legal(
    type_: str, payload: dict[str, Any], who: int
) -> None:
    world = make_world()
    dao = _fuzz_dao()
    author = (world.alice, world.bob, world.agent, world.dave)[who]
    head = dao.store.head()
    try:
        ev = sign_event(
            author.key,
            seq=head.size,
            prev_hash=head.hash,
            time=head.time + 1,
            author_did=author.did,
            type=type_,
            payload=payload,
        )
    except PlazaError:
        return  # not even a well-formed event
    before = dao.state.fingerprint()
    try:
        dao.state.check(ev)
    except PlazaError:
        refused = True
    else:
        refused = False
    assert dao.state.fingerprint() == before  # checking never changes anything
    if not refused:
        return
    with pytest.raises(PlazaError):  # refused input, by every door, changes nothing
        dao.submit(ev)
    with pytest.raises(PlazaError):
        dao.state.apply(ev)
    assert dao.state.fingerprint() == before
    assert dao.store.head() == head


@functools.cache
def _fuzz_dao() -> Dao:
    """One DAO with an open proposal for the fuzz test, which only ever offers it
    events it then finds refused (and asserts they changed nothing)."""
    world = make_world()
    dao = found(MemoryEventStore(), world)
    dao.propose(world.alice, "treasury", "t", T0, effect={"amount": 5, "payee": "p"})
    return dao
