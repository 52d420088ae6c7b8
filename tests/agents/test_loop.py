"""The loop against the real mandate guard, the real in-memory ledger and the simulator's
market: adversarial decisions are denied and the denial is in the ledger."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from plaza.agents.loop import (
    EVENT_TYPE,
    VOTE_WINDOW_S,
    AgentLoop,
    LedgerRecorder,
    MemoryProposer,
    Proposal,
    limits_from_mandate,
)
from plaza.agents.types import Action, Reason
from plaza.atproto.crypto import PrivateKey
from plaza.dao.mandate import Mandate, default_mandate, mandate_from_map
from plaza.ledger import Ledger, MemoryEventStore, verify_log
from plaza.sim import Scenario, trace_from_values
from plaza.sim.policies import provider_did, sim_mandate
from plaza.sim.world import World
from tests.agents.clock import FakeClock


@pytest.fixture
def world() -> World:
    trace = trace_from_values(np.full(600, 20.0))
    # Whole units: prices per unit exact, so the budget is a whole number of purchases.
    w = World(trace, Scenario(accounts=3000, signups_per_day=0, unit=1.0), (), seed=1)
    w.step(0, 20.0)
    return w


def make_loop(world: World, mandate: Mandate) -> tuple[AgentLoop, Ledger]:
    key = PrivateKey.from_bytes("ES256K", hashlib.sha256(b"agent").digest())
    ledger = Ledger(MemoryEventStore())
    return AgentLoop(mandate, world, LedgerRecorder(ledger, key), provider_did), ledger


def reason(rule: str = "test.adversarial") -> Reason:
    return Reason.of(rule, "an adversarial decision", {"x": 1}, n=1)


def procure(units: float, cost: float, start: int) -> Action:
    return Action.make(
        "capacity.procure",
        reason(),
        contract="on_demand",
        allocations=[(0, units)],
        start=start,
        term_steps=1,
        units=units,
        cost=cost,
    )


def events(ledger: Ledger) -> list[dict[str, Any]]:
    out = []
    for ev in ledger.read():
        assert ev.type == EVENT_TYPE
        out.append(ev.payload)
    return out


def place_evenly(world: World, loop: AgentLoop, clock: FakeClock) -> None:
    from plaza.agents import placement
    from plaza.agents.placement import PlacementDesired, PlacementObserved

    acc = world.accounts
    obs = PlacementObserved(
        clock.step,
        acc.hosted(),
        acc.slots,
        world.region,
        world.accepting(),
        acc.pending_by_region(),
    )
    limits = limits_from_mandate(loop.mandate, int(acc.host.size))
    loop.submit(placement.decide(obs, PlacementDesired(), limits), clock.now_ms, {})
    assert acc.pending_by_region().sum() == 0


def accounts_map(world: World) -> dict[str, int]:
    return {provider_did(p): int(n) for p, n in enumerate(world.accounts.hosted()) if n}


def test_allowed_action_executes_and_is_recorded(world: World) -> None:
    clock = FakeClock(step=0)
    loop, ledger = make_loop(world, sim_mandate(world.scenario, world))
    [rec] = loop.submit([procure(5.0, 1.0, 1)], clock.now_ms, {})
    assert rec.outcome == "executed"
    world.step(1, 20.0)
    assert float(world.od.sum()) == 5.0
    [payload] = events(ledger)
    assert payload["outcome"] == "executed"
    assert payload["action"]["amount"] == 100
    assert payload["reason"]["rule"] == "test.adversarial"
    assert len(payload["reason"]["digest"]) == 64


def test_overspending_is_denied_and_in_the_ledger(world: World) -> None:
    clock = FakeClock(step=0)
    mandate = sim_mandate(world.scenario, world)
    loop, ledger = make_loop(world, mandate)
    rule = mandate.rule("capacity.procure")
    assert rule is not None and rule.category == "capacity" and rule.optimistic_above
    budget = mandate.budgets["capacity"].limit / 100
    each = rule.optimistic_above / 100  # the largest purchase the mandate makes automatic
    # Spend all but one purchase's worth of the day's budget in purchases the mandate
    # lets through at once...
    n = int(budget // each) - 1
    for _ in range(n):
        [rec] = loop.submit([procure(1.0, each, 1)], clock.now_ms, {})
        assert rec.outcome == "executed", rec.detail
    clock.advance()
    # ... then one that would pass the rolling budget.
    [rec] = loop.submit([procure(1000.0, budget - n * each + 1.0, 2)], clock.now_ms, {})
    assert rec.outcome == "denied"
    assert rec.verdict == "deny:OverBudget"
    world.step(1, 20.0)
    world.step(2, 20.0)
    assert float(world.od.sum()) == 0.0  # the denied order never reached the market
    last = events(ledger)[-1]
    assert last["outcome"] == "denied"
    assert "budget exceeded" in last["detail"]
    assert loop.stats.denials_by_code == {"OverBudget": 1}
    # The day rolls over: the same spend is allowed again, and a purchase over the
    # automatic threshold is proposed (it waits out its veto window) instead.
    clock.advance(288)
    assert loop.submit([procure(1.0, each, clock.step + 1)], clock.now_ms, {})[0].outcome == (
        "executed"
    )
    [big] = loop.submit([procure(1.0, each + 1.0, clock.step + 1)], clock.now_ms, {})
    assert (big.outcome, big.verdict) == ("proposed", "optimistic:172800s")


def test_over_concentrating_placement_is_denied(world: World) -> None:
    clock = FakeClock(step=0)
    loop, ledger = make_loop(world, sim_mandate(world.scenario, world))
    place_evenly(world, loop, clock)
    hosted_before = world.accounts.hosted()
    world.accounts._grow(2000)
    adversarial = Action.make(
        "placement.assign",
        reason(),
        allocations=[(r, 0, int(n)) for r, n in enumerate(world.accounts.pending_by_region())],
        accounts=2000,
    )
    # The loop cuts it into chunks; every chunk that would pass 20% on provider 0 is denied.
    records = loop.submit([adversarial], clock.now_ms, accounts_map(world))
    denied = [r for r in records if r.outcome == "denied"]
    assert denied
    assert all(r.verdict == "deny:OverConcentration" for r in denied)
    hosted = world.accounts.hosted()
    assert hosted[0] / hosted.sum() <= 0.2 + 1e-9
    assert hosted[0] > hosted_before[0] or hosted[0] / hosted.sum() > 0.19
    ledger_denials = [e for e in events(ledger) if e["outcome"] == "denied"]
    assert len(ledger_denials) == len(denied)
    assert ledger_denials[0]["action"]["provider"] == provider_did(0)


def test_oversize_migration_batch_is_denied(world: World) -> None:
    clock = FakeClock(step=0)
    mandate = sim_mandate(world.scenario, world)
    loop, ledger = make_loop(world, mandate)
    place_evenly(world, loop, clock)
    limit = mandate.limits.migration_batch_max_accounts
    too_many = Action.make(
        "migration.batch",
        reason(),
        **{"from": 0, "to": [(1, limit + 1)], "source": "host", "accounts": limit + 1},
    )
    before = world.accounts.hosted()
    [rec] = loop.submit([too_many], clock.now_ms, accounts_map(world))
    assert rec.outcome == "denied"
    assert rec.verdict == "deny:OversizeBatch"
    assert (world.accounts.hosted() == before).all()
    assert world.accounts.migrations == 0
    assert events(ledger)[-1]["verdict"] == "deny:OversizeBatch"


def test_needs_vote_becomes_a_proposal_and_optimistic_executes_after_its_window(
    world: World,
) -> None:
    clock = FakeClock(step=0)
    doc = sim_mandate(world.scenario, world).to_map()
    doc["actions"]["capacity.procure"] = {
        "class": "optimistic",
        "window": 600,
        "category": "infrastructure",
        "vote_above": 10_000,
    }
    loop, ledger = make_loop(world, mandate_from_map(doc))
    [big] = loop.submit([procure(10.0, 500.0, 5)], clock.now_ms, {})
    assert big.outcome == "proposed"
    assert big.verdict == "vote"
    assert big.proposal is not None
    assert big.proposal.intent["kind"] == "capacity.procure"
    assert "adversarial decision" in big.proposal.explanation
    [small] = loop.submit([procure(3.0, 1.0, 5)], clock.now_ms, {})
    assert small.outcome == "proposed"
    assert small.verdict == "optimistic:600s"
    clock.advance(1)  # 300 s: still inside the veto window
    assert loop.submit([], clock.now_ms, {}) == []
    clock.advance(1)  # 600 s: the window has passed, nobody vetoed
    [done] = loop.submit([], clock.now_ms, {})
    assert done.outcome == "executed"
    assert loop.stats.escalations == 2
    outcomes = [e["outcome"] for e in events(ledger)]
    assert outcomes == ["proposed", "proposed", "executed"]


def test_the_ledger_verifies(world: World) -> None:
    clock = FakeClock(step=0)
    loop, ledger = make_loop(world, default_mandate())
    loop.submit([procure(1.0, 1.0, 1)], clock.now_ms, {})
    loop.submit([procure(1.0, 10**9, 1)], clock.now_ms, {})
    report = verify_log(ledger.store.read_raw())
    assert report.ok, report.problem
    assert report.events == 2


def test_limits_come_from_the_mandate() -> None:
    m = default_mandate()
    lim = limits_from_mandate(m, total_accounts=10_000)
    assert lim.max_provider_share == m.limits.max_provider_share_ppm / 1e6
    assert lim.migration_batch_limit == 500  # 5% of 10,000
    assert lim.budget_per_day is not None and lim.budget_per_day > 0


def _optimistic_procure_mandate(world: World, window_s: int = 600) -> Mandate:
    """The simulated mandate with a short veto window for purchases over the threshold."""
    doc = sim_mandate(world.scenario, world).to_map()
    doc["actions"]["capacity.procure"]["window"] = window_s
    return mandate_from_map(doc)


def test_optimistic_action_is_judged_again_when_its_window_has_passed(world: World) -> None:
    clock = FakeClock(step=0)
    mandate = _optimistic_procure_mandate(world)
    loop, ledger = make_loop(world, mandate)
    rule = mandate.rule("capacity.procure")
    assert rule is not None and rule.optimistic_above is not None
    each = rule.optimistic_above / 100
    budget = mandate.budgets["capacity"].limit / 100
    [big] = loop.submit([procure(7.0, each + 1.0, 5)], clock.now_ms, {})
    assert (big.outcome, big.verdict) == ("proposed", "optimistic:600s")
    # While it waits, automatic purchases spend the day's budget down to less than it.
    n = int((budget - each) // each)
    for _ in range(n):
        [rec] = loop.submit([procure(1.0, each, 1)], clock.now_ms, {})
        assert rec.outcome == "executed", rec.detail
    assert loop.spent("capacity", clock.now_ms, 86400) + (each + 1.0) * 100 > budget * 100
    clock.advance(2)  # the window has passed, nobody vetoed: but the budget is gone
    [late] = loop.submit([], clock.now_ms, {})
    assert (late.outcome, late.verdict) == ("denied", "deny:OverBudget")
    assert "optimistic-window-passed" in late.detail and "budget exceeded" in late.detail
    world.step(1, 20.0)
    assert float(world.od.sum()) == n * 1.0  # the automatic purchases reached it...
    for t in range(2, 6):
        world.step(t, 20.0)
    assert float(world.od.sum()) == 0.0  # ... the late one, for step 5, did not
    last = events(ledger)[-1]
    assert (last["outcome"], last["verdict"]) == ("denied", "deny:OverBudget")
    assert last["action"]["amount"] == round((each + 1.0) * 100)
    assert loop.stats.denials_by_code == {"OverBudget": 1}
    assert loop.waiting() == 0
    # It is not carried out later either, and the reconciler may ask again.
    clock.advance(2)
    assert loop.submit([], clock.now_ms, {}) == []
    [again] = loop.submit([procure(7.0, each + 1.0, 9)], clock.now_ms, {})
    assert again.outcome == "denied"  # still over budget today


def test_optimistic_action_stops_when_the_mandate_changed(world: World) -> None:
    clock = FakeClock(step=0)
    loop, ledger = make_loop(world, _optimistic_procure_mandate(world))
    rule = loop.mandate.rule("capacity.procure")
    assert rule is not None and rule.optimistic_above is not None
    [big] = loop.submit([procure(7.0, rule.optimistic_above / 100 + 1.0, 5)], clock.now_ms, {})
    assert big.outcome == "proposed"
    # Members amend the mandate during the window: purchases now need a vote.
    doc = loop.mandate.to_map()
    doc["actions"]["capacity.procure"]["class"] = "vote"
    loop.mandate = mandate_from_map(doc)
    clock.advance(2)
    [late] = loop.submit([], clock.now_ms, {})
    assert (late.outcome, late.verdict) == ("denied", "vote")
    assert "requires a vote" in late.detail
    for t in range(1, 6):
        world.step(t, 20.0)
        assert float(world.od.sum()) == 0.0
    assert events(ledger)[-1]["outcome"] == "denied"


def test_a_vote_that_never_comes_expires_and_the_reconciler_decides_again(
    world: World,
) -> None:
    clock = FakeClock(step=0)
    doc = sim_mandate(world.scenario, world).to_map()
    doc["actions"]["capacity.procure"]["class"] = "vote"
    loop, ledger = make_loop(world, mandate_from_map(doc))
    want = procure(4.0, 1.0, 5)
    [rec] = loop.submit([want], clock.now_ms, {})
    assert (rec.outcome, rec.verdict) == ("proposed", "vote")
    # Pending: asked again (a level-based reconciler asks every step), not proposed again.
    window_steps = VOTE_WINDOW_S // clock.step_seconds
    clock.advance(window_steps - 1)
    assert loop.submit([want], clock.now_ms, {}) == []
    assert loop.waiting() == 1 and loop.stats.proposed == 1
    # Nobody voted within the window: the proposal expired; its end is in the ledger and
    # the next request is judged afresh (and proposed again, the guard still says vote).
    clock.advance(1)
    ended, again = loop.submit([want], clock.now_ms, {})
    assert (ended.outcome, ended.verdict) == ("dropped", "vote")
    assert "expired unvoted" in ended.detail
    assert (again.outcome, again.verdict) == ("proposed", "vote")
    assert loop.stats.dropped == 1 and loop.stats.proposed == 2
    assert loop.waiting() == 1
    outcomes = [(e["outcome"], e["verdict"]) for e in events(ledger)]
    assert outcomes == [("proposed", "vote"), ("dropped", "vote"), ("proposed", "vote")]
    assert events(ledger)[1]["proposal"]["verdict"] == "vote"
    # Nothing was executed.
    for t in range(1, 6):
        world.step(t, 20.0)
        assert float(world.od.sum()) == 0.0


class _Rejecting(MemoryProposer):
    """A proposer whose members reject every vote at once."""

    def resolved(self, now_ms: int) -> list[tuple[Action, Proposal]]:
        out = [(a, replace(p, ref="proposal:7", why="was rejected")) for _, a, p in self._votes]
        self._votes.clear()
        return out


def test_a_rejected_vote_is_dropped_and_recorded(world: World) -> None:
    clock = FakeClock(step=0)
    doc = sim_mandate(world.scenario, world).to_map()
    doc["actions"]["capacity.procure"]["class"] = "vote"
    key = PrivateKey.from_bytes("ES256K", hashlib.sha256(b"agent").digest())
    ledger = Ledger(MemoryEventStore())
    loop = AgentLoop(
        mandate_from_map(doc), world, LedgerRecorder(ledger, key), provider_did, _Rejecting()
    )
    [rec] = loop.submit([procure(4.0, 1.0, 5)], clock.now_ms, {})
    assert rec.outcome == "proposed" and loop.waiting() == 1
    clock.advance()
    [ended] = loop.submit([], clock.now_ms, {})
    assert ended.outcome == "dropped" and "proposal:7 was rejected" in ended.detail
    assert loop.waiting() == 0
    last = events(ledger)[-1]
    assert last["outcome"] == "dropped" and last["proposal"]["ref"] == "proposal:7"


def reserve(units: float, cost: float, start: int) -> Action:
    return Action.make(
        "capacity.procure",
        reason(),
        contract="reserved",
        intent="reserve",
        allocations=[(0, units)],
        start=start,
        term_steps=288,
        units=units,
        cost=cost,
    )


def test_one_reservation_waits_at_a_time_and_starts_when_carried_out(world: World) -> None:
    clock = FakeClock(step=0)
    mandate = _optimistic_procure_mandate(world)
    loop, ledger = make_loop(world, mandate)
    rule = mandate.rule("capacity.procure")
    assert rule is not None and rule.optimistic_above is not None
    big = rule.optimistic_above / 100 + 1.0
    [first] = loop.submit([reserve(7.0, big, 12)], clock.now_ms, {})
    assert first.outcome == "proposed"
    # The reconciler asks again every pass, with another size and a later start: the
    # same request (same intent) while the first waits, so nothing more is proposed.
    clock.advance(1)
    assert loop.submit([reserve(8.0, big + 1.0, 13)], clock.now_ms, {}) == []
    assert loop.waiting() == 1
    # Past its window (600 s: two steps), well after its asked start, it executes then.
    clock.advance(20)
    world.step(20, 20.0)
    [done] = loop.submit([], clock.now_ms, {})
    assert (done.outcome, done.verdict) == ("executed", "optimistic-window-passed")
    [c] = world.contracts.values()
    assert c.units == 7.0 and c.start == world.now + world.res_lead > 12
    assert [e["outcome"] for e in events(ledger)] == ["proposed", "executed"]
