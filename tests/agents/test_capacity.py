from __future__ import annotations

import numpy as np
import pytest

from plaza.agents import capacity
from plaza.agents.capacity import (
    CapacityDesired,
    CapacityObserved,
    ReservedContract,
    reserved_target,
)
from plaza.agents.types import MandateLimits
from plaza.errors import InvalidInputError
from tests.agents.clock import FakeClock

P = 10
LIMITS = MandateLimits(max_provider_share=0.2, budget_per_day=None)
# The level rule on a flat window (the plan has its own tests in test_capacity_plan.py).
DESIRED = CapacityDesired(half_life_steps=None, planner="newsvendor")


def observed(
    clock: FakeClock,
    recent: list[float] | np.ndarray,
    *,
    backlog: tuple[tuple[int, float], ...] = (),
    contracts: tuple[ReservedContract, ...] = (),
    usable: np.ndarray | None = None,
    spent: float = 0.0,
) -> CapacityObserved:
    return CapacityObserved(
        now=clock.step,
        recent=np.asarray(recent, dtype=float),
        backlog=backlog,
        contracts=contracts,
        usable=np.ones(P) if usable is None else usable,
        accepting=np.ones(P, dtype=bool),
        cap=np.full(P, 100.0),
        spent_window=spent,
    )


def by_contract(actions: list[capacity.Action], kind: str) -> capacity.Action | None:
    for a in actions:
        if a.kind == "capacity.procure" and a["contract"] == kind:
            return a
    return None


def test_reserves_the_newsvendor_quantile_of_recent_load() -> None:
    clock = FakeClock(step=600)
    # 60% of the window at 50, 40% at 10: the 60% quantile is 50... just barely.
    recent = [10.0] * 230 + [50.0] * 346
    obs = observed(clock, recent)
    assert DESIRED.reserved_quantile() == pytest.approx(0.6)
    assert reserved_target(obs, DESIRED) == 50.0
    buy = by_contract(capacity.decide(obs, DESIRED, LIMITS), "reserved")
    assert buy is not None
    assert buy["units"] == 50.0
    assert buy["start"] == clock.step + DESIRED.reserved_lead_steps
    assert buy["term_steps"] == DESIRED.reserved_term_steps
    assert buy.reason.rule == "capacity.reserve-newsvendor"
    assert buy.reason.number("target") == 50.0
    assert len(buy.reason.digest) == 64
    # Spread over providers, none above 20% of the capacity.
    units = [u for _, u in buy["allocations"]]
    assert max(units) <= 0.2 * 50.0
    assert sum(units) == 50.0


def test_no_reservation_without_a_lead_time_of_history() -> None:
    clock = FakeClock(step=3)
    assert (
        by_contract(capacity.decide(observed(clock, [5.0] * 4), DESIRED, LIMITS), "reserved")
        is None
    )


def test_surplus_is_released_only_after_the_minimum_term() -> None:
    clock = FakeClock(step=100)
    contract = ReservedContract(id=7, provider=0, units=40.0, start=0, min_end=288)
    low = [5.0] * 576
    acts = capacity.decide(observed(clock, low, contracts=(contract,)), DESIRED, LIMITS)
    assert not [a for a in acts if a.kind == "capacity.release"]
    clock.advance(188)  # step 288: the term ends at 288, so it may end from step 288 on
    acts = capacity.decide(observed(clock, low, contracts=(contract,)), DESIRED, LIMITS)
    release = [a for a in acts if a.kind == "capacity.release"]
    assert len(release) == 1
    assert release[0]["releases"] == ((7, 35.0),)
    assert release[0]["at"] == clock.step + 1


def test_on_demand_covers_only_load_that_is_due() -> None:
    clock = FakeClock(step=50)
    contract = ReservedContract(id=1, provider=0, units=10.0, start=0, min_end=400)
    # Arrived at 48 (deadline 51) 30 units, at 50 (deadline 53) 6 units.
    backlog = ((48, 30.0), (50, 6.0))
    obs = observed(clock, [10.0] * 60, backlog=backlog, contracts=(contract,))
    desired = CapacityDesired(half_life_steps=None, quantile=0.0)
    od = by_contract(capacity.decide(obs, desired, LIMITS), "on_demand")
    assert od is not None
    assert od["start"] == clock.step + 1
    assert od["units"] == 20.0  # 30 due next step minus 10 reserved
    assert od.reason.number("due") == 30.0


def test_on_demand_is_spread_to_meet_later_deadlines() -> None:
    clock = FakeClock(step=50)
    # 90 units arrived now: deadline 53, three steps to serve it; no reserved capacity.
    obs = observed(clock, [0.0] * 60, backlog=((50, 90.0),))
    od = by_contract(capacity.decide(obs, CapacityDesired(quantile=0.0), LIMITS), "on_demand")
    assert od is not None
    assert od["units"] == 30.0


def test_nothing_is_bought_when_reserved_covers_the_queue() -> None:
    clock = FakeClock(step=50)
    contract = ReservedContract(id=1, provider=0, units=50.0, start=0, min_end=400)
    obs = observed(clock, [50.0] * 600, backlog=((49, 20.0),), contracts=(contract,))
    assert capacity.decide(obs, DESIRED, LIMITS) == []


def test_down_providers_do_not_count_and_get_nothing() -> None:
    clock = FakeClock(step=50)
    contract = ReservedContract(id=1, provider=3, units=40.0, start=0, min_end=400)
    usable = np.ones(P)
    usable[3] = 0.0
    obs = observed(clock, [0.0] * 60, backlog=((48, 30.0),), contracts=(contract,), usable=usable)
    od = by_contract(capacity.decide(obs, CapacityDesired(quantile=0.0), LIMITS), "on_demand")
    assert od is not None
    assert od["units"] == 30.0
    assert 3 not in [p for p, _ in od["allocations"]]


def test_budget_caps_what_is_bought() -> None:
    clock = FakeClock(step=50)
    obs = observed(clock, [0.0] * 60, backlog=((48, 100.0),), spent=95.0)
    tight = MandateLimits(max_provider_share=0.2, budget_per_day=100.0)
    od = by_contract(capacity.decide(obs, CapacityDesired(quantile=0.0), tight), "on_demand")
    # 5 left in the budget at 2.5/12 per unit-step: 24 units.
    assert od is not None
    assert od["units"] == 24.0
    assert od["cost"] <= 5.0


def test_decide_is_pure_and_deterministic() -> None:
    clock = FakeClock(step=696)  # a plan block starts: the LP runs too
    rng = np.random.default_rng(3)
    obs = observed(clock, rng.gamma(2, 10, 576), backlog=((698, 40.0), (699, 12.0)))
    assert capacity.decide(obs, CapacityDesired(), LIMITS) == capacity.decide(
        obs, CapacityDesired(), LIMITS
    )


def test_a_small_load_gets_a_whole_unit_only_when_a_deadline_forces_it() -> None:
    # 0.3 units arrive per step, no reserved capacity: buying a unit every step would
    # waste most of it; one unit at the deadline serves everything queued.
    clock = FakeClock(step=50)
    desired = CapacityDesired(planner="newsvendor", quantile=0.0)
    early = observed(clock, [0.3] * 60, backlog=((49, 0.3), (50, 0.3)))
    assert capacity.decide(early, desired, LIMITS) == []
    clock.advance()
    due = observed(clock, [0.3] * 60, backlog=((48, 0.3), (49, 0.3), (50, 0.3), (51, 0.3)))
    od = by_contract(capacity.decide(due, desired, LIMITS), "on_demand")
    assert od is not None
    assert od["units"] == 1.0


def test_without_spreading_only_the_deadline_buys() -> None:
    clock = FakeClock(step=50)
    desired = CapacityDesired(planner="newsvendor", quantile=0.0, spread_on_demand=False)
    assert (
        capacity.decide(observed(clock, [0.0] * 60, backlog=((50, 90.0),)), desired, LIMITS) == []
    )
    clock.advance(2)
    od = by_contract(
        capacity.decide(observed(clock, [0.0] * 60, backlog=((50, 90.0),)), desired, LIMITS),
        "on_demand",
    )
    assert od is not None
    assert od["units"] == 90.0


def test_the_reason_digests_the_whole_history() -> None:
    clock = FakeClock(step=50)
    recent = np.full(600, 10.0)
    older = recent.copy()
    older[0] = 11.0  # differs only far back, outside the tail shown in the reason
    backlog = ((48, 30.0),)
    desired = CapacityDesired(planner="newsvendor", quantile=0.0)
    a = by_contract(
        capacity.decide(observed(clock, recent, backlog=backlog), desired, LIMITS), "on_demand"
    )
    b = by_contract(
        capacity.decide(observed(clock, older, backlog=backlog), desired, LIMITS), "on_demand"
    )
    assert a is not None and b is not None
    assert a["units"] == b["units"]
    assert a.reason.digest != b.reason.digest


def test_desired_sizes_and_planner_names() -> None:
    d = CapacityDesired()
    assert d.block_steps() == 12  # an hour of five-minute steps
    assert d.history_steps() == 3 * 7 * 288  # three weeks: enough to detect a weekly season
    assert CapacityDesired(season_steps=48).block_steps() == 2
    assert CapacityDesired(season_steps=50).block_steps() == 2  # largest divisor <= 50/24
    with pytest.raises(InvalidInputError):
        capacity.decide(
            observed(FakeClock(step=0), [1.0] * 20), CapacityDesired(planner="x"), LIMITS
        )


def test_recourse_buys_for_the_load_due_this_step_only() -> None:
    clock = FakeClock(step=600)
    hourly = CapacityDesired(sla_delay_steps=0, on_demand_lead_steps=1, recourse_share=0.75)
    backlog = ((clock.step, 9.0),)
    a = capacity.decide_recourse(observed(clock, [], backlog=backlog), hourly, LIMITS)
    assert a is not None
    assert a["contract"] == "on_demand" and a["start"] == clock.step
    assert a["units"] == 12.0  # 12 units for three quarters of the step serve 9
    assert a.reason.rule == "capacity.on-demand-recourse"
    # The same observation, the same action (pure).
    again = capacity.decide_recourse(observed(clock, [], backlog=backlog), hourly, LIMITS)
    assert again == a
    # Nothing due, or no recourse: nothing.
    assert capacity.decide_recourse(observed(clock, []), hourly, LIMITS) is None
    none = CapacityDesired(sla_delay_steps=0, on_demand_lead_steps=1)
    assert capacity.decide_recourse(observed(clock, [], backlog=backlog), none, LIMITS) is None
    # Within the budget: 2 units of the 12.
    tight = MandateLimits(max_provider_share=0.2, budget_per_day=100.0)
    spent = 100.0 - 2.0 * hourly.on_demand_price
    capped = capacity.decide_recourse(
        observed(clock, [], backlog=backlog, spent=spent), hourly, tight
    )
    assert capped is not None and capped["units"] == 2.0


def test_load_that_waits_for_recourse_is_planned_at_the_recourse_price() -> None:
    hourly = CapacityDesired(sla_delay_steps=0, on_demand_lead_steps=1, recourse_share=0.8)
    assert not hourly.load_cannot_wait()
    assert hourly.plan_on_demand_price() == pytest.approx(hourly.on_demand_price / 0.8)
    blind = CapacityDesired(sla_delay_steps=0, on_demand_lead_steps=1)
    assert blind.load_cannot_wait()
    assert CapacityDesired().plan_on_demand_price() == CapacityDesired().on_demand_price


def test_at_a_delay_of_zero_on_demand_is_ordered_ahead_to_a_low_quantile() -> None:
    clock = FakeClock(step=2000)
    hourly = CapacityDesired(
        sla_delay_steps=0,
        on_demand_lead_steps=1,
        recourse_share=0.8,
        season_steps=24,
        reserved_term_steps=24,
        reserved_lead_steps=1,
        window_steps=48,
        half_life_steps=6.0,
    )
    assert hourly.ahead_quantile() == pytest.approx(0.2)
    recent = np.random.default_rng(3).normal(40.0, 4.0, 200).clip(0)
    actions = capacity.decide(observed(clock, recent), hourly, LIMITS)
    od = by_contract(actions, "on_demand")
    assert od is not None
    assert od.reason.rule == "capacity.on-demand-quantile"
    # No reserved capacity yet: ahead up to the 20% quantile of next step's load (about
    # 40 - 0.84 x 4), in whole units rounded down.
    assert 30.0 <= od["units"] <= 40.0
    assert od["start"] == clock.step + 1
