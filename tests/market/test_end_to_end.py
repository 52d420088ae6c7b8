"""The issue's end-to-end scenario, on every ledger backend, run by a market alone and
by a market under a real DAO (where bonds, escrow and payments are DAO actions).

Three hosting providers (A, B, C) and three probers (P1, P2, P3). A request for 1000
accounts; A's first bid is unsigned and C's first is over the maximum price, both
rejected; the award respects a 40% share limit. Two epochs of 100 one-minute windows:
B is down in some windows, C over-reports storage. Every invoice and payment below is
computed by hand in the comments and compared with what the market recorded.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from plaza.dao.beancount import to_beancount as dao_beancount
from plaza.ledger import MemoryEventStore
from plaza.market import (
    MarketState,
    NotApprovedError,
    OverMaxPriceError,
    UnsignedError,
)
from plaza.market.books import to_beancount
from plaza.market.journal import MARKET_ESCROW, payable
from tests.market.conftest import (
    EPOCH_S,
    GENESIS,
    HOUR,
    StoreFactory,
    World,
    make_dao_world,
    make_world,
)

W = EPOCH_S // 60  # windows per epoch
E0_END = GENESIS + EPOCH_S * 1000
E1_END = GENESIS + 2 * EPOCH_S * 1000

RFB = {
    "service": "hosting",
    "quantity": 1000,
    "region": "eu",
    "start_ms": GENESIS,
    "term_s": 2 * EPOCH_S,
    "max_prices": {
        "account": 10_000_000,  # 10 cents per account-epoch
        "gb_hour": 2_000_000,
        "request": 1_000,
        "egress_gb": 5_000_000,
    },
    "sla": {"availability_ppm": 999_000, "latency_p95_ms": 1_000, "durability_ppm": 999_999},
    "deadline_ms": GENESIS - 2 * HOUR,
    "min_bond": 10_000,
    "profile": {"gb_hour": 1, "request": 100},
}


def all_up(latency: int) -> tuple[list[int], list[int]]:
    return [1] * W, [latency] * W


def down_at(windows: set[int], latency: int) -> tuple[list[int], list[int]]:
    return [0 if w in windows else 1 for w in range(W)], [latency] * W


def build(world: World) -> None:
    for i, name in enumerate(("a", "b", "c")):
        world.register(name, 10 + i)
    for i, name in enumerate(("p1", "p2", "p3")):
        world.register(name, 20 + i, services=("prober",), bond=0)


@pytest.mark.parametrize("mode", ["standalone", "dao"])
def test_end_to_end(store_factory: StoreFactory, tmp_path: Path, mode: str) -> None:
    """The scenario on each backend, by a market alone and by a market under a DAO."""
    dao = None
    if mode == "dao":
        dao, world = make_dao_world(store_factory())
    else:
        world = make_world(store_factory())
    m = world.market
    build(world)
    m.fund_escrow(5_000, GENESIS - 4 * HOUR, "first funding")
    rfb = m.create_rfb(RFB, GENESIS - 3 * HOUR)
    assert rfb.id == "rfb-1"

    # Bids. Rejected ones change nothing: the ledger length and the state stay put.
    t_bid = GENESIS - int(2.5 * HOUR)
    size = len(m.ledger)
    before = m.state.fingerprint()
    with pytest.raises(UnsignedError):
        m.submit_bid(world.bid("a", rfb.id, account=4_000_000, sign=False), t_bid)
    with pytest.raises(OverMaxPriceError) as over:
        m.submit_bid(world.bid("c", rfb.id, account=12_000_000), t_bid)
    assert "over the maximum 10000000" in over.value.message
    assert over.value.code == "OverMaxPrice"
    assert len(m.ledger) == size and m.state.fingerprint() == before
    m.submit_bid(world.bid("a", rfb.id, account=4_000_000), t_bid)
    m.submit_bid(world.bid("b", rfb.id, account=5_000_000), t_bid)
    m.submit_bid(world.bid("c", rfb.id, account=6_000_000, bond=20_000), t_bid)

    # Award. Bundles (price of one account for one epoch under the profile):
    #   A: 4,000,000 + 1 GB-h x 1,000,000 + 100 requests x 500 = 5,050,000
    #   B: 6,050,000; C: 7,050,000. Same reliability prior and latency promise for all;
    #   A is cheapest and has a bigger bond than C, so the order is A, B, C.
    # Each offered 600, but no provider may hold more than 40% of the 1000 accounts:
    # A 400, B 400, C the remaining 200.
    plan, contracts = m.award(rfb.id, GENESIS - 2 * HOUR)
    got = {ln.score.provider: ln.allocated for ln in plan.lines}
    a, b, c = (world.party(n).did for n in "abc")
    assert got == {a: 400, b: 400, c: 200}
    assert [ln.score.provider for ln in plan.lines] == [a, b, c]
    assert plan.lines[0].score.price_ppm == 1_000_000
    assert plan.lines[1].score.price_ppm == 5_050_000 * 1_000_000 // 6_050_000
    assert all(ln.verdict == "optimistic" and ln.window_s == 3600 for ln in plan.lines)
    assert "cut" in plan.lines[0].reason
    by = {ct.provider: ct for ct in contracts}
    ca, cb, cc = by[a].id, by[b].id, by[c].id

    # Contracts: the provider signs the terms; the agent may sign for the DAO only
    # after the award's one-hour veto window.
    for name, cid in (("a", ca), ("b", cb), ("c", cc)):
        ct = m.state.contracts[cid]
        doc = world.party(name).sign(
            {
                "$type": "terms",
                "provider": ct.provider,
                "market": m.operator_did,
                "contract": cid,
                "terms_digest": ct.terms_digest(),
                "nonce": f"terms-{cid}",
            }
        )
        m.sign_contract(doc, GENESIS - int(1.5 * HOUR))
    with pytest.raises(NotApprovedError):
        m.approve_contract(ca, GENESIS - int(1.5 * HOUR))
    for cid in (ca, cb, cc):
        assert m.approve_contract(cid, GENESIS - HOUR).status == "active"

    # Epoch 0 probes. B: windows 10 and 30 are down by quorum (3 and 2 of 3 probers);
    # window 20 is seen down by P1 only, which is not a quorum (f + 1 = 2), so it
    # counts up.
    t0 = E0_END + 60_000
    m.report_probes(
        world.probes("p1", 0, {"a": all_up(100), "b": down_at({10, 20, 30}, 100), "c": all_up(90)}),
        t0,
    )
    m.report_probes(
        world.probes("p2", 0, {"a": all_up(120), "b": down_at({10, 30}, 150), "c": all_up(95)}), t0
    )
    m.report_probes(
        world.probes("p3", 0, {"a": all_up(200), "b": down_at({10, 30}, 300), "c": all_up(99)}), t0
    )

    honest_a = {"account": 400, "gb_hour": 400, "request": 40_000, "egress_gb": 2}
    honest_b = {"account": 400, "gb_hour": 380, "request": 30_000, "egress_gb": 1}
    claimed_c = {"account": 200, "gb_hour": 300, "request": 25_000, "egress_gb": 1}
    seen_c = {"account": 200, "gb_hour": 200, "request": 24_000, "egress_gb": 1}
    for epoch, t in ((0, t0),):
        report_epoch(world, epoch, t, (ca, cb, cc), (honest_a, honest_b, claimed_c, seen_c))

    # Settle epoch 0 (amounts in millionths of a cent, then floored to cents):
    # A: 400 x 4,000,000 + 400 x 1,000,000 + 40,000 x 500 + 2 x 2,000,000
    #    = 1,600,000,000 + 400,000,000 + 20,000,000 + 4,000,000 = 2,024,000,000
    #    all 100 windows up, no credit                                 -> 2024 cents
    # B: 400 x 5,000,000 + 380 x 1,000,000 + 30,000 x 500 + 1 x 2,000,000 = 2,397,000,000
    #    2 of 100 windows down: unpaid 2,397,000,000 x 2 / 100 = 47,940,000
    #    base 2,349,060,000; availability 98% < 99% -> 25% credit = 587,265,000
    #    2,349,060,000 - 587,265,000 = 1,761,795,000                 -> 1761 cents
    # C: storage claimed 300 GB-h, observed 200; 300 > 200 x 1.05 = 210, so flagged and
    #    paid 200. Requests claimed 25,000, observed 24,000; limit 25,200, paid 25,000.
    #    200 x 6,000,000 + 200 x 1,000,000 + 25,000 x 500 + 1 x 2,000,000
    #    = 1,200,000,000 + 200,000,000 + 12,500,000 + 2,000,000 = 1,414,500,000 -> 1414
    # Owed 2024 + 1761 + 1414 = 5199, escrow holds 5000: paid pro rata,
    #    A 2024 x 5000 // 5199 = 1946, B 1761 x 5000 // 5199 = 1693,
    #    C 1414 x 5000 // 5199 = 1359; 4998 paid, 201 still owed, 2 left in escrow.
    r0 = m.settle(0, t0 + 10 * 60_000)
    amounts = {i.contract: i.amount for i in r0.invoices}
    assert amounts == {ca: 2024, cb: 1761, cc: 1414}
    inv_b = m.state.invoices[f"inv-{cb}-0"]
    assert (inv_b.down, inv_b.availability_ppm, inv_b.credit_ppm) == (2, 980_000, 250_000)
    assert inv_b.latency_p95_ms == 150  # the median of 100/150/300 in every up window
    inv_c = m.state.invoices[f"inv-{cc}-0"]
    storage = next(ln for ln in inv_c.lines if ln.unit == "gb_hour")
    assert (storage.reported, storage.observed, storage.verified, storage.flagged) == (
        300,
        200,
        200,
        True,
    )
    assert r0.payments == {f"inv-{ca}-0": 1946, f"inv-{cb}-0": 1693, f"inv-{cc}-0": 1359}
    assert (r0.owed, r0.paid, r0.shortfall) == (5199, 4998, 199)
    assert [n.kind for n in r0.needs] == ["reprocure"]
    assert m.state.journal.balance(MARKET_ESCROW) == 2
    # Epoch 0 moved A and C off probation (one clean epoch); B failed its SLA.
    assert m.state.providers[a].status == "active"
    assert m.state.providers[c].status == "active"
    assert m.state.providers[b].failed_streak == 1

    # Epoch 1. B is down in window 50 only; P3 misses C's first 50 windows, so those
    # windows lack a quorum and count as up.
    t1 = E1_END + 60_000
    m.report_probes(
        world.probes("p1", 1, {"a": all_up(100), "b": down_at({50}, 100), "c": all_up(90)}), t1
    )
    m.report_probes(
        world.probes("p2", 1, {"a": all_up(120), "b": down_at({50}, 150), "c": all_up(95)}), t1
    )
    up, lat = all_up(99)
    m.report_probes(world.probes("p3", 1, {"a": all_up(200), "b": down_at({50}, 300)}), t1)
    m.report_probes(world.probes("p3", 1, {"c": (up[50:], lat[50:])}, windows_from=50), t1)
    report_epoch(world, 1, t1, (ca, cb, cc), (honest_a, honest_b, claimed_c, seen_c))
    m.fund_escrow(10_000, t1, "second funding")

    # Settle epoch 1:
    # A: 2024 again. C: 1414 again (50 unjudged windows count up).
    # B: gross 2,397,000,000; 1 window down: unpaid 23,970,000; base 2,373,030,000;
    #    availability 99.0% is not below 99% but below 99.9% -> 10% credit 237,303,000;
    #    2,135,727,000                                                   -> 2135 cents
    # Owed: 201 left from epoch 0 + 2024 + 2135 + 1414 = 5774; escrow 10,002 pays all.
    r1 = m.settle(1, t1 + 10 * 60_000)
    assert {i.contract: i.amount for i in r1.invoices} == {ca: 2024, cb: 2135, cc: 1414}
    assert m.state.invoices[f"inv-{cc}-1"].judged == 50
    assert (r1.owed, r1.paid, r1.shortfall) == (5774, 5774, 0)
    assert r1.payments[f"inv-{ca}-0"] == 2024 - 1946
    assert m.state.journal.balance(MARKET_ESCROW) == 10_002 - 5774
    for did in (a, b, c):
        assert m.state.journal.balance(payable(did)) == 0
    # B failed twice in a row: suspended (the test mandate lets the agent suspend).
    assert m.state.providers[b].status == "suspended"
    assert "2 epochs in a row" in m.state.providers[b].reason

    # The books balance: bean-check accepts them, balance assertions included. Under a
    # DAO the payments are the DAO's: its books hold the escrow and every release.
    check_books(to_beancount(m.state, title="market e2e"), tmp_path)
    if dao is not None:
        books = dao.state.books
        assert books.balance("Expenses:Infrastructure") == 4998 + 5774
        assert books.balance("Assets:Escrow:Market") == 10_002 - 5774
        assert books.balance("Assets:Treasury") == 1_000_000 - 15_000
        check_books(dao_beancount(books, title="Plaza DAO"), tmp_path)
        kinds = [a.action.kind for a in dao.state.actions]
        assert kinds.count("escrow.release") == len(r0.payments) + len(r1.payments)

    # Replaying the ledger into a fresh state rebuilds exactly the same market.
    replayed = MarketState()
    for ev in m.ledger.read():
        replayed.apply(ev)
    assert replayed.fingerprint() == m.state.fingerprint()


def report_epoch(
    world: World,
    epoch: int,
    t: int,
    contracts: tuple[str, str, str],
    usage: tuple[dict[str, int], ...],
) -> None:
    """Usage from A, B, C and observations of it from P1 and P2 (``usage`` holds A's,
    B's, C's claim and what the observers saw of C)."""
    ca, cb, cc = contracts
    honest_a, honest_b, claimed_c, seen_c = usage
    m = world.market
    m.report_usage(world.usage("a", ca, epoch, honest_a), t)
    m.report_usage(world.usage("b", cb, epoch, honest_b), t)
    m.report_usage(world.usage("c", cc, epoch, claimed_c), t)
    for observer in ("p1", "p2"):
        m.report_observation(world.usage(observer, ca, epoch, honest_a, observer=True), t)
        m.report_observation(world.usage(observer, cb, epoch, honest_b, observer=True), t)
        m.report_observation(world.usage(observer, cc, epoch, seen_c, observer=True), t)


def test_memory_store_runs_the_same_market() -> None:
    world = make_world(MemoryEventStore())
    build(world)
    assert len(world.market.state.providers) == 6


def bean_check() -> str:
    found = shutil.which("bean-check") or str(Path(sys.executable).parent / "bean-check")
    assert Path(found).exists(), "bean-check is a dev dependency (beancount)"
    return found


def check_books(text: str, tmp_path: Path) -> None:
    """Run the real bean-check on ``text``; fail with its output if it complains."""
    path = tmp_path / "books.beancount"
    path.write_text(text, encoding="utf-8")
    done = subprocess.run([bean_check(), str(path)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
