"""Membership: genesis, vouching with liability, attestations, roles, removal by vote."""

from __future__ import annotations

import pytest

from plaza.dao.errors import (
    DuplicateVoteError,
    InvalidPayloadError,
    NotAllowedError,
    NotMemberError,
)
from plaza.dao.service import Dao
from plaza.ledger import MemoryEventStore
from tests.dao.conftest import DAY, T0, World, found, signer


def test_genesis(dao: Dao, world: World) -> None:
    st = dao.state
    assert st.active_members() == sorted([world.alice.did, world.bob.did, world.carol.did])
    assert st.ledger_id == dao.ledger.get(0).hash.hex()
    assert st.checkpoint_signers() == {world.ledger_key.did_key}
    assert st.books.balance("Assets:Treasury") == 1_000_000
    assert st.books.balance("Equity:Opening") == -1_000_000
    assert not st.is_member(world.agent.did)
    assert st.legal[0].record.legal_form.startswith("Wyoming DAO LLC")


def test_genesis_only_once_and_by_a_founder(dao: Dao, world: World) -> None:
    before = dao.state.fingerprint()
    with pytest.raises(Exception, match="already has a genesis"):
        Dao.init(
            dao.store,
            world.alice,
            constitution=world.constitution,
            mandate=dao.state.mandate,
            now=T0,
        )
    assert dao.state.fingerprint() == before
    with pytest.raises(NotAllowedError):
        dao2 = Dao(MemoryEventStore())
        dao2.record(
            world.dave,
            "dao.genesis.created",
            {
                "constitution": world.constitution.to_map(),
                "mandate": dao.state.mandate.to_map(),
                "founders": [world.alice.did],
            },
            T0,
        )


def test_admission_by_k_vouches(dao: Dao, world: World) -> None:
    dave = world.dave.did
    dao.vouch(world.alice, dave, T0 + 1)
    with pytest.raises(NotAllowedError, match="has 1 vouches"):
        dao.admit(world.dave, dave, T0 + 2)
    with pytest.raises(DuplicateVoteError):
        dao.vouch(world.alice, dave, T0 + 3)
    dao.vouch(world.bob, dave, T0 + 4)
    dao.admit(world.dave, dave, T0 + 5)
    m = dao.state.member(dave)
    assert (m.via, m.vouchers) == ("vouches", tuple(sorted([world.alice.did, world.bob.did])))
    with pytest.raises(NotAllowedError, match="already a member"):
        dao.vouch(world.carol, dave, T0 + 6)


def test_vouching_rules(dao: Dao, world: World) -> None:
    with pytest.raises(NotMemberError):
        dao.vouch(world.dave, world.erin.did, T0 + 1)  # dave is not a member
    with pytest.raises(NotAllowedError, match="themselves"):
        dao.vouch(world.alice, world.alice.did, T0 + 1)
    with pytest.raises(NotAllowedError, match="agent or provider"):
        dao.vouch(world.alice, world.agent.did, T0 + 1)
    provider = signer("provider")
    dao.grant_role(world.agent, provider.did, "provider", T0 + 2)
    with pytest.raises(NotAllowedError, match="agent or provider"):
        dao.vouch(world.alice, provider.did, T0 + 3)


def test_attestations_required(world: World) -> None:
    membership = world.constitution.membership.model_copy(
        update={"attestations_required": 1, "attesters": (world.erin.did,)}
    )
    c = world.constitution.model_copy(update={"membership": membership})
    dao = found(MemoryEventStore(), world.__class__(**{**world.__dict__, "constitution": c}))
    dave = world.dave.did
    dao.vouch(world.alice, dave, T0 + 1)
    dao.vouch(world.bob, dave, T0 + 2)
    with pytest.raises(NotAllowedError, match="attestation"):
        dao.admit(world.dave, dave, T0 + 3)
    with pytest.raises(NotAllowedError, match="trusted attester"):
        dao.attest(world.alice, dave, "passport", T0 + 4)
    dao.attest(world.erin, dave, "passport", T0 + 5)
    dao.admit(world.dave, dave, T0 + 6)


def _remove(dao: Dao, world: World, member: str, *, fake: bool, now: int) -> int:
    pid = dao.propose(
        world.alice, "removal", f"remove {member}", now, effect={"member": member, "fake": fake}
    )
    for s in (world.alice, world.bob, world.carol):
        dao.vote(s, pid, {"choice": "yes"}, now + 1)
    dao.execute(world.alice, pid, now + 8 * DAY)
    return pid


def test_removal_as_fake_makes_vouchers_liable(dao: Dao, world: World) -> None:
    dave, erin = world.dave.did, world.erin.did
    dao.vouch(world.alice, dave, T0 + 1)
    dao.vouch(world.bob, dave, T0 + 2)
    dao.admit(world.alice, dave, T0 + 3)
    _remove(dao, world, dave, fake=True, now=T0 + 10)
    removed_at = T0 + 10 + 8 * DAY
    assert not dao.state.is_member(dave)
    assert dao.state.member(dave).fake
    # alice and bob vouched for the fake: no vouching for 180 days. carol still may.
    with pytest.raises(NotAllowedError, match="lost vouching rights"):
        dao.vouch(world.alice, erin, removed_at + DAY)
    dao.vouch(world.carol, erin, removed_at + DAY)
    dao.vouch(world.alice, erin, removed_at + 180 * DAY)
    # A removed member is never readmitted by vouches.
    with pytest.raises(NotAllowedError, match="admission vote"):
        dao.vouch(world.carol, dave, removed_at + 181 * DAY)


def test_removal_not_as_fake_keeps_vouching_rights(dao: Dao, world: World) -> None:
    dave = world.dave.did
    dao.vouch(world.alice, dave, T0 + 1)
    dao.vouch(world.bob, dave, T0 + 2)
    dao.admit(world.alice, dave, T0 + 3)
    _remove(dao, world, dave, fake=False, now=T0 + 10)
    dao.vouch(world.alice, world.erin.did, T0 + 9 * DAY)


def test_admission_by_vote(dao: Dao, world: World) -> None:
    pid = dao.propose(
        world.alice, "admission", "admit erin", T0 + 1, effect={"member": world.erin.did}
    )
    dao.vote(world.alice, pid, {"choice": "yes"}, T0 + 2)
    dao.execute(world.bob, pid, T0 + 8 * DAY)
    assert dao.state.member(world.erin.did).via == "vote"


def test_bad_payloads_change_nothing(dao: Dao, world: World) -> None:
    before = dao.state.fingerprint()
    for payload in ({}, {"member": "nobody"}, {"member": world.dave.did, "extra": 1}):
        with pytest.raises(InvalidPayloadError):
            dao.record(world.alice, "dao.member.vouched", payload, T0 + 1)
    assert dao.state.fingerprint() == before
    assert len(dao.ledger) == 1


def test_roles_with_rights_are_granted_by_an_agent(dao: Dao, world: World) -> None:
    """The provider role lets its holder file dispute proposals: a stranger must not give it
    to itself. An agent of the DAO grants it (the market registers providers)."""
    stranger = signer("self-made-provider")
    before = dao.state.fingerprint()
    with pytest.raises(NotAllowedError, match="granted by an agent"):
        dao.register(stranger, stranger.did, "provider", T0 + 1)
    assert dao.state.fingerprint() == before
    dispute = {"subject": "invoice 7", "claimant": stranger.did}
    with pytest.raises(NotAllowedError, match="may not propose"):
        dao.propose(stranger, "dispute", "Pay me", T0 + 2, effect=dispute)
    with pytest.raises(NotAllowedError, match="agent"):
        dao.grant_role(world.alice, stranger.did, "provider", T0 + 3)
    dao.grant_role(world.agent, stranger.did, "provider", T0 + 4)
    assert dao.state.is_provider(stranger.did)
    dao.propose(stranger, "dispute", "Pay me", T0 + 5, effect=dispute)
    with pytest.raises(NotAllowedError, match="member"):
        dao.grant_role(world.agent, world.bob.did, "provider", T0 + 6)
