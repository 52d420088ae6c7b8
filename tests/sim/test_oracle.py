"""The oracle in whole units: a MILP, never below the LP, and replayed at its own cost."""

from __future__ import annotations

import math

import numpy as np
import pytest

from plaza.sim.oracle import solve_oracle

PRICES = {
    "term": 12,
    "delay": 1,
    "reserved_lead": 1,
    "on_demand_lead": 1,
    "reserved_price": 1.0,
    "on_demand_price": 2.5,
}


@pytest.mark.parametrize("seed", [1, 2])
def test_whole_units_cost_at_least_the_continuous_optimum(seed: int) -> None:
    rng = np.random.default_rng(seed)
    # Small fractional loads: where whole units cost the most.
    load = np.round(rng.gamma(1.0, 0.6, 36), 2)
    lp = solve_oracle(load, **PRICES)
    whole = solve_oracle(load, **PRICES, whole_units=True, time_limit_s=60)
    assert lp.bound == pytest.approx(lp.cost)
    assert whole.cost >= lp.cost - 1e-6
    assert lp.cost - 1e-6 <= whole.bound <= whole.cost + 1e-6
    for series in (whole.reserved, whole.starts, whole.on_demand):
        assert np.array_equal(series, np.round(series))
    # The plan pays for what it holds: reserved level and on-demand at their prices,
    # plus the rest of the term of units still running at the end.
    T = whole.reserved.size
    tail = sum(
        whole.starts[t] * PRICES["reserved_price"] * (t + PRICES["term"] - T)
        for t in range(max(0, T - PRICES["term"]), T)
    )
    billed = 1.0 * whole.reserved.sum() + 2.5 * whole.on_demand.sum() + tail
    assert billed == pytest.approx(whole.cost)


def test_a_steady_whole_load_costs_the_same_in_whole_units() -> None:
    load = np.full(36, 3.0)
    lp = solve_oracle(load, **PRICES)
    whole = solve_oracle(load, **PRICES, whole_units=True, time_limit_s=60)
    assert whole.cost == pytest.approx(lp.cost, rel=1e-6)
    assert not math.isnan(whole.bound)


def test_the_lp_plan_scales_with_the_load() -> None:
    # Solved on the load over its mean, multiplied back: a trace of bytes gets the same
    # plan, times its scale, as the same shape in units.
    rng = np.random.default_rng(3)
    load = np.round(rng.gamma(2.0, 3.0, 300), 2)
    small = solve_oracle(load, **PRICES)
    big = solve_oracle(load * 1e7, **PRICES)
    assert big.cost == pytest.approx(small.cost * 1e7, rel=1e-6)
    assert big.bound == pytest.approx(big.cost)
    billed = 1.0 * big.reserved.sum() + 2.5 * big.on_demand.sum()
    assert billed <= big.cost * (1 + 1e-6)
    assert big.reserved.max() == pytest.approx(small.reserved.max() * 1e7, rel=1e-4)


def test_no_load_costs_nothing() -> None:
    plan = solve_oracle(np.zeros(40), **PRICES)
    assert plan.cost == pytest.approx(0.0, abs=1e-9)
