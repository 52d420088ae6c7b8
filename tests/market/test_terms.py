"""Minimum terms, partial releases and standing offers: what a contract commits the DAO
to, and when it may give accounts back."""

from __future__ import annotations

from typing import Any

import pytest

from plaza.ledger import MemoryEventStore
from plaza.market import ClosedError, MarketInputError, MarketState, NotApprovedError
from plaza.market.award import term_cost
from tests.market.conftest import (
    EPOCH_S,
    GENESIS,
    HOUR,
    StoreFactory,
    World,
    make_world,
    market_mandate,
)
from tests.market.test_end_to_end import RFB, build
from tests.market.test_rejections import T_BID, unchanged

E = EPOCH_S * 1000
# One provider may hold the whole request (these tests are about terms, not shares).
ONE_PROVIDER = market_mandate(max_provider_share_ppm=1_000_000, hhi_ceiling=10_000)


def contract_on(world: World, name: str, rfb: dict[str, Any], quantity: int = 400) -> str:
    """Award one provider's bid on a fresh request built from ``rfb``; sign and approve it."""
    m = world.market
    created = m.create_rfb(rfb, GENESIS - 3 * HOUR)
    m.submit_bid(
        world.bid(name, created.id, account=4_000_000, quantity=quantity, bond=10_000), T_BID
    )
    _, [c] = m.award(created.id, GENESIS - 2 * HOUR)
    m.sign_contract(
        world.party(name).sign(
            {"$type": "terms", "provider": c.provider, "market": m.operator_did,
             "contract": c.id,
             "terms_digest": c.terms_digest(), "nonce": f"t-{c.id}"}
        ),
        GENESIS - HOUR,
    )  # fmt: skip
    m.approve_contract(c.id, GENESIS - HOUR)
    return c.id


def test_a_minimum_term_is_what_the_award_commits_and_when_release_opens(
    store_factory: StoreFactory,
) -> None:
    world = make_world(store_factory(), ONE_PROVIDER)
    m = world.market
    build(world)
    rfb = {**RFB, "term_s": 4 * EPOCH_S, "min_term_s": EPOCH_S}
    cid = contract_on(world, "a", rfb)
    c = m.state.contracts[cid]
    assert c.terms()["min_term_s"] == EPOCH_S and c.status == "active"
    # The commitment judged by the guard is one epoch (the minimum term), not four.
    one = term_cost(
        m.state.rfbs[c.rfb], m.state.rfbs[c.rfb].bundle_price(c.prices), 400, m.state.params
    )
    assert m.state.commitments[-1][1] == one > 0
    # Before the minimum term has run, neither a release nor an end is accepted.
    early = GENESIS + E - 1
    unchanged(world, ClosedError, lambda: m.release(cid, 100, "demand fell", early))
    unchanged(world, ClosedError, lambda: m.end_contract(cid, "demand fell", early))
    # Once it has: part of the accounts go back, the rest keeps running.
    m.release(cid, 150, "demand fell", GENESIS + E)
    c = m.state.contracts[cid]
    assert (c.quantity, c.released, c.held, c.status) == (400, 150, 250, "active")
    assert m.state.accounts_by_provider("hosting")[c.provider] == 250
    assert m.state.spare_capacity(c.provider, "hosting") == 1_000 - 250
    # Releasing everything (or more) is ending the contract, not a release.
    unchanged(world, MarketInputError, lambda: m.release(cid, 250, "all", GENESIS + E + 1))
    m.end_contract(cid, "no longer needed", GENESIS + E + 1)
    assert m.state.contracts[cid].status == "ended"
    assert c.provider not in m.state.accounts_by_provider("hosting")
    # Replay rebuilds the same state.
    fresh = MarketState()
    for ev in m.ledger.read():
        fresh.apply(ev)
    assert fresh.fingerprint() == m.state.fingerprint()


def test_a_release_checks_the_contract() -> None:
    world = make_world(MemoryEventStore(), ONE_PROVIDER)
    m = world.market
    build(world)
    cid = contract_on(world, "a", {**RFB, "min_term_s": 0})
    unchanged(world, MarketInputError, lambda: m.release(cid, 0, "nothing", GENESIS))
    m.end_contract(cid, "done", GENESIS)
    unchanged(world, ClosedError, lambda: m.release(cid, 1, "after the end", GENESIS + 1))
    with pytest.raises(MarketInputError, match="min_term_s"):
        m.create_rfb({**RFB, "min_term_s": RFB["term_s"] + 1}, GENESIS - 3 * HOUR)


def test_a_standing_offer_holds_no_capacity_and_is_paid_by_use(
    store_factory: StoreFactory,
) -> None:
    world = make_world(store_factory(), ONE_PROVIDER)
    m = world.market
    build(world)
    m.fund_escrow(10_000, GENESIS - 4 * HOUR)
    cid = contract_on(world, "b", {**RFB, "standing": True}, quantity=900)
    c = m.state.contracts[cid]
    assert c.standing and c.terms()["standing"] is True
    # Nothing committed, no capacity held, no share of the market.
    assert m.state.commitments[-1][1] == 0
    assert m.state.spare_capacity(c.provider, "hosting") == 1_000
    assert m.state.accounts_by_provider("hosting") == {}
    # What is paid is what was used and verified.
    for p in ("p1", "p2", "p3"):
        m.report_probes(
            world.probes(p, 0, {"b": ([1] * (EPOCH_S // 60), [100] * (EPOCH_S // 60))}),
            GENESIS + E + 1_000,
        )
    m.report_usage(world.usage("b", cid, 0, {"request": 200_000}), GENESIS + E + 2_000)
    result = m.settle(0, GENESIS + E + 3_000)
    [inv] = result.invoices
    assert inv.amount == 200_000 * 500 // 1_000_000  # request price 500 millionths of a cent
    assert result.payments == {inv.id: inv.amount}


def test_an_optimistic_suspension_waits_for_its_window_without_a_dao() -> None:
    from plaza.dao import parse_mandate
    from tests.market.conftest import TEST_MANDATE

    mandate = parse_mandate(
        TEST_MANDATE.replace(
            '[actions."provider.suspend"]\nclass = "automatic"\n',
            '[actions."provider.suspend"]\nclass = "optimistic"\nwindow = "24h"\n',
        )
    )
    world = make_world(MemoryEventStore(), mandate)
    m = world.market
    build(world)
    b = world.party("b").did
    proposed = GENESIS
    # Without a proposal time, or before the window has passed, it is refused.
    unchanged(world, NotApprovedError, lambda: m.set_status(b, "suspended", "SLA", GENESIS))
    unchanged(
        world,
        NotApprovedError,
        lambda: m.set_status(b, "suspended", "SLA", GENESIS + 23 * HOUR, proposed_ms=proposed),
    )
    m.set_status(b, "suspended", "SLA", GENESIS + 24 * HOUR, proposed_ms=proposed)
    p = m.state.providers[b]
    assert p.status == "suspended"
    assert "veto window passed" in p.reason
