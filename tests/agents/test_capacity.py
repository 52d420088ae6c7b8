from __future__ import annotations

import numpy as np
import pytest

from plaza.agents import capacity
from plaza.agents.capacity import (
    CapacityDesired,
    CapacityObserved,
    ReservedContract,
    reserved_target,
    spread_units,
)
from plaza.agents.types import MandateLimits
from tests.agents.clock import FakeClock

P = 10
LIMITS = MandateLimits(max_provider_share=0.2, budget_per_day=None)
DESIRED = CapacityDesired(half_life_steps=None)


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
    clock = FakeClock(step=700)
    rng = np.random.default_rng(3)
    obs = observed(clock, rng.gamma(2, 10, 576), backlog=((698, 40.0), (699, 12.0)))
    assert capacity.decide(obs, CapacityDesired(), LIMITS) == capacity.decide(
        obs, CapacityDesired(), LIMITS
    )


def test_spread_units_respects_share_and_caps() -> None:
    x = spread_units(
        100.0,
        have=np.zeros(10),
        cap=np.full(10, 15.0),
        accepting=np.ones(10, dtype=bool),
        total_after=100.0,
        max_share=0.2,
        unit=1.0,
    )
    assert x.sum() == 100.0
    assert x.max() <= 15.0
    assert np.all(x == np.floor(x))
