"""Penalties, offboarding with a migration need, disputes, and the award's determinism and
mandate limits."""

from __future__ import annotations

import hashlib

import pytest

from plaza.dao import parse_mandate
from plaza.ledger import Ledger, MemoryEventStore
from plaza.market import (
    ExpiredError,
    Market,
    MarketParams,
    NotApprovedError,
    ReplayError,
)
from plaza.market.journal import bond_escrow, bond_liability
from tests.market.conftest import (
    EPOCH_S,
    GENESIS,
    HOUR,
    TEST_MANDATE,
    StoreFactory,
    World,
    key_for,
    make_world,
    market_mandate,
)
from tests.market.test_end_to_end import RFB, W, all_up, build, down_at
from tests.market.test_rejections import T_BID, contracted

E = EPOCH_S * 1000


def probe_epoch(world: World, epoch: int, b_down: set[int]) -> None:
    t = GENESIS + (epoch + 1) * E + 60_000
    for p, lat in (("p1", 100), ("p2", 150), ("p3", 300)):
        world.market.report_probes(
            world.probes(p, epoch, {"a": all_up(lat), "b": down_at(b_down, lat), "c": all_up(lat)}),
            t,
        )


def test_repeated_failure_suspends_then_offboards_and_raises_a_migration_need() -> None:
    text_rule = '[actions."provider.offboard"]\nclass = "automatic"\n'
    mandate = parse_mandate(
        TEST_MANDATE.replace(
            '[actions."provider.offboard"]\nclass = "vote"\nproposal_type = "contract"\n', text_rule
        )
    )
    world = make_world(MemoryEventStore(), mandate, suspend_after=1, offboard_after=2)
    m = world.market
    ids = contracted(world)
    b = world.party("b").did
    probe_epoch(world, 0, set(range(10)))
    r0 = m.settle(0, GENESIS + E + 120_000)
    assert (b, "suspended") in [(p, s) for p, s, _ in r0.status_changes]
    probe_epoch(world, 1, set(range(20)))
    r1 = m.settle(1, GENESIS + 2 * E + 120_000)
    assert (b, "offboarded") in [(p, s) for p, s, _ in r1.status_changes]
    need = next(n for n in r1.needs if n.kind == "migration")
    assert need.provider == b and need.contracts == (ids["b"],)
    assert need.accounts == m.state.contracts[ids["b"]].quantity
    assert m.state.contracts[ids["b"]].status == "ended"
    assert "offboarded" in m.state.contracts[ids["b"]].end_reason
    # 10% of the 100,000 bond is forfeited, the rest returned; the escrow is empty.
    assert m.state.journal.balance("Income:Forfeits") == -10_000
    assert m.state.journal.balance(bond_escrow(b)) == 0
    assert m.state.journal.balance(bond_liability(b)) == 0
    assert [h.new for h in m.state.providers[b].history] == [
        "probation",
        "suspended",
        "offboarded",
    ]


@pytest.mark.parametrize("probers", [0, 1])
def test_one_clean_epoch_ends_probation_with_fewer_than_three_probers(probers: int) -> None:
    """docs/market.md: probation ends after one settled epoch in which the provider met
    every SLA; windows without a probe quorum count as up, so no quorum is needed."""
    world = make_world(MemoryEventStore())
    m = world.market
    ids = contracted(world)
    t = GENESIS + E + 60_000
    for p in ("p1",)[:probers]:
        m.report_probes(world.probes(p, 0, {"a": all_up(100), "b": all_up(100)}), t)
    assert m.state.params.min_probers == 3
    result = m.settle(0, GENESIS + E + 120_000)
    for name in ids:
        did = world.party(name).did
        assert (did, "active") in [(p, s) for p, s, _ in result.status_changes], name
        assert m.state.providers[did].status == "active"
        assert m.state.providers[did].met_epochs == 1


def test_offboarding_that_needs_a_vote_is_left_pending() -> None:
    world = make_world(MemoryEventStore(), suspend_after=1, offboard_after=2)
    m = world.market
    contracted(world)
    probe_epoch(world, 0, set(range(10)))
    m.settle(0, GENESIS + E + 120_000)
    probe_epoch(world, 1, set(range(10)))
    r1 = m.settle(1, GENESIS + 2 * E + 120_000)
    assert [(p.kind, p.verdict) for p in r1.pending] == [("provider.offboard", "vote")]
    assert m.state.providers[world.party("b").did].status == "suspended"
    assert not any(n.kind == "migration" for n in m.state.needs)


def dispute_doc(world: World, invoice: str, claim: int, nonce: str = "d1") -> dict[str, object]:
    evidence = hashlib.sha256(b"probe log of p1 for epoch 0").hexdigest()
    return world.party("b").sign(
        {
            "$type": "dispute",
            "provider": world.party("b").did,
            "market": world.market.operator_did,
            "invoice": invoice,
            "claim": claim,
            "reason": "window 3 was a prober outage, not ours",
            "evidence": [{"kind": "probe-log", "digest": evidence, "note": "our own probes"}],
            "nonce": nonce,
        }
    )


def test_dispute_upheld_is_paid_at_the_next_settlement(store_factory: StoreFactory) -> None:
    world = make_world(store_factory())
    m = world.market
    ids = contracted(world)
    m.fund_escrow(100_000, GENESIS)
    probe_epoch(world, 0, {3})
    t = GENESIS + E + 120_000
    m.settle(0, t)
    inv = f"inv-{ids['b']}-0"
    assert m.state.invoices[inv].amount == 0  # no usage report: nothing earned
    d = m.open_dispute(dispute_doc(world, inv, 500), t + 1000)
    assert (d.id, d.status, d.claim) == ("d-1", "open", 500)
    with pytest.raises(ReplayError):
        m.open_dispute(dispute_doc(world, inv, 400, nonce="d2"), t + 2000)
    resolved = m.resolve_dispute("d-1", t + 3000, outcome="upheld", amount=300)
    assert (resolved.status, resolved.amount) == ("upheld", 300)
    r = m.settle(1, GENESIS + 2 * E + 120_000)
    assert r.payments[inv] == 300


def test_dispute_after_the_window_is_expired() -> None:
    world = make_world(MemoryEventStore(), dispute_window_s=3600)
    m = world.market
    ids = contracted(world)
    t = GENESIS + E + 120_000
    m.settle(0, t)
    with pytest.raises(ExpiredError):
        m.open_dispute(dispute_doc(world, f"inv-{ids['b']}-0", 10), t + 3_600_001)


def fresh_bids(order: tuple[str, ...]) -> Market:
    world = make_world(MemoryEventStore())
    build(world)
    world.market.create_rfb(RFB, GENESIS - 3 * HOUR)
    prices = {"a": 4_000_000, "b": 5_000_000, "c": 6_000_000}
    for n in order:
        world.market.submit_bid(world.bid(n, "rfb-1", account=prices[n]), T_BID)
    return world.market


def test_award_is_deterministic_whatever_the_bid_order() -> None:
    plans = [
        fresh_bids(order).plan_award("rfb-1", GENESIS - 2 * HOUR).to_payload()
        for order in (("a", "b", "c"), ("c", "b", "a"), ("b", "a", "c"))
    ]
    assert plans[0] == plans[1] == plans[2]


def test_hhi_ceiling_cuts_the_award() -> None:
    # 40/40/20 has HHI 3600; a ceiling of 3500 forces a more even split.
    world = make_world(MemoryEventStore(), market_mandate(hhi_ceiling=3500))
    build(world)
    world.market.create_rfb(RFB, GENESIS - 3 * HOUR)
    for n, price in (("a", 4_000_000), ("b", 5_000_000), ("c", 6_000_000)):
        world.market.submit_bid(world.bid(n, "rfb-1", account=price), T_BID)
    plan = world.market.plan_award("rfb-1", GENESIS - 2 * HOUR)
    alloc = [ln.allocated for ln in plan.lines]
    total = sum(alloc)
    hhi = sum(a * a for a in alloc) * 10_000 // (total * total)
    assert hhi <= 3500
    assert all(a * 1_000_000 <= 400_000 * total for a in alloc)


def test_an_award_over_the_vote_threshold_needs_a_proposal() -> None:
    # A lone bidder: concentration limits apply only from 10,000 accounts here.
    world = make_world(MemoryEventStore(), market_mandate(concentration_min_accounts=10_000))
    build(world)
    m = world.market
    big = {**RFB, "term_s": 1000 * EPOCH_S}  # term cost far over vote_above
    m.create_rfb(big, GENESIS - 3 * HOUR)
    m.submit_bid(world.bid("a", "rfb-1", account=4_000_000, quantity=400), T_BID)
    plan, contracts = m.award("rfb-1", GENESIS - 2 * HOUR)
    assert plan.lines[0].verdict == "vote"
    with pytest.raises(NotApprovedError):
        m.approve_contract(contracts[0].id, GENESIS + 100 * HOUR)


def test_market_params_are_validated() -> None:
    from plaza.market import MarketInputError

    with pytest.raises(MarketInputError):
        MarketParams(epoch_s=1000, window_s=300)
    with pytest.raises(MarketInputError):
        MarketParams(min_probers=2, fault_f=1)
    with pytest.raises(MarketInputError):
        MarketParams(w_price=1)
    m = Market(
        Ledger(MemoryEventStore()),
        operator_did=key_for(1).did_key(),
        operator_key=key_for(1),
        mandate=market_mandate(),
    )
    assert not m.state.is_open
    assert W == 100
