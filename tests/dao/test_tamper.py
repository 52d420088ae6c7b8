"""Tampering: each attack is rejected live, or named by verify, and changes no state."""

from __future__ import annotations

import pytest

from plaza.dao.errors import DuplicateVoteError, NotMemberError, ProposalClosedError
from plaza.dao.service import Dao
from plaza.dao.state import DaoState
from plaza.ledger import (
    AppendConflictError,
    EventSignatureError,
    MemoryEventStore,
    SqlEventStore,
    sign_event,
    verify_log,
)
from tests.dao.conftest import DAY, T0, World, found


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
