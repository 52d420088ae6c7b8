"""What other packages see of the DAO: queries, read-only views and frozen records;
and the one table of typed handlers that is the only way the state changes."""

from __future__ import annotations

import dataclasses

import pytest

from plaza.dao import Action, Dao, DaoState
from plaza.dao.errors import (
    DuplicateVoteError,
    InvalidPayloadError,
    NotFoundInStateError,
    UnknownEventError,
)
from plaza.dao.service import Dao as ServiceDao
from plaza.dao.state import TABLE
from plaza.ledger import Commands, MemoryEventStore, SqlEventStore, replay
from tests.dao.conftest import DAY, T0, World, found


def test_queries_answer_what_other_packages_ask(dao: Dao, world: World) -> None:
    st = dao.state
    founders = tuple(sorted([world.alice.did, world.bob.did, world.carol.did]))
    assert st.members() == founders
    assert st.is_member(world.alice.did) and not st.is_member(world.dave.did)
    assert st.role_of(world.alice.did) == "person" and st.role_of(world.dave.did) is None
    assert st.member(world.alice.did).via == "genesis"  # type: ignore[union-attr]
    assert st.treasury_balance() == 1_000_000
    dao.grant_role(world.agent, world.dave.did, "provider", T0 + 1)
    assert st.role_of(world.dave.did) == "provider" and st.is_provider(world.dave.did)
    award = Action("contract.award", {"contract": "c-1"}, amount=200_000)  # over 1,000.00
    out = dao.act(world.agent, award, "cheapest bid", T0 + 2)
    assert out.motion is not None
    assert st.motion_for_contract("c-1") == st.motion(out.motion) is not None
    assert st.motion_for_contract("c-2") is None
    assert st.proposal(12345) is None and st.escrow("nope") is None


def test_views_are_read_only_and_records_frozen(dao: Dao, world: World) -> None:
    pid = dao.propose(world.alice, "election", "chair", T0 + 1, choices=("x", "y"))
    st = dao.state
    with pytest.raises(TypeError):
        st.proposals[pid] = st.proposals[pid]  # type: ignore[index]
    with pytest.raises(TypeError):
        del st.member_records[world.alice.did]  # type: ignore[attr-defined]
    with pytest.raises(dataclasses.FrozenInstanceError):
        st.proposals[pid].status = "executed"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        st.seq = 99  # type: ignore[misc]
    assert isinstance(st.actions, tuple) and isinstance(st.legal, tuple)


def test_a_record_is_replaced_not_changed(dao: Dao, world: World) -> None:
    pid = dao.propose(world.alice, "election", "chair", T0 + 1, choices=("x", "y"))
    before = dao.state.proposal(pid)
    dao.vote(world.bob, pid, {"ranking": ["x", "y"]}, T0 + 2)
    after = dao.state.proposal(pid)
    assert before is not None and after is not None
    assert before.votes == {} and set(after.votes) == {world.bob.did}


def test_the_table_names_every_dao_event_and_parses_strictly(dao: Dao, world: World) -> None:
    assert all(t.startswith("dao.") for t in TABLE.rows)
    head = dao.store.head()

    def event(type_: str, payload: dict[str, object]):  # type: ignore[no-untyped-def]
        return dao.ledger.build(
            world.alice.key,
            author_did=world.alice.did,
            type=type_,
            payload=payload,
            time=T0 + DAY,
            head=head,
        )

    before = dao.state.fingerprint()
    cases = [
        ("dao.member.vouched", {}, "dao.member.vouched: missing field 'member'"),
        (
            "dao.member.vouched",
            {"member": world.dave.did, "x": 1},
            "dao.member.vouched: unknown fields ['x']",
        ),
        ("dao.member.vouched", {"member": "dave"}, "field 'member' must be a DID"),
        ("dao.vote.cast", {"proposal": "1", "ballot": {}}, "field 'proposal'"),
        ("dao.vote.cast", {"proposal": True, "ballot": {}}, "field 'proposal'"),
    ]
    for type_, payload, message in cases:
        with pytest.raises(InvalidPayloadError) as caught:
            dao.state.check(event(type_, payload))
        assert message in str(caught.value)
    with pytest.raises(UnknownEventError):
        dao.state.check(event("dao.member.levitated", {}))
    with pytest.raises(NotFoundInStateError):  # parses, and then the rule refuses it
        dao.state.check(event("dao.vote.cast", {"proposal": 0, "ballot": {"choice": "yes"}}))
    dao.state.check(event("market.anything", {"free": "form"}))  # another plane's
    assert dao.state.fingerprint() == before


def test_dao_shares_the_core_with_one_retry_policy(db_url: str, world: World) -> None:
    """Two DAO handles on one database: each catches up before it writes, and the
    state each replays is the state a fresh replay gives."""
    one = found(SqlEventStore.open(db_url), world)
    two = ServiceDao(SqlEventStore.open(db_url))
    two.vouch(world.alice, world.dave.did, T0 + 1)
    one.vouch(world.bob, world.dave.did, T0 + 2)
    assert isinstance(one.commands, Commands)
    assert one.state.candidate(world.dave.did) is not None
    assert set(one.state.candidate(world.dave.did).vouches) == {  # type: ignore[union-attr]
        world.alice.did,
        world.bob.did,
    }
    two.sync()
    fresh = replay(one.store.read(), DaoState())
    assert one.state.fingerprint() == two.state.fingerprint() == fresh.fingerprint()
    one.store.close()
    two.store.close()


def test_reload_rebuilds_the_same_state(world: World) -> None:
    dao = found(MemoryEventStore(), world)
    dao.vouch(world.alice, world.dave.did, T0 + 1)
    old = dao.state
    dao.reload()
    assert dao.state is not old and dao.state.fingerprint() == old.fingerprint()


def test_apply_reuses_a_judgement_only_for_the_event_just_checked(dao: Dao, world: World) -> None:
    """check() then apply() of one event judges it once; an event applied in between
    makes apply() judge again, against the state it now meets."""
    pid = dao.propose(world.alice, "election", "chair", T0 + 1, choices=("x", "y"))
    head = dao.store.head()

    def ballot():  # type: ignore[no-untyped-def]
        return dao.ledger.build(
            world.bob.key,
            author_did=world.bob.did,
            type="dao.vote.cast",
            payload={"proposal": pid, "ballot": {"ranking": ["x"]}},
            time=T0 + 2,
            head=head,
        )

    first, twin = ballot(), ballot()
    st = DaoState()
    replay(dao.store.read(), st)
    st.check(first)
    st.apply(twin)  # the same vote, another event object: judged afresh, and it counts
    with pytest.raises(DuplicateVoteError):
        st.apply(first)  # checked before bob voted: that judgement is stale now
    fresh = replay(dao.store.read(), DaoState())
    fresh.check(first)
    fresh.apply(first)
    assert fresh.fingerprint() == st.fingerprint()
