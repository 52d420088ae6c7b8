from __future__ import annotations

import numpy as np
import pytest

from plaza.agents import placement
from plaza.agents.placement import (
    PlacementDesired,
    PlacementObserved,
    expand_assignment,
    plan_placement,
    water_fill,
)
from plaza.agents.types import MandateLimits
from tests.agents.clock import FakeClock


def obs(
    clock: FakeClock,
    hosted: list[int],
    slots: list[int],
    region: list[int],
    pending: list[int],
    *,
    accepting: list[bool] | None = None,
) -> PlacementObserved:
    return PlacementObserved(
        now=clock.step,
        hosted=np.array(hosted, dtype=np.int64),
        slots=np.array(slots, dtype=np.int64),
        region=np.array(region, dtype=np.int64),
        accepting=np.array(accepting or [True] * len(hosted)),
        pending=np.array(pending, dtype=np.int64),
    )


def test_water_fill_equalises_utilisation() -> None:
    x = water_fill(np.array([0.0, 50.0]), np.array([100.0, 100.0]), np.array([100.0, 100.0]), 50)
    assert x.tolist() == pytest.approx([50.0, 0.0])
    x = water_fill(np.array([0.0, 50.0]), np.array([100.0, 100.0]), np.array([100.0, 100.0]), 150)
    assert x.tolist() == pytest.approx([100.0, 50.0])


def test_home_region_first_then_spill() -> None:
    clock = FakeClock()
    o = obs(
        clock,
        [0, 0, 0, 0],
        [10, 10, 10, 10],
        [0, 0, 1, 1],
        [30, 0],
    )
    alloc, unplaced = plan_placement(o, max_share=1.0)
    assert unplaced == 0
    assert alloc[0].tolist() == [10, 10, 5, 5]


def test_share_limit_holds_after_the_batch() -> None:
    clock = FakeClock()
    o = obs(clock, [100, 0, 0, 0, 0, 0], [1000] * 6, [0] * 6, [400])
    alloc, unplaced = plan_placement(o, max_share=0.2)
    after = o.hosted + alloc.sum(axis=0)
    assert unplaced == 0
    assert after.max() <= 0.2 * after.sum()
    assert alloc[0, 0] == 0  # provider 0 already holds 100 of 500 = 20%


def test_unplaceable_accounts_are_reported_not_forced() -> None:
    clock = FakeClock()
    o = obs(clock, [0, 0], [5, 5], [0, 0], [20], accepting=[True, False])
    alloc, unplaced = plan_placement(o, max_share=1.0)
    assert alloc.sum() == 5
    assert unplaced == 15


def test_decide_emits_one_action_with_reason() -> None:
    clock = FakeClock(step=12)
    o = obs(clock, [0] * 10, [100] * 10, [0, 1] * 5, [200, 100])
    [action] = placement.decide(o, PlacementDesired(), MandateLimits(max_provider_share=0.2))
    assert action.kind == "placement.assign"
    assert action["accounts"] == 300
    assert action.reason.rule == "placement.water-fill"
    assert action.reason.number("max_share_after") <= 0.2
    assert sum(c for _, _, c in action["allocations"]) == 300
    assert (
        placement.decide(obs(clock, [1], [10], [0], [0]), PlacementDesired(), MandateLimits()) == []
    )


def test_expand_assignment_follows_counts() -> None:
    regions = np.array([1, 0, 1, 0, 0])
    alloc = np.array([[2, 1], [0, 1]])
    out = expand_assignment(regions, alloc)
    assert sorted(out[regions == 0].tolist()) == [0, 0, 1]
    assert out[regions == 1].tolist() == [1, -1]
