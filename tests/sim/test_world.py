"""The world's on-demand lead time in minutes, and recourse within a step."""

from __future__ import annotations

import numpy as np
import pytest

from plaza.agents.types import Action, Reason
from plaza.errors import ConflictError
from plaza.sim import Scenario, run, trace_from_values
from plaza.sim.scenario import ContractRules
from plaza.sim.world import World, recourse_share

SMALL = Scenario(accounts=200, signups_per_day=10)


@pytest.mark.parametrize(
    ("lead", "sla", "step_s", "share"),
    [
        (5.0, 15.0, 1800, 25 / 30),  # half-hour steps: the step's last 25 minutes
        (5.0, 15.0, 3600, 55 / 60),
        (5.0, 15.0, 600, 0.5),
        (5.0, 15.0, 300, 0.0),  # the lead is a whole step: only orders made ahead
        (20.0, 15.0, 3600, 0.0),  # the load cannot wait for it
        (0.0, 0.0, 1800, 1.0),  # capacity at once
    ],
)
def test_recourse_share(lead: float, sla: float, step_s: int, share: float) -> None:
    assert recourse_share(lead, sla, step_s) == pytest.approx(share)


def _recourse(world: World, t: int, units: float) -> None:
    world.execute(
        Action.make(
            "capacity.procure",
            Reason.of("test", "recourse", {}),
            contract="on_demand",
            allocations=[(0, units)],
            start=t,
            term_steps=1,
            units=units,
        )
    )


def test_recourse_serves_the_rest_of_the_step_for_a_whole_step_price() -> None:
    trace = trace_from_values([10.0, 10.0, 10.0], step_seconds=1800)
    world = World(trace, SMALL, (), 0)
    assert world.delay == 0 and world.od_lead == 1
    assert world.unservable_steps == 0  # recourse reaches the first step's load
    seen: list[float] = []

    def react(t: int) -> None:
        seen.append(world.due_now())
        _recourse(world, t, 12.0)

    world.step(0, 10.0, react)
    assert seen == [pytest.approx(10.0)]
    assert world.unserved == 0.0
    assert world.capacity_log[-1] == pytest.approx(12.0 * 25 / 30)
    assert world.cost == pytest.approx(12.0 * world.od_price)
    # Too little: what 6 units serve in the rest of the step (5), the rest is dropped.
    world.step(1, 10.0, lambda t: _recourse(world, t, 6.0))
    assert world.unserved == pytest.approx(5.0)
    # Outside a reaction, an order for the current step is refused.
    with pytest.raises(ConflictError):
        _recourse(world, 1, 1.0)


def test_no_reaction_when_the_lead_is_longer_than_the_sla() -> None:
    slow = Scenario(accounts=200, signups_per_day=10, on_demand=ContractRules(2.5, 0, 20.0))
    world = World(trace_from_values([10.0, 10.0], step_seconds=1800), slow, (), 0)
    assert world.recourse_share == 0.0
    assert world.unservable_steps == 1
    called: list[int] = []
    world.step(0, 10.0, called.append)
    world.step(1, 10.0, called.append)
    assert called == []
    assert world.unserved == pytest.approx(10.0)  # step 1's load, with nothing ordered


def _hourly(days: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(days * 24)
    load = 20 * (1 + 0.6 * np.sin(2 * np.pi * t / 24)) + rng.gamma(2.0, 2.0, t.size)
    load[rng.integers(0, t.size, 3)] *= 4  # bursts nobody forecasts
    return np.round(load)


def test_every_policy_serves_hourly_load_it_did_not_foresee() -> None:
    trace = trace_from_values(_hourly(3, 1), step_seconds=3600, name="hourly")
    results = {p: run(trace, p, scenario=SMALL) for p in ("agent", "reactive", "oracle")}
    oracle = results["oracle"]
    assert oracle.metrics.cost == pytest.approx(oracle.policy.plan.cost, rel=1e-4)  # type: ignore[attr-defined]
    for name, res in results.items():
        assert res.metrics.unserved_fraction == 0.0, name
        assert res.metrics.records_lost == 0, name
        assert oracle.metrics.cost <= res.metrics.cost * (1 + 1e-6), name
    # The baselines bought within steps for the bursts; the oracle only for the first.
    assert results["reactive"].world.od_recourse > 0
    assert results["agent"].world.od_recourse > 0
    assert oracle.world.od_recourse == pytest.approx(
        oracle.policy.plan.on_demand[0] / oracle.world.recourse_share  # type: ignore[attr-defined]
    )
