"""Provider registration proves the DID: a did:key signs as itself, a did:plc carries its
chain of PLC operations listing the signing key; nobody registers somebody else's DID, and
a registration is accepted once, only while fresh and only by the market it names."""

from __future__ import annotations

from typing import Any

import pytest

from plaza.atproto.plc import create_genesis, create_update
from plaza.atproto.plc.proof import PLAZA_KEY, proof_value
from plaza.dao.treasury import escrow_account
from plaza.ledger import Ledger, MemoryEventStore
from plaza.market import (
    BondTooSmallError,
    ClosedError,
    IdentityProofError,
    Market,
    MarketInputError,
    ReplayError,
    UnknownProviderError,
    WrongMarketError,
    sign_doc,
)
from plaza.market.dao_port import bond_escrow_id
from plaza.market.journal import bond_escrow
from plaza.market.registry import FRESH_MS
from tests.market.conftest import (
    GENESIS,
    HOUR,
    MARKET_DID,
    StoreFactory,
    key_for,
    make_dao_world,
    make_world,
    plc_identity,
)
from tests.market.test_end_to_end import RFB
from tests.market.test_rejections import unchanged

NOW = GENESIS - 5 * HOUR


def doc_for(
    key_n: int, did: str, *, proof: Any = None, signed_ms: int = NOW, market: str = MARKET_DID
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "$type": "registration",
        "provider": did,
        "market": market,
        "key": key_for(key_n).did_key(),
        "services": ["hosting"],
        "regions": ["eu"],
        "capacity": {"hosting": {"accounts": 10}},
        "prices": {"hosting": {"account": 1}},
        "bond": 0,
        "endpoint": "https://p.example",
        "nonce": f"reg-{key_n}-{signed_ms}",
        "signed_ms": signed_ms,
    }
    if proof is not None:
        body["proof"] = proof
    return sign_doc(key_for(key_n), body)


def test_a_did_plc_registers_with_its_chain_and_a_did_key_as_itself(
    store_factory: StoreFactory,
) -> None:
    world = make_world(store_factory())
    m = world.market
    did, proof = plc_identity(key_for(1), "owner")
    assert m.register_provider(doc_for(1, did, proof=proof), NOW) == did
    key_did = key_for(2).did_key()
    assert m.register_provider(doc_for(2, key_did), NOW) == key_did
    # A replayed ledger checks every proof again and ends in the same state.
    again = Market(
        Ledger(m.ledger.store), operator_did=m.operator_did, operator_key=None, mandate=m.mandate
    )
    assert again.state.fingerprint() == m.state.fingerprint()
    assert set(again.state.providers) == {did, key_did}


def test_nobody_registers_a_did_they_do_not_control() -> None:
    world = make_world(MemoryEventStore())
    m = world.market
    victim, victim_proof = plc_identity(key_for(1), "victim")
    # The thief signs with its own key, claiming the victim's DID: with no proof, with the
    # victim's genuine (public) chain, which does not list the thief's key, or with the
    # thief's own chain, which is for another DID.
    err = unchanged(world, IdentityProofError, lambda: m.register_provider(doc_for(9, victim), NOW))
    assert "needs a proof" in err.message
    err = unchanged(
        world,
        IdentityProofError,
        lambda: m.register_provider(doc_for(9, victim, proof=victim_proof), NOW),
    )
    assert "does not list" in err.message
    _, thief_proof = plc_identity(key_for(9), "thief")
    unchanged(
        world,
        IdentityProofError,
        lambda: m.register_provider(doc_for(9, victim, proof=thief_proof), NOW),
    )
    # A did:key is only its own key; other DID methods cannot be proven offline.
    err = unchanged(
        world,
        IdentityProofError,
        lambda: m.register_provider(doc_for(9, key_for(1).did_key()), NOW),
    )
    assert "own key" in err.message
    unchanged(
        world,
        IdentityProofError,
        lambda: m.register_provider(doc_for(9, "did:web:victim.example"), NOW),
    )
    unchanged(
        world,
        IdentityProofError,
        lambda: m.register_provider(doc_for(9, key_for(9).did_key(), proof=thief_proof), NOW),
    )
    unchanged(
        world,
        MarketInputError,
        lambda: m.register_provider(doc_for(9, victim, proof=["not", "a", "map"]), NOW),
    )
    assert m.state.providers == {}


def test_a_key_the_did_lists_under_plaza_may_register_it() -> None:
    world = make_world(MemoryEventStore())
    m = world.market
    rotation = key_for(1)
    did, genesis = create_genesis(
        key=rotation,
        rotation_keys=[rotation.did_key()],
        signing_key=rotation.did_key(),
        handle="owner.test",
        pds_endpoint="https://owner.example",
    )
    unlisted = proof_value([genesis])
    unchanged(
        world,
        IdentityProofError,
        lambda: m.register_provider(doc_for(3, did, proof=unlisted), NOW),
    )
    methods = {**genesis.verification_methods, PLAZA_KEY: key_for(3).did_key()}
    update = create_update(genesis, rotation, verification_methods=methods)
    listed = proof_value([genesis, update])
    assert m.register_provider(doc_for(3, did, proof=listed), NOW) == did


@pytest.mark.parametrize("skew", [FRESH_MS + 1, -(FRESH_MS + 1)], ids=["stale", "future"])
def test_a_registration_is_accepted_only_while_fresh(skew: int) -> None:
    world = make_world(MemoryEventStore())
    m = world.market
    did, proof = plc_identity(key_for(1), "owner")
    doc = doc_for(1, did, proof=proof, signed_ms=NOW - skew)
    err = unchanged(world, IdentityProofError, lambda: m.register_provider(doc, NOW))
    assert "sign it again" in err.message
    unsigned_time = {k: v for k, v in doc.items() if k not in ("signed_ms", "sig")}
    unchanged(
        world,
        MarketInputError,
        lambda: m.register_provider(sign_doc(key_for(1), unsigned_time), NOW),
    )


def test_a_registration_is_accepted_once() -> None:
    world = make_world(MemoryEventStore())
    m = world.market
    did, proof = plc_identity(key_for(1), "owner")
    doc = doc_for(1, did, proof=proof)
    m.register_provider(doc, NOW)
    unchanged(world, ReplayError, lambda: m.register_provider(doc, NOW + 1000))
    fresh = doc_for(1, did, proof=proof, signed_ms=NOW + 1)
    unchanged(world, ReplayError, lambda: m.register_provider(fresh, NOW + 1000))


def test_a_registration_is_accepted_only_by_the_market_it_names(
    store_factory: StoreFactory,
) -> None:
    """A fresh registration seen at one market (its ledger is public) cannot be replayed
    at another market within its freshness window: it names its market."""
    ours = make_world(store_factory())
    theirs = make_world(MemoryEventStore(), operator=201)
    did, proof = plc_identity(key_for(1), "owner")
    doc = doc_for(1, did, proof=proof, market=theirs.market.operator_did)
    assert theirs.market.register_provider(doc, NOW) == did
    m = ours.market
    err = unchanged(ours, WrongMarketError, lambda: m.register_provider(doc, NOW + 1000))
    assert (err.code, err.status) == ("WrongMarket", 403)
    assert theirs.market.operator_did in err.message and m.operator_did in err.message
    unnamed = sign_doc(key_for(1), {k: v for k, v in doc.items() if k not in ("market", "sig")})
    err = unchanged(ours, MarketInputError, lambda: m.register_provider(unnamed, NOW))
    assert "market" in err.message
    assert m.register_provider(doc_for(1, did, proof=proof), NOW + 1000) == did


# -- bonds: declared at registration, counted once a receipt names the payment -------------


@pytest.mark.parametrize("mode", ["standalone", "dao"])
def test_a_bond_counts_only_once_its_payment_is_receipted(
    store_factory: StoreFactory, mode: str
) -> None:
    dao = None
    if mode == "dao":
        dao, world = make_dao_world(store_factory())
    else:
        world = make_world(store_factory())
    m = world.market
    a = world.register("a", 10, bond=100_000, receipt=False).did
    p = m.state.providers[a]
    assert (p.bond, p.bond_declared, p.bond_received) == (0, 100_000, 0)
    assert m.state.journal.balance(bond_escrow(a)) == 0
    if dao is not None:
        assert bond_escrow_id(a) not in dao.state.escrows
    m.create_rfb(RFB, GENESIS - 3 * HOUR)
    t_bid = GENESIS - int(2.5 * HOUR)

    # Until a receipt: no bid pledging a bond, so none where the request wants one.
    err = unchanged(
        world, BondTooSmallError, lambda: m.submit_bid(world.bid("a", "rfb-1", account=1), t_bid)
    )
    assert "no receipt yet" in err.message
    unbonded = world.bid("a", "rfb-1", account=1, bond=0, nonce="unbonded")
    unchanged(world, BondTooSmallError, lambda: m.submit_bid(unbonded, t_bid))

    # Malformed or unacceptable receipts change nothing.
    t = GENESIS - 4 * HOUR
    unchanged(world, MarketInputError, lambda: m.receive_bond(a, 10, "", t))
    unchanged(world, MarketInputError, lambda: m.receive_bond(a, 0, "pay-1", t))
    unchanged(world, ClosedError, lambda: m.receive_bond(a, 100_001, "pay-1", t))
    stranger = key_for(99).did_key()
    unchanged(world, UnknownProviderError, lambda: m.receive_bond(stranger, 10, "pay-1", t))
    forged = {"provider": a, "amount": 10, "reference": "pay-x", "postings": []}
    ev = m.ledger.build(world.operator.key, author_did=world.operator.did,
                        type="market.bond.received", payload=forged, time=t)  # fmt: skip
    unchanged(world, MarketInputError, lambda: m.state.apply(ev))

    m.receive_bond(a, 60_000, "pay-1", t)
    unchanged(world, ReplayError, lambda: m.receive_bond(a, 10, "pay-1", t))
    unchanged(world, ClosedError, lambda: m.receive_bond(a, 40_001, "pay-2", t))
    p = m.receive_bond(a, 40_000, "pay-2", t)
    assert (p.bond, p.bond_received) == (100_000, 100_000)
    assert m.state.journal.balance(bond_escrow(a)) == 100_000
    if dao is not None:
        assert dao.state.books.balance(escrow_account(bond_escrow_id(a))) == 100_000
    bid = m.submit_bid(world.bid("a", "rfb-1", account=1), t_bid)
    assert bid.bond == 50_000
    # A replayed ledger agrees.
    again = Market(
        Ledger(m.ledger.store), operator_did=m.operator_did, operator_key=None, mandate=m.mandate
    )
    assert again.state.providers[a] == m.state.providers[a]
