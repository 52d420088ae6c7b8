"""The settlement reconciler: decide() with a fake clock, observe() against a real market,
and the executor through the loop and the guard."""

from __future__ import annotations

import hashlib

import pytest

from plaza.agents.loop import AgentLoop, LedgerRecorder
from plaza.agents.settlement import (
    Penalty,
    SettlementDesired,
    SettlementExecutor,
    SettlementObserved,
    decide,
    observe,
)
from plaza.agents.types import MandateLimits
from plaza.atproto.crypto import PrivateKey
from plaza.dao import parse_mandate
from plaza.errors import InvalidInputError
from plaza.ledger import MemoryEventStore
from tests.agents.clock import FakeClock
from tests.market.conftest import EPOCH_S, GENESIS, TEST_MANDATE, World, make_world
from tests.market.test_end_to_end import all_up, down_at
from tests.market.test_rejections import contracted

LIMITS = MandateLimits()
E = EPOCH_S * 1000


def obs(clock: FakeClock, **kw: object) -> SettlementObserved:
    base: dict[str, object] = {"now_ms": clock.now_ms, "due_epochs": (), "owed": 0, "escrow": 0}
    base.update(kw)
    return SettlementObserved(**base)  # type: ignore[arg-type]


def test_nothing_due_nothing_to_do() -> None:
    clock = FakeClock()
    assert decide(obs(clock, owed=500, escrow=0), SettlementDesired(), LIMITS) == []


def test_a_due_epoch_is_funded_then_settled() -> None:
    clock = FakeClock(step=300)
    actions = decide(
        obs(clock, due_epochs=(3, 4), owed=12_345, escrow=2_345),
        SettlementDesired(buffer_ppm=100_000),
        LIMITS,
    )
    fund, settle = actions
    assert fund.kind == "settlement.pay"
    assert fund["amount"] == 10_000 + 1_000  # the shortfall and a 10% margin
    assert fund["cost"] == pytest.approx(110.0)
    assert fund.reason.rule == "settlement.fund-escrow"
    assert fund.reason.number("owed") == 12_345
    assert (settle.kind, settle["epoch"], settle["epochs"]) == ("settlement.settle", 4, (3, 4))
    # Enough in escrow: settle only.
    [only] = decide(obs(clock, due_epochs=(4,), owed=100, escrow=100), SettlementDesired(), LIMITS)
    assert only.kind == "settlement.settle"


def test_penalties_become_actions_stamped_with_the_time() -> None:
    clock = FakeClock(step=10)
    actions = decide(
        obs(
            clock,
            penalties=(
                Penalty("did:plc:slow", "suspended", 2),
                Penalty("did:plc:gone", "offboarded", 4),
            ),
        ),
        SettlementDesired(),
        LIMITS,
    )
    assert [(a.kind, a["provider"], a["proposed_ms"]) for a in actions] == [
        ("provider.suspend", "did:plc:slow", clock.now_ms),
        ("provider.offboard", "did:plc:gone", clock.now_ms),
    ]
    assert actions[1].reason.rule == "settlement.offboard-after-failures"


def test_an_unpaid_balance_is_funded_even_with_nothing_due() -> None:
    clock = FakeClock()
    [fund] = decide(
        obs(clock, owed=700, escrow=200, reprocure_needs=("n-1",)), SettlementDesired(), LIMITS
    )
    assert (fund.kind, fund["amount"]) == ("settlement.pay", 500)


def test_impossible_observations_are_refused() -> None:
    with pytest.raises(InvalidInputError):
        decide(obs(FakeClock(), owed=-1), SettlementDesired(), LIMITS)


def _evidence(world: World, epoch: int, b_down: set[int]) -> None:
    t = GENESIS + (epoch + 1) * E + 1_000
    for p, lat in (("p1", 100), ("p2", 150), ("p3", 300)):
        world.market.report_probes(
            world.probes(p, epoch, {"a": all_up(lat), "b": down_at(b_down, lat), "c": all_up(lat)}),
            t,
        )
    for name, cid in world.contract_ids.items():  # type: ignore[attr-defined]
        world.market.report_usage(world.usage(name, cid, epoch, {"account": 300}), t)


def test_observe_reads_what_settling_will_owe() -> None:
    mandate = parse_mandate(
        TEST_MANDATE.replace(
            '[actions."provider.suspend"]\nclass = "automatic"\n',
            '[actions."provider.suspend"]\nclass = "optimistic"\nwindow = "24h"\n',
        )
        + '\n[actions."settlement.settle"]\nclass = "automatic"\n'
    )
    world = make_world(MemoryEventStore(), mandate, suspend_after=1)
    world.contract_ids = contracted(world)  # type: ignore[attr-defined]
    m = world.market
    desired = SettlementDesired(evidence_grace_s=600)
    # Before the epoch has ended (and its grace passed) nothing is due.
    assert observe(m.state, GENESIS + E + 599_000, desired).due_epochs == ()
    _evidence(world, 0, set(range(20)))
    seen = observe(m.state, GENESIS + E + 600_000, desired)
    assert seen.due_epochs == (0,)
    assert seen.escrow == 0 and seen.owed > 0
    key = PrivateKey.from_bytes("ES256K", hashlib.sha256(b"settler").digest())
    clock = FakeClock(epoch_ms=GENESIS + E + 600_000, step=0)
    from plaza.ledger import Ledger

    loop = AgentLoop(
        mandate,
        SettlementExecutor(m, lambda: clock.now_ms),
        LedgerRecorder(Ledger(MemoryEventStore()), key),
        lambda p: f"p{p}",
    )
    records = loop.submit(decide(seen, desired, LIMITS), clock.now_ms, {})
    assert [r.outcome for r in records] == ["executed", "executed"]
    # Settling paid exactly what observe() said it would owe.
    assert sum(inv.amount for inv in m.state.invoices.values()) == seen.owed
    assert sum(m.state.invoice_paid.values()) == seen.owed
    # Provider b failed the epoch; the mandate makes suspending it optimistic, so the
    # settlement left it pending and the reconciler proposes it.
    after = observe(m.state, clock.now_ms, desired)
    assert after.due_epochs == ()
    assert [(p.provider, p.status) for p in after.penalties] == [
        (world.party("b").did, "suspended")
    ]
    [proposed] = loop.submit(decide(after, desired, LIMITS), clock.now_ms, {})
    assert (proposed.outcome, proposed.verdict) == ("proposed", "optimistic:86400s")
    # Asked again while it waits, the loop does not propose it twice.
    assert loop.submit(decide(after, desired, LIMITS), clock.now_ms, {}) == []
    clock.advance(288)  # a day of five-minute steps: the window has passed
    [done] = loop.submit([], clock.now_ms, {})
    assert done.outcome == "executed"
    assert m.state.providers[world.party("b").did].status == "suspended"
