"""Forged, replayed and otherwise unacceptable documents are rejected with their reason
and change nothing — on every backend; and a ledger that holds one fails replay."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from plaza.ledger import MemoryEventStore
from plaza.market import (
    BadSignatureError,
    ClosedError,
    ExpiredError,
    MarketError,
    MarketInputError,
    MarketState,
    NotIndependentError,
    ProviderNotEligibleError,
    ReplayError,
    UnknownProviderError,
    WrongServiceError,
    sign_doc,
)
from tests.market.conftest import EPOCH_S, GENESIS, HOUR, StoreFactory, World, key_for, make_world
from tests.market.test_end_to_end import RFB, all_up, build

T_BID = GENESIS - int(2.5 * HOUR)
AFTER_E0 = GENESIS + EPOCH_S * 1000 + 60_000


def contracted(world: World) -> dict[str, str]:
    """Providers a, b, c with active contracts on rfb-1; returns name -> contract id."""
    m = world.market
    build(world)
    m.create_rfb(RFB, GENESIS - 3 * HOUR)
    for name, price in (("a", 4_000_000), ("b", 5_000_000), ("c", 6_000_000)):
        m.submit_bid(world.bid(name, "rfb-1", account=price, bond=20_000), T_BID)
    _, contracts = m.award("rfb-1", GENESIS - 2 * HOUR)
    out = {}
    for ct in contracts:
        name = next(n for n, p in world.parties.items() if p.did == ct.provider)
        doc = world.party(name).sign(
            {"$type": "terms", "provider": ct.provider, "market": m.operator_did,
             "contract": ct.id,
             "terms_digest": ct.terms_digest(), "nonce": f"t-{ct.id}"}
        )  # fmt: skip
        m.sign_contract(doc, GENESIS - HOUR)
        m.approve_contract(ct.id, GENESIS - HOUR)
        out[name] = ct.id
    return out


def unchanged(world: World, error: type[MarketError], call: Callable[[], Any]) -> MarketError:
    m = world.market
    size, fp = len(m.ledger), m.state.fingerprint()
    with pytest.raises(error) as info:
        call()
    assert len(m.ledger) == size, "a rejected document was written"
    assert m.state.fingerprint() == fp, "a rejected document changed the state"
    assert info.value.code and info.value.message
    return info.value


def test_bad_bids(store_factory: StoreFactory) -> None:
    world = make_world(store_factory())
    m = world.market
    build(world)
    m.create_rfb(RFB, GENESIS - 3 * HOUR)
    good = world.bid("a", "rfb-1", account=4_000_000)

    forged = sign_doc(world.party("b").key, {k: v for k, v in good.items() if k != "sig"})
    err = unchanged(world, BadSignatureError, lambda: m.submit_bid(forged, T_BID))
    assert "registered key" in err.message
    altered = {**good, "prices": {**good["prices"], "account": 1_000_000}}
    unchanged(world, BadSignatureError, lambda: m.submit_bid(altered, T_BID))
    stranger = sign_doc(key_for(99), {**{k: v for k, v in good.items() if k != "sig"},
                                      "provider": "did:plc:strangerxxxxxxxxxxxxxxxx"})  # fmt: skip
    unchanged(world, UnknownProviderError, lambda: m.submit_bid(stranger, T_BID))
    prober_bid = world.bid("p1", "rfb-1", account=4_000_000)
    unchanged(world, WrongServiceError, lambda: m.submit_bid(prober_bid, T_BID))
    late = world.bid("a", "rfb-1", account=4_000_000, expires=T_BID - 1, nonce="late")
    unchanged(world, ExpiredError, lambda: m.submit_bid(late, T_BID))
    unchanged(world, MarketInputError, lambda: m.submit_bid({**good, "quantity": -1}, T_BID))

    m.submit_bid(good, T_BID)
    err = unchanged(world, ReplayError, lambda: m.submit_bid(good, T_BID + 1))
    assert err.code == "Replayed"
    again = world.bid("a", "rfb-1", account=3_900_000, nonce="second")
    unchanged(world, ReplayError, lambda: m.submit_bid(again, T_BID + 1))

    m.set_status(world.party("b").did, "suspended", "test: breached terms", T_BID)
    b_bid = world.bid("b", "rfb-1", account=5_000_000)
    err = unchanged(world, ProviderNotEligibleError, lambda: m.submit_bid(b_bid, T_BID))
    assert "test: breached terms" in err.message
    after = world.bid("c", "rfb-1", account=6_000_000)
    unchanged(world, ClosedError, lambda: m.submit_bid(after, RFB["deadline_ms"]))


def test_bad_usage_reports(store_factory: StoreFactory) -> None:
    world = make_world(store_factory())
    m = world.market
    ids = contracted(world)
    usage = {"account": 100, "gb_hour": 10}
    good = world.usage("a", ids["a"], 0, usage)
    unchanged(world, ClosedError, lambda: m.report_usage(good, GENESIS + 1000))  # epoch open
    forged = sign_doc(world.party("b").key, {k: v for k, v in good.items() if k != "sig"})
    unchanged(world, BadSignatureError, lambda: m.report_usage(forged, AFTER_E0))
    inflated = {**good, "usage": {"account": 100, "gb_hour": 1000}}
    unchanged(world, BadSignatureError, lambda: m.report_usage(inflated, AFTER_E0))
    not_theirs = world.usage("b", ids["a"], 0, usage)
    unchanged(world, BadSignatureError, lambda: m.report_usage(not_theirs, AFTER_E0))
    m.report_usage(good, AFTER_E0)
    unchanged(world, ReplayError, lambda: m.report_usage(good, AFTER_E0))
    second = sign_doc(world.party("a").key, {**{k: v for k, v in good.items() if k != "sig"},
                                              "nonce": "another"})  # fmt: skip
    unchanged(world, ReplayError, lambda: m.report_usage(second, AFTER_E0))
    self_obs = world.usage("b", ids["b"], 0, usage, observer=True)
    unchanged(world, NotIndependentError, lambda: m.report_observation(self_obs, AFTER_E0))
    host_obs = world.usage("a", ids["b"], 0, usage, observer=True)
    unchanged(world, NotIndependentError, lambda: m.report_observation(host_obs, AFTER_E0))
    obs = world.usage("p1", ids["a"], 0, usage, observer=True)
    m.report_observation(obs, AFTER_E0)
    unchanged(world, ReplayError, lambda: m.report_observation(obs, AFTER_E0))


def test_bad_probe_samples(store_factory: StoreFactory) -> None:
    world = make_world(store_factory())
    m = world.market
    contracted(world)
    good = world.probes("p1", 0, {"a": all_up(100)})
    unchanged(world, ClosedError, lambda: m.report_probes(good, GENESIS + 1000))
    forged = sign_doc(world.party("p2").key, {k: v for k, v in good.items() if k != "sig"})
    unchanged(world, BadSignatureError, lambda: m.report_probes(forged, AFTER_E0))
    flipped = dict(good)
    flipped["series"] = [{**good["series"][0], "up": bytes(100)}]
    unchanged(world, BadSignatureError, lambda: m.report_probes(flipped, AFTER_E0))
    host = world.probes("a", 0, {"b": all_up(100)})
    unchanged(world, UnknownProviderError, lambda: m.report_probes(host, AFTER_E0))
    self_probe = world.probes("p1", 0, {"p1": all_up(1)})
    unchanged(world, NotIndependentError, lambda: m.report_probes(self_probe, AFTER_E0))
    m.report_probes(good, AFTER_E0)
    unchanged(world, ReplayError, lambda: m.report_probes(good, AFTER_E0))
    # The same samples under a new nonce: the windows are already reported.
    renonced = sign_doc(world.party("p1").key, {**{k: v for k, v in good.items() if k != "sig"},
                                                 "nonce": "fresh"})  # fmt: skip
    err = unchanged(world, ReplayError, lambda: m.report_probes(renonced, AFTER_E0))
    assert "already reported" in err.message
    m.settle(0, AFTER_E0 + 1)
    late = world.probes("p2", 0, {"a": all_up(100)})
    unchanged(world, ClosedError, lambda: m.report_probes(late, AFTER_E0 + 2))


def test_a_ledger_holding_a_forged_bid_fails_replay() -> None:
    """The operator can relay documents but not forge them: replay checks every one."""
    world = make_world(MemoryEventStore())
    m = world.market
    build(world)
    m.create_rfb(RFB, GENESIS - 3 * HOUR)
    good = world.bid("a", "rfb-1", account=4_000_000)
    forged = {**good, "prices": {**good["prices"], "account": 3_000_000}}
    ev = m.ledger.build(
        world.operator.key, author_did=world.operator.did, type="market.bid.submitted",
        payload={"doc": forged}, time=T_BID,
    )  # fmt: skip
    m.ledger.append(ev)  # the ledger checks only the operator's event signature
    fresh = MarketState()
    with pytest.raises(BadSignatureError):
        for e in m.ledger.read():
            fresh.apply(e)


def test_only_the_operator_writes_market_events() -> None:
    world = make_world(MemoryEventStore())
    intruder = key_for(77)
    ev = world.market.ledger.build(
        intruder, author_did=intruder.did_key(), type="market.escrow.funded",
        payload={"amount": 1, "postings": [["Assets:Escrow:Market", 1], ["Assets:Treasury", -1]]},
        time=GENESIS,
    )  # fmt: skip
    with pytest.raises(MarketError) as info:
        world.market.state.check(ev)
    assert info.value.code == "NotOperator"


FUNDED = {"amount": 1, "postings": [["Assets:Escrow:Market", 1], ["Assets:Treasury", -1]]}


@pytest.mark.parametrize(
    ("type_", "payload", "field"),
    [
        ("market.escrow.funded", {**FUNDED, "amount": True}, "amount"),
        ("market.escrow.funded", {**FUNDED, "amount": "1"}, "amount"),
        ("market.escrow.funded", {**FUNDED, "amount": 0}, "amount"),
        ("market.escrow.funded", {**FUNDED, "note": "extra"}, "note"),
        ("market.provider.status", {"provider": "did:key:z", "status": "active"}, "reason"),
        ("market.provider.status", {"provider": "x", "status": "a", "reason": "r"}, "provider"),
        ("market.need.raised", {"id": "n-1", "kind": "other", "service": "hosting",
          "provider": "", "accounts": 1, "contracts": [], "reason": "r"}, "kind"),
    ],
    ids=["bool", "numeric-string", "zero", "unknown-field", "missing", "not-a-did", "literal"],
)  # fmt: skip
def test_a_malformed_payload_is_refused_by_its_model(
    type_: str, payload: dict[str, Any], field: str
) -> None:
    """The operator's own event with a payload its model refuses: a clear error naming
    the field, and nothing changes."""
    world = make_world(MemoryEventStore())
    m = world.market
    ev = m.ledger.build(world.operator.key, author_did=world.operator.did, type=type_,
                        payload=payload, time=GENESIS)  # fmt: skip
    fp = m.state.fingerprint()
    with pytest.raises(MarketInputError) as info:
        m.state.apply(ev)
    assert info.value.code == "InvalidRequest"
    assert type_ in info.value.message and field in info.value.message, info.value.message
    assert m.state.fingerprint() == fp


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"quantity": "500"}, "rfb.quantity"),
        ({"region": "EU"}, "rfb.region"),
        ({"service": "ftp"}, "rfb.service: must be one of"),
        ({"sla": {"latency_p95_ms": 0}}, "rfb.sla.latency_p95_ms"),
        ({"max_prices": {"account": True}}, "rfb.max_prices.account"),
        ({"credit_ladder": [[990_000, 1], [999_000, 2]]}, "thresholds must fall"),
        ({"surprise": 1}, "unknown field 'surprise'"),
    ],
    ids=["quantity-string", "region-case", "service", "sla", "price-bool", "ladder", "extra"],
)
def test_a_malformed_request_for_bids_is_refused_naming_the_field(
    change: dict[str, Any], words: str
) -> None:
    world = make_world(MemoryEventStore())
    build(world)
    err = unchanged(
        world, MarketInputError, lambda: world.market.create_rfb({**RFB, **change}, T_BID)
    )
    assert words in err.message, err.message
