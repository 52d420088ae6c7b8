from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field, replace

import numpy as np
import pytest

from plaza.agents import capacity
from plaza.agents.capacity import CapacityDesired, CapacityObserved, ReservedContract
from plaza.agents.capacity_plan import PlanProblem, plan_reserved
from plaza.agents.forecast import LoadDistribution, LoadWindow
from plaza.agents.types import MandateLimits
from tests.agents.clock import FakeClock

# Half-hour steps: a day is 48 steps, a plan block 2 (an hour), a reserved term 48.
DAY = 48
PR, PO = 0.5, 1.25  # per unit-step: 1.0 and 2.5 per unit-hour
HALF_HOUR = CapacityDesired(
    sla_delay_steps=1,
    reserved_price=PR,
    on_demand_price=PO,
    reserved_term_steps=DAY,
    reserved_lead_steps=2,
    on_demand_lead_steps=1,
    half_life_steps=DAY / 4,
    window_steps=2 * DAY,
    season_steps=DAY,
)
LIMITS = MandateLimits(max_provider_share=1.0, budget_per_day=None)


def problem(
    values: list[float] | np.ndarray,
    contracts: tuple[tuple[float, int, int], ...] = (),
    *,
    now: int = 1000,
    scales: np.ndarray | None = None,
) -> PlanProblem:
    blocks = 2 * 24 + 1
    return PlanProblem(
        now=now,
        block_steps=2,
        blocks=blocks,
        term_steps=DAY,
        lead_steps=2,
        reserved_price=PR,
        on_demand_price=PO,
        unit=1.0,
        distribution=LoadDistribution.of(np.asarray(values, dtype=float)),
        scales=np.ones(blocks) if scales is None else scales,
        contracts=contracts,
    )


def test_steady_load_is_reserved_in_full() -> None:
    plan = plan_reserved(problem([10.0] * 50))
    assert plan.solved
    assert plan.start_units == 10.0
    assert plan.release_units == 0.0
    assert plan.level_next == pytest.approx(10.0)
    # Held already: nothing to do.
    held = plan_reserved(problem([10.0] * 50, ((10.0, 900, 1100),)))
    assert (held.start_units, held.release_units) == (0.0, 0.0)
    assert held.committed == 10.0


def test_units_busy_less_than_the_price_ratio_are_left_to_on_demand() -> None:
    # 30% of the time 20, else 10: units 11..20 would be busy 30% < 1.0/2.5.
    plan = plan_reserved(problem([10.0] * 70 + [20.0] * 30))
    assert plan.start_units == 10.0
    # 50% of the time: worth reserving.
    assert plan_reserved(problem([10.0] * 50 + [20.0] * 50)).start_units == 20.0


def test_surplus_is_released_only_past_the_minimum_term() -> None:
    now = 1000
    past_term = ((15.0, now - 100, now - 52),)
    plan = plan_reserved(problem([10.0] * 50, past_term, now=now))
    assert plan.start_units == 0.0
    assert plan.release_units == 5.0
    committed = ((15.0, now - 10, now + 38),)
    plan = plan_reserved(problem([10.0] * 50, committed, now=now))
    assert plan.release_units == 0.0
    assert plan.committed == 15.0
    # Nothing to serve: every past-term unit goes.
    idle = plan_reserved(problem([0.0] * 50, past_term, now=now))
    assert (idle.start_units, idle.release_units) == (0.0, 15.0)


def test_pending_units_count_from_their_start() -> None:
    now = 1000
    pending = ((10.0, now + 2, now + 50),)
    plan = plan_reserved(problem([10.0] * 50, pending, now=now))
    assert plan.start_units == 0.0
    assert plan.held == 0.0  # not started in the first block


def test_the_profile_shapes_the_plan() -> None:
    # Level 10; for the next 12 hours the profile is 1.5, then 0.5 for 12, and so on.
    # Units 6..15 are busy half of every day: worth a term at 0.4.
    blocks = 49
    scales = np.where((np.arange(blocks) // 12) % 2 == 0, 1.5, 0.5)
    plan = plan_reserved(problem([10.0] * 50, scales=scales))
    assert plan.start_units == 15.0
    # If the busy half came only for the first six hours, 5 + 5 * 6/24 < 0.4 busy.
    short = np.where(np.arange(blocks) < 6, 1.5, 0.5)
    assert plan_reserved(problem([10.0] * 50, scales=short)).start_units == 5.0


def test_the_plan_is_deterministic() -> None:
    rng = np.random.default_rng(4)
    values = rng.gamma(2.0, 5.0, 96)
    contracts = ((3.0, 900, 950), (4.0, 990, 1040), (2.0, 1001, 1049))
    a = plan_reserved(problem(values, contracts))
    b = plan_reserved(problem(values.copy(), contracts))
    assert a == b


# -- closed loop ------------------------------------------------------------------


@dataclass
class TinyWorld:
    """Reserved contracts, next-step on-demand and a FIFO queue with a 1-step deadline."""

    delay: int = 1
    contracts: dict[int, ReservedContract] = field(default_factory=dict)
    queue: deque[list[float]] = field(default_factory=deque)
    od_next: float = 0.0
    cost: float = 0.0
    unserved: float = 0.0
    reserved_log: list[float] = field(default_factory=list)
    next_id: int = 1

    def step(self, t: int, load: float) -> None:
        reserved = sum(c.units for c in self.contracts.values() if c.start <= t)
        od, self.od_next = self.od_next, 0.0
        self.cost += reserved * PR + od * PO
        self.reserved_log.append(reserved)
        cap = reserved + od
        self.queue.append([t, load])
        while self.queue and cap > 1e-12:
            take = min(cap, self.queue[0][1])
            self.queue[0][1] -= take
            cap -= take
            if self.queue[0][1] <= 1e-12:
                self.queue.popleft()
        while self.queue and self.queue[0][0] <= t - self.delay:
            self.unserved += self.queue.popleft()[1]

    def execute(self, t: int, action: capacity.Action) -> None:
        if action.kind == "capacity.release":
            for cid, units in action["releases"]:
                c = self.contracts[cid]
                assert c.min_end <= t + 1, "released inside the minimum term"
                left = c.units - units
                if left > 1e-9:
                    self.contracts[cid] = replace(c, units=left)
                else:
                    del self.contracts[cid]
        elif action["contract"] == "reserved":
            start = int(action["start"])
            self.contracts[self.next_id] = ReservedContract(
                self.next_id, 0, float(action["units"]), start, start + action["term_steps"]
            )
            self.next_id += 1
        else:
            self.od_next += float(action["units"])

    def finish(self, end: int) -> None:
        for c in self.contracts.values():
            self.cost += c.units * PR * max(0, c.min_end - max(c.start, end))


def run_loop(load: np.ndarray, desired: CapacityDesired) -> TinyWorld:
    clock = FakeClock(step=0, step_seconds=1800)
    world = TinyWorld(delay=desired.sla_delay_steps)
    window = LoadWindow(desired.history_steps())
    for t, value in enumerate(load):
        clock.step = t
        world.step(t, float(value))
        window.observe(float(value))
        obs = CapacityObserved(
            now=clock.step,
            recent=window.values(),
            backlog=tuple((int(a), x) for a, x in world.queue),
            contracts=tuple(world.contracts.values()),
            usable=np.ones(1),
            accepting=np.ones(1, dtype=bool),
            cap=np.full(1, 1e6),
        )
        for action in capacity.decide(obs, desired, LIMITS):
            world.execute(t, action)
    world.finish(load.size)
    return world


def test_the_plan_follows_a_daily_cycle_with_a_ladder_of_terms() -> None:
    # Ten days of a day/night cycle (busy 12 h at 30, quiet 12 h at 12) with noise.
    rng = np.random.default_rng(8)
    t = np.arange(10 * DAY)
    busy = ((t // 2) % 24) >= 12
    load = np.round(np.where(busy, 30.0, 12.0) * rng.uniform(0.85, 1.15, t.size))
    plan = run_loop(load, HALF_HOUR)
    rule = run_loop(load, replace(HALF_HOUR, planner="newsvendor"))
    assert plan.unserved == 0.0 and rule.unserved == 0.0
    # Reserved capacity rises for the busy half and falls back at night (terms of 24 h
    # staggered by half a day), after the profile has three days to learn from.
    reserved = np.array(plan.reserved_log[4 * DAY :])
    phase_busy = busy[4 * DAY :]
    assert reserved[phase_busy].mean() > 1.3 * reserved[~phase_busy].mean()
    # And that is cheaper than one flat level (0.89 of it here).
    assert plan.cost < 0.93 * rule.cost
    # A lower bound: every unit of load served at the reserved price.
    assert plan.cost > PR * load.sum()


def test_plan_runs_only_at_block_starts() -> None:
    clock = FakeClock(step=5 * DAY + 1, step_seconds=1800)
    recent = np.full(5 * DAY + 2, 10.0)
    obs = CapacityObserved(
        now=clock.step,
        recent=recent,
        backlog=(),
        contracts=(),
        usable=np.ones(1),
        accepting=np.ones(1, dtype=bool),
        cap=np.full(1, 100.0),
    )
    assert capacity.decide(obs, HALF_HOUR, LIMITS) == []
    clock.advance()
    at_block = replace(obs, now=clock.step, recent=np.full(5 * DAY + 3, 10.0))
    (buy,) = capacity.decide(at_block, HALF_HOUR, LIMITS)
    assert buy["contract"] == "reserved"
    assert buy["units"] == 10.0
    assert buy["start"] == clock.step + HALF_HOUR.reserved_lead_steps
    assert buy.reason.rule == "capacity.reserve-plan"
    assert math.isfinite(buy.reason.number("expected_cost"))
