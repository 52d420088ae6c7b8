"""A proposal's live book: changed in place, read as frozen snapshots that never move."""

from __future__ import annotations

import hashlib

import pytest

from plaza.atproto import cbor
from plaza.dao import Dao
from plaza.dao.proposal_book import ProposalBook
from plaza.dao.records import Proposal
from tests.dao.conftest import T0, World


def _terms(**over: object) -> Proposal:
    fields: dict[str, object] = {
        "id": 7,
        "type": "budget",
        "author": "did:key:a",
        "title": "t",
        "body": "",
        "method": "conviction",
        "executes": "budget",
        "topic": "budget",
        "created_ms": 10,
        "end_ms": 1_000,
        "choices": (),
        "effect": {"amount": 1, "payee": "x"},
        "effects": {},
        "snapshot": frozenset({"did:key:a", "did:key:b"}),
        "epoch": 0,
        "stake_history": ((10, 0),),
    }
    fields.update(over)
    return Proposal(**fields)  # type: ignore[arg-type]


def test_snapshots_are_cached_until_a_change_and_never_change() -> None:
    book = ProposalBook(_terms())
    first = book.snapshot()
    assert book.snapshot() is first
    assert book.set_stake("did:key:a", 5, 20) == 0
    second = book.snapshot()
    assert second is not first and book.snapshot() is second
    assert first.stakes == {} and first.stake_history == ((10, 0),)
    assert second.stakes == {"did:key:a": 5} and second.stake_history == ((10, 0), (20, 5))
    assert book.set_stake("did:key:a", 0, 30) == 5
    assert book.stake_of("did:key:a") == 0 and second.stakes == {"did:key:a": 5}
    book.set_stake("did:key:b", 3, 40)
    assert book.close("executed", 50) == {"did:key:b": 3}
    closed = book.snapshot()
    assert (closed.status, closed.executed_ms, closed.stakes) == ("executed", 50, {})
    assert closed.stake_history[-1] == (50, 0) and second.status == "open"


def _same_encoding(book: ProposalBook) -> None:
    assert cbor.encode(book.encodable()) == cbor.encode(book.to_map())
    assert book.to_map() == book.snapshot().to_map()


def test_the_encodable_map_encodes_as_the_records_map() -> None:
    book = ProposalBook(
        _terms(
            method="single",
            choices=("y", "x"),
            stake_history=(),
            effects={"x": {"amount": 2, "payee": "p"}},
            effect=None,
        )
    )
    _same_encoding(book)
    book.add_vote("did:key:b", {"choice": "y"})
    book.add_vote("did:key:a", {"choice": "x"})
    _same_encoding(book)
    assert list(book.to_map()["votes"]) == ["did:key:a", "did:key:b"]
    conviction = ProposalBook(_terms(motion=3))
    conviction.set_stake("did:key:b", 4, 20)
    conviction.set_stake("did:key:a", 2, 30)
    _same_encoding(conviction)
    conviction.close("cancelled", 99)
    _same_encoding(conviction)
    assert conviction.to_map()["executed"] == 0


def test_a_ballot_is_copied_in(dao: Dao, world: World) -> None:
    pid = dao.propose(world.alice, "election", "chair", T0 + 1, choices=("x", "y"))
    ballot = {"ranking": ["x", "y"]}
    dao.vote(world.bob, pid, ballot, T0 + 2)
    ballot["ranking"] = ["y"]
    assert dao.state.proposals[pid].votes[world.bob.did] == {"ranking": ["x", "y"]}


def test_the_proposals_view_is_live_and_read_only(dao: Dao, world: World) -> None:
    view = dao.state.proposals
    assert len(view) == 0 and 5 not in view
    pid = dao.propose(world.alice, "election", "chair", T0 + 1, choices=("x", "y"))
    assert list(view) == [pid] and pid in view and view[pid] is dao.state.proposal(pid)
    live = dao.state.proposal_state(pid)
    assert live is not None and not live.voted(world.bob.did) and not live.staked_on()
    dao.vote(world.bob, pid, {"ranking": ["x", "y"]}, T0 + 2)
    assert live.voted(world.bob.did) and live.staked_on()
    assert set(view[pid].votes) == {world.bob.did}
    with pytest.raises(KeyError):
        view[pid + 1000]
    with pytest.raises(TypeError):
        del view[pid]  # type: ignore[attr-defined]


def test_the_fingerprint_is_the_hash_of_the_whole_map(dao: Dao, world: World) -> None:
    pid = dao.propose(world.alice, "election", "chair", T0 + 1, choices=("x", "y"))
    dao.vote(world.carol, pid, {"ranking": ["y", "x"]}, T0 + 2)
    dao.vote(world.bob, pid, {"ranking": ["x"]}, T0 + 3)
    budget = dao.propose(
        world.alice, "budget", "tools", T0 + 4, effect={"amount": 10, "payee": "co-op"}
    )
    dao.stake(world.bob, budget, 30, T0 + 5)
    st = dao.state
    assert st.fingerprint() == hashlib.sha256(cbor.encode(st.to_map())).digest()
