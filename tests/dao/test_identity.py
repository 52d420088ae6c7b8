"""Binding a did:plc to a signing key needs proof from the DID itself, live and on replay.

Before this rule the first ``dao.identity.registered`` event for a DID bound its key, so
anyone could claim someone else's did:plc and act as them. Now the event carries the
DID's active chain of PLC operations, whose head must list the key under ``#plaza`` (or
``#atproto``); replay checks the proof again, and only a newer proof of the same DID (an
extension, or a recovery by a higher-priority rotation key) can move the binding.
"""

from __future__ import annotations

import hashlib

import pytest

from plaza.atproto.crypto import ES256, PrivateKey
from plaza.atproto.plc import PLAZA_KEY, PlcOperation, create_genesis, create_update, proof_value
from plaza.dao.errors import IdentityProofError, NotAllowedError
from plaza.dao.mandate import default_mandate
from plaza.dao.service import Dao
from plaza.dao.state import DaoState
from plaza.ledger import MemoryEventStore, verify_log
from plaza.ledger.keystore import Signer
from tests.dao.conftest import T0, World, signer


def _key(name: str) -> PrivateKey:
    return PrivateKey.from_bytes(ES256, hashlib.sha256(name.encode()).digest())


class Plc:
    """A did:plc whose controller holds ``recovery`` (first) and a PDS holds ``pds``."""

    def __init__(self, name: str) -> None:
        self.recovery = _key(f"{name}-recovery")
        self.pds = _key(f"{name}-pds")
        self.did, genesis = create_genesis(
            key=self.pds,
            rotation_keys=[self.recovery.did_key(), self.pds.did_key()],
            signing_key=_key(f"{name}-repo").did_key(),
            handle=f"{name}.test",
            pds_endpoint="https://pds.example",
        )
        self.ops: list[PlcOperation] = [genesis]

    def list_key(self, key: str, *, by: PrivateKey | None = None) -> list[PlcOperation]:
        """Publish ``key`` as the DID's #plaza key (signed by ``by``, default the recovery key);
        return the new active chain."""
        head = self.ops[-1]
        methods = {**head.verification_methods, PLAZA_KEY: key}
        self.ops.append(create_update(head, by or self.recovery, verification_methods=methods))
        return list(self.ops)


def test_a_did_cannot_be_claimed_without_proof(dao: Dao) -> None:
    victim = Plc("victim")
    squatter = signer("squatter")
    before = dao.state.fingerprint()
    with pytest.raises(IdentityProofError, match="proof"):
        dao.register(squatter, victim.did, "person", T0 + 1)
    # A proof of the victim's real chain does not list the squatter's key either.
    chain = victim.list_key(signer("victim-plaza").did_key)
    with pytest.raises(IdentityProofError, match="does not list"):
        dao.register(squatter, victim.did, "person", T0 + 1, proof=proof_value(chain))
    assert dao.state.fingerprint() == before
    assert dao.state.keys_for(victim.did) == []


def test_the_controller_binds_its_key_and_acts_as_the_did(dao: Dao, world: World) -> None:
    member = Plc("member")
    plaza = signer("member-plaza")
    proof = proof_value(member.list_key(plaza.did_key))
    dao.register(plaza, member.did, "person", T0 + 1, proof=proof)
    assert [k.did_key() for k in dao.state.keys_for(member.did)] == [plaza.did_key]
    dao.vouch(world.alice, member.did, T0 + 2)
    dao.vouch(world.bob, member.did, T0 + 3)
    dao.admit(Signer(member.did, plaza.key), member.did, T0 + 4)
    assert dao.state.is_member(member.did)


def test_a_stolen_key_is_rebound_by_a_newer_proof(dao: Dao) -> None:
    member = Plc("rebind")
    old, new = signer("rebind-old"), signer("rebind-new")
    first = proof_value(member.list_key(old.did_key))
    dao.register(old, member.did, "person", T0 + 1, proof=first)
    # The same proof again is not newer: it moves nothing.
    with pytest.raises(NotAllowedError, match="newer"):
        dao.register(old, member.did, "person", T0 + 2, proof=first)
    second = proof_value(member.list_key(new.did_key))
    dao.register(new, member.did, "person", T0 + 3, proof=second)
    assert [k.did_key() for k in dao.state.keys_for(member.did)] == [new.did_key]
    # The thief holding the old key cannot take it back with the old proof.
    with pytest.raises(NotAllowedError, match="newer"):
        dao.register(old, member.did, "person", T0 + 4, proof=first)


def test_replay_rejects_an_unproven_binding(world: World) -> None:
    """A squatting event slipped into the log past the live checks is named by verify."""
    store = MemoryEventStore()
    dao = Dao.init(
        store,
        world.alice,
        constitution=world.constitution,
        mandate=default_mandate(),
        now=T0,
        cofounders=(world.bob, world.carol),
    )
    victim = Plc("replayed")
    squatter = signer("replay-squatter")
    head = store.head()
    forged = dao.ledger.build(
        squatter.key,
        author_did=squatter.did_key,
        type="dao.identity.registered",
        payload={"did": victim.did, "role": "person"},
        time=T0 + 1,
        head=head,
    )
    store.append([forged])  # straight into the store: no projection check
    report = verify_log(store.read_raw(), projection=DaoState())
    assert report.problem is not None
    assert (report.problem.seq, report.problem.code) == (forged.seq, "InvalidIdentityProof")


def test_a_did_plc_founder_needs_a_proof(world: World) -> None:
    founder = Plc("founder")
    key = signer("founder-plaza")
    me = Signer(founder.did, key.key)
    with pytest.raises(IdentityProofError):
        Dao.init(
            MemoryEventStore(),
            world.alice,
            constitution=world.constitution,
            mandate=default_mandate(),
            now=T0,
            cofounders=(me,),
        )
    dao = Dao.init(
        MemoryEventStore(),
        world.alice,
        constitution=world.constitution,
        mandate=default_mandate(),
        now=T0,
        cofounders=(me,),
        proofs={founder.did: proof_value(founder.list_key(key.did_key))},
    )
    assert dao.state.is_member(founder.did)
    assert [k.did_key() for k in dao.state.keys_for(founder.did)] == [key.did_key]


def test_a_provider_binds_its_did_plc_after_the_grant(dao: Dao, world: World) -> None:
    provider = Plc("provider")
    key = signer("provider-plaza")
    dao.grant_role(world.agent, provider.did, "provider", T0 + 1)
    proof = proof_value(provider.list_key(key.did_key))
    with pytest.raises(NotAllowedError, match="keeps it"):
        dao.register(key, provider.did, "person", T0 + 2, proof=proof)
    dao.register(key, provider.did, "provider", T0 + 3, proof=proof)
    assert dao.state.is_provider(provider.did)
    assert [k.did_key() for k in dao.state.keys_for(provider.did)] == [key.did_key]


def test_a_did_key_needs_no_registration(dao: Dao) -> None:
    """It would change nothing (a did:key names its key and is a person by default), and it
    was the one event any stranger could append over HTTP, as often as they liked."""
    stranger = signer("registers-itself")
    with pytest.raises(NotAllowedError, match="needs no registration"):
        dao.register(stranger, stranger.did, "person", T0 + 1)
