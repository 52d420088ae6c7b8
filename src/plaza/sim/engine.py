"""Run one policy over one trace: the simulation loop and its result.

A run is deterministic for a seed: the world draws accounts and chaos faults from
``numpy.random.default_rng([seed, ...])``, the agent's key is derived from the seed, and
nothing reads the clock. Steps run to the end of the trace plus the SLA delay (so the
last load can still be served); then the remaining reserved terms are billed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from plaza.sim.faults import parse_faults
from plaza.sim.metrics import Metrics, hhi, nakamoto, p99_wait
from plaza.sim.policies import AgentPolicy, Policy, make_policy
from plaza.sim.scenario import Scenario
from plaza.sim.trace import Trace
from plaza.sim.world import World


@dataclass(frozen=True)
class RunResult:
    """Metrics plus the per-step series behind them (for plots)."""

    metrics: Metrics
    load: NDArray[np.float64]
    capacity: NDArray[np.float64]
    reserved: NDArray[np.float64]
    world: World
    policy: Policy


def run(
    trace: Trace,
    policy: str | Policy,
    *,
    scenario: Scenario | None = None,
    faults: str | None = None,
    seed: int = 0,
) -> RunResult:
    """Simulate ``policy`` on ``trace`` and return its metrics."""
    sc = (scenario or Scenario()).validate()
    pol = make_policy(policy) if isinstance(policy, str) else policy
    fault_list = parse_faults(
        faults,
        providers=sc.providers,
        steps=trace.steps,
        step_seconds=trace.step_seconds,
        seed=seed,
    )
    world = World(trace, sc, fault_list, seed)
    pol.setup(world)
    total_steps = trace.steps + world.delay
    values = trace.values
    reaction = getattr(pol, "react", None)
    react = None if reaction is None else (lambda t: reaction(world, t))
    for t in range(total_steps):
        world.step(t, float(values[t]) if t < trace.steps else 0.0, react)
        pol.act(world, t)
        world.accounts.note_share()
    world.finish()
    finish = getattr(pol, "finish", None)
    if finish is not None:
        finish(world)
    acc = world.accounts
    hosted = acc.hosted()
    escalations = denials = executed = events = 0
    cost = world.cost
    invoices = 0
    if isinstance(pol, AgentPolicy):
        escalations = pol.loop.stats.escalations
        denials = pol.loop.stats.denied
        executed = pol.loop.stats.executed
        events = len(pol.ledger)
        # What the agent's capacity cost is what the market invoiced for it.
        cost = pol.loop.currency.to_units(pol.market.invoiced())
        invoices = len(pol.market.market.state.invoices)
    metrics = Metrics(
        policy=pol.name,
        trace=trace.name,
        steps=trace.steps,
        cost=round(cost, 6),
        unserved_fraction=world.unserved / world.arrived if world.arrived > 0 else 0.0,
        sla_violation_fraction=world.violation_steps / total_steps,
        p99_wait_steps=p99_wait(world.wait_hist, world.unserved),
        records_lost=round(acc.records_lost, 6),
        migrations=acc.migrations,
        max_provider_share=acc.max_share_seen,
        hhi=round(hhi(hosted), 3),
        nakamoto=nakamoto(hosted),
        escalations=escalations,
        guard_denials=denials,
        # The simulator has no channel for a person to act: nobody votes, vetoes or fixes.
        human_interventions=0,
        actions_executed=executed,
        ledger_events=events,
        cost_accounted=round(world.cost, 6),
        invoices=invoices,
        cost_reserved=round(world.cost_reserved, 6),
        cost_on_demand=round(world.cost_on_demand, 6),
        cost_recourse=round(world.cost_recourse, 6),
        cost_idle_reserved=round(world.idle_reserved_cost, 6),
    )
    return RunResult(
        metrics=metrics,
        load=np.asarray(values, dtype=np.float64),
        capacity=np.asarray(world.capacity_log),
        reserved=np.asarray(world.reserved_log),
        world=world,
        policy=pol,
    )
