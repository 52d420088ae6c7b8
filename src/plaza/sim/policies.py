"""The policies compared in the simulator, each driving the same :class:`World`.

- ``agent``: Plaza's reconcilers (capacity, placement, migration) through the mandate
  guard, every action recorded in an in-memory ledger.
- ``reactive``: HPA-style on-demand follower: ``desired = ceil(current * util /
  target)``, tolerance 0.1, scale-down stabilisation over 5 minutes, on-demand only.
- ``static``: reserved capacity for the trace's peak, provisioned before the run.
- ``oracle``: the LP optimum (:mod:`plaza.sim.oracle`) replayed step by step.

The baselines are capacity policies: their accounts are placed and migrated by the same
placement and migration reconcilers, executed directly (no guard, no ledger), so that the
comparison is about capacity alone.
"""

from __future__ import annotations

import hashlib
import math
from collections import deque
from collections.abc import Callable
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from plaza.agents import capacity, migration, placement, settlement
from plaza.agents.capacity import (
    CapacityDesired,
    CapacityObserved,
    recourse_units,
    spread_units,
)
from plaza.agents.forecast import LoadWindow
from plaza.agents.loop import AgentLoop, LedgerRecorder, limits_from_mandate
from plaza.agents.migration import MigrationDesired, MigrationObserved
from plaza.agents.placement import PlacementDesired, PlacementObserved
from plaza.agents.types import Action, MandateLimits, Reason
from plaza.atproto.crypto import PrivateKey
from plaza.dao.mandate import Mandate, default_mandate, mandate_from_map
from plaza.dao.money import default_currency
from plaza.ledger import Ledger
from plaza.sim.marketplace import Marketplace, SimEventStore
from plaza.sim.oracle import solve_oracle
from plaza.sim.parties import provider_did
from plaza.sim.scenario import Scenario
from plaza.sim.world import World

POLICIES = ("agent", "reactive", "static", "oracle")


class Policy(Protocol):
    name: str

    def setup(self, world: World) -> None: ...

    def act(self, world: World, t: int) -> None: ...


def sim_mandate(scenario: Scenario, world: World) -> Mandate:
    """The shipped default mandate, scaled to the simulated network.

    Every rule is the default's: which actions are automatic, optimistic or need a vote,
    and the thresholds between them *relative to the budget*. What changes is size:
    every amount (budgets, caps, escalation thresholds) is multiplied by the factor that
    makes the default's daily capacity budget the scenario's ``budget_per_day``, and the
    scenario's limits replace the default's (maximum share, migration batch size). The
    simulated market sizes capacity in lots (tens, not the thousands of accounts the
    default's concentration floor assumes), so concentration rules apply from
    ``ceil(1 / max_share)`` lots — the fewest at which every provider can stay under
    the share. See docs/simulation.md, "The mandate".
    """
    base = default_mandate()
    doc = base.to_map()
    k = world.budget_per_day * default_currency().per_unit / base.budgets["capacity"].limit
    for budget in doc["budgets"].values():
        budget["limit"] = math.ceil(budget["limit"] * k)
    for rule in doc["actions"].values():
        for name in ("cap", "vote_above", "optimistic_above"):
            if name in rule:
                rule[name] = math.ceil(rule[name] * k)
    limits = doc["limits"]
    limits["max_provider_share_ppm"] = round(scenario.max_provider_share * 1_000_000)
    limits["migration_batch_max_accounts"] = scenario.migration_batch_limit
    limits["concentration_min_accounts"] = math.ceil(1 / scenario.max_provider_share - 1e-9)
    return mandate_from_map(doc)


def _place_and_migrate(
    world: World,
    limits: MandateLimits,
    t: int,
    offboarded: NDArray[np.bool_] | None = None,
) -> list[Action]:
    """Placement (hourly: sign-ups wait at the entryway) and migration (when needed).
    ``offboarded`` providers (the market's migration needs) are drained like leaving
    ones."""
    acc = world.accounts
    out: list[Action] = []
    pend = acc.pending_by_region()
    hourly = max(1, round(3600 / world.step_seconds))
    if pend.sum() > 0 and (t < 0 or t % hourly == 0):
        obs = PlacementObserved(t, acc.hosted(), acc.slots, world.region, world.accepting(), pend)
        out += placement.decide(obs, PlacementDesired(), limits)
    down_for = world.down_for(t)
    total = max(1, int(acc.host.size))
    leaving = world.leaving_at >= 0
    if offboarded is not None:
        leaving = leaving | offboarded
    calm = not (down_for.any() or leaving.any())
    if calm and acc.hosted().max(initial=0) <= limits.max_provider_share * total:
        return out
    mobs = MigrationObserved(
        t,
        acc.hosted(),
        acc.slots,
        world.region,
        down_for,
        world.gone.copy(),
        leaving,
    )
    sla_steps = world.scenario.steps(
        world.scenario.sla_down_minutes, world.step_seconds, at_least=1
    )
    out += migration.decide(mobs, MigrationDesired(sla_down_steps=sla_steps), limits)
    return out


def _execute_direct(world: World, actions: list[Action]) -> None:
    for a in actions:
        world.execute(a)


class AgentPolicy:
    """Plaza's reconcilers behind the guard, buying and paying through the real market
    (:mod:`plaza.sim.marketplace`), every action and market event in one in-memory
    ledger."""

    name = "agent"

    def __init__(
        self,
        desired: CapacityDesired | None = None,
        *,
        mandate: Callable[[Mandate], Mandate] | None = None,
    ) -> None:
        """``mandate`` may amend the scenario's mandate (as members could vote to)."""
        self._desired_override = desired
        self._amend = mandate

    def setup(self, world: World) -> None:
        self.mandate = sim_mandate(world.scenario, world)
        if self._amend is not None:
            self.mandate = self._amend(self.mandate)
        self.desired = self._desired_override or CapacityDesired(
            sla_delay_steps=world.delay,
            reserved_price=world.res_price,
            on_demand_price=world.od_price,
            reserved_term_steps=world.res_term,
            reserved_lead_steps=world.res_lead,
            on_demand_lead_steps=world.od_lead,
            unit=world.scenario.unit,
            recourse_share=world.recourse_share,
            half_life_steps=world.res_term / 4,
            window_steps=2 * world.res_term,
            season_steps=world.steps_per_day,
        )
        self.window = LoadWindow(self.desired.history_steps())
        rule = self.mandate.rule("capacity.procure")
        self.capacity_category = (rule.category if rule else None) or "capacity"
        seed = hashlib.sha256(f"plaza-sim-agent-{world.seed}".encode()).digest()
        self.key = PrivateKey.from_bytes("ES256K", seed)
        self.ledger = Ledger(SimEventStore())
        # The market's clock is the trace's: epoch 0 starts with the first step.
        self.base_ms = max(int(world.trace.start.timestamp() * 1000), 86_400_000)
        self.settlements: list[object] = []
        self.market = Marketplace(
            world,
            self.ledger,
            self.key,
            self.mandate,
            seed=world.seed,
            base_ms=self.base_ms,
            settled=self.settlements.append,
        )
        self.market.setup()
        self.loop = AgentLoop(
            self.mandate, self.market, LedgerRecorder(self.ledger, self.key), provider_did
        )
        self.settle_desired = settlement.SettlementDesired()
        self._act_accounts(world, -1)

    def _now_ms(self, t: int) -> int:
        """The agent acts at the end of step ``t``."""
        return self.market.at_step(t + 1)

    def _accounts_map(self, world: World) -> dict[str, int]:
        hosted = world.accounts.hosted()
        return {provider_did(p): int(n) for p, n in enumerate(hosted) if n}

    def _submit(self, world: World, actions: list[Action], now_ms: int) -> None:
        if actions:
            self.loop.submit(actions, now_ms, self._accounts_map(world))

    def _act_accounts(self, world: World, t: int) -> None:
        limits = limits_from_mandate(self.mandate, int(world.accounts.host.size))
        actions = _place_and_migrate(world, limits, t, offboarded=self.market.offboarded())
        self._submit(world, actions, self._now_ms(t))

    def settle(self, world: World, now_ms: int) -> None:
        """The settlement reconciler: observe the market, decide, submit."""
        self.market.now_ms = now_ms
        limits = limits_from_mandate(self.mandate, int(world.accounts.host.size))
        obs = settlement.observe(self.market.market.state, now_ms, self.settle_desired)
        self._submit(world, settlement.decide(obs, self.settle_desired, limits), now_ms)

    def act(self, world: World, t: int) -> None:
        now_ms = self._now_ms(t)
        self.market.now_ms = now_ms
        self.market.tick()
        self.window.observe(world.trace.values[t] if t < world.trace.steps else 0.0)
        if (t + 1) % world.steps_per_day == 0:
            # An epoch ended with this step: the providers and probers file their
            # evidence, and the settlement reconciler settles it.
            self.market.file_evidence((t + 1) // world.steps_per_day - 1)
            self.settle(world, now_ms)
        self._act_accounts(world, t)
        limits = limits_from_mandate(self.mandate, int(world.accounts.host.size))
        obs = CapacityObserved(
            now=t,
            recent=self.window.values(),
            backlog=world.queue.entries(),
            contracts=world.reserved_view(),
            usable=world.usable(),
            accepting=self.market.accepting(),
            cap=world.cap,
            spent_window=self.loop.currency.to_units(
                self.loop.spent(self.capacity_category, now_ms, 86400)
            ),
        )
        self._submit(world, capacity.decide(obs, self.desired, limits), now_ms)

    def react(self, world: World, t: int) -> None:
        """Within step ``t``: on-demand recourse for load that would miss its deadline
        (:func:`plaza.agents.capacity.decide_recourse`)."""
        now_ms = self.market.at_step(t) + self.market.step_ms // 2
        self.market.now_ms = now_ms
        limits = limits_from_mandate(self.mandate, int(world.accounts.host.size))
        obs = CapacityObserved(
            now=t,
            recent=np.zeros(0),
            backlog=world.queue.entries(),
            contracts=world.reserved_view(),
            usable=world.usable(),
            accepting=self.market.accepting(),
            cap=world.cap,
            spent_window=self.loop.currency.to_units(
                self.loop.spent(self.capacity_category, now_ms, 86400)
            ),
        )
        action = capacity.decide_recourse(obs, self.desired, limits)
        if action is not None:
            self._submit(world, [action], now_ms)

    def finish(self, world: World) -> None:
        """End the run's contracts as their minimum terms allow; settle every epoch."""
        self.market.wind_down(lambda now_ms: self.settle(world, now_ms))


class ReactivePolicy:
    """HPA: ``desired = ceil(current * util / target)`` on on-demand capacity only."""

    name = "reactive"

    def __init__(self, target_utilization: float = 1.0, tolerance: float = 0.1) -> None:
        self.target = target_utilization
        self.tolerance = tolerance

    def setup(self, world: World) -> None:
        self.current = 1
        window = max(1, math.ceil(300 / world.step_seconds))
        self.recent: deque[int] = deque(maxlen=window + 1)
        self.limits = MandateLimits(
            world.scenario.max_provider_share, world.scenario.migration_batch_limit
        )
        _execute_direct(world, _place_and_migrate(world, self.limits, -1))

    def react(self, world: World, t: int) -> None:
        """Within a step, as an HPA does (it acts within seconds of a rise): on-demand
        capacity for the load that would otherwise miss its deadline this step."""
        units = recourse_units(world.due_now(), world.recourse_share, world.scenario.unit)
        _order_on_demand(world, units, t, self.limits, "reactive-recourse")

    def act(self, world: World, t: int) -> None:
        _execute_direct(world, _place_and_migrate(world, self.limits, t))
        capacity_now = max(float(world.capacity_log[-1]) if world.capacity_log else 0.0, 1.0)
        util = world.offered / capacity_now
        ratio = util / self.target
        desired = self.current
        if abs(ratio - 1.0) > self.tolerance:
            desired = max(1, math.ceil(self.current * ratio))
        self.recent.append(desired)
        # Scale up at once; scale down to the highest recommendation of the window.
        self.current = desired if desired >= self.current else max(self.recent)
        _order_on_demand(world, float(self.current), t + world.od_lead, self.limits, "reactive")


def _order_on_demand(
    world: World, units: float, start: int, limits: MandateLimits, rule: str
) -> None:
    if units <= 0:
        return
    alloc = spread_units(
        units,
        have=np.zeros(world.cap.size),
        cap=world.cap,
        accepting=world.accepting(),
        total_after=units,
        max_share=limits.max_provider_share,
        unit=world.scenario.unit,
    )
    reason = Reason.of(rule, f"{rule} baseline order", {"t": start}, units=units)
    world.execute(
        Action.make(
            "capacity.procure",
            reason,
            contract="on_demand",
            allocations=[(int(p), float(alloc[p])) for p in np.nonzero(alloc)[0]],
            start=start,
            term_steps=1,
            units=float(alloc.sum()),
        )
    )


class StaticPolicy:
    """Reserved capacity for the trace's peak, in place from the first step."""

    name = "static"

    def setup(self, world: World) -> None:
        self.limits = MandateLimits(
            world.scenario.max_provider_share, world.scenario.migration_batch_limit
        )
        _execute_direct(world, _place_and_migrate(world, self.limits, -1))
        unit = world.scenario.unit
        peak = math.ceil(float(world.trace.values.max()) / unit - 1e-9) * unit
        term = max(world.res_term, world.trace.steps + world.delay)
        alloc = spread_units(
            peak,
            have=np.zeros(world.cap.size),
            cap=world.cap,
            accepting=world.accepting(),
            total_after=peak,
            max_share=self.limits.max_provider_share,
            unit=unit,
        )
        for p in np.nonzero(alloc)[0]:
            world.add_contract(int(p), float(alloc[p]), 0, term)

    def act(self, world: World, t: int) -> None:
        _execute_direct(world, _place_and_migrate(world, self.limits, t))


class OraclePolicy:
    """Replays the LP optimum: reserved starts and ends, on-demand per step."""

    name = "oracle"

    def setup(self, world: World) -> None:
        self.limits = MandateLimits(
            world.scenario.max_provider_share, world.scenario.migration_batch_limit
        )
        _execute_direct(world, _place_and_migrate(world, self.limits, -1))
        self.plan = solve_oracle(
            world.trace.values,
            term=world.res_term,
            delay=world.delay,
            reserved_lead=world.res_lead,
            on_demand_lead=world.od_lead,
            reserved_price=world.res_price,
            on_demand_price=world.od_price,
            time_limit_s=world.scenario.oracle_time_limit_s,
            recourse_share=world.recourse_share,
        )
        r = self.plan.reserved
        prev = np.concatenate([[0.0], r[:-1]])
        self.ends = np.maximum(prev + self.plan.starts - r, 0.0)
        self._fifo: deque[list[float]] = deque()  # [contract id, start]
        self._next_provider = 0

    def _provider(self, world: World) -> int:
        ok = np.nonzero(world.accepting())[0]
        p = int(ok[self._next_provider % ok.size]) if ok.size else 0
        self._next_provider += 1
        return p

    def react(self, world: World, t: int) -> None:
        """The plan's on-demand capacity in the steps before ordering ahead can reach."""
        if t < world.od_lead and self.plan.on_demand[t] > 1e-9:
            per = np.zeros(world.cap.size)
            per[self._provider(world)] = float(self.plan.on_demand[t]) / world.recourse_share
            world.recourse_now(per)

    def act(self, world: World, t: int) -> None:
        _execute_direct(world, _place_and_migrate(world, self.limits, t))
        plan = self.plan
        T = plan.reserved.size
        s = t + world.res_lead
        if s < T and plan.starts[s] > 1e-9:
            cid = world.add_contract(
                self._provider(world), float(plan.starts[s]), s, s + world.res_term
            )
            self._fifo.append([cid, s])
        nxt = t + 1
        if nxt < T and self.ends[nxt] > 1e-9:
            left = float(self.ends[nxt])
            while left > 1e-9 and self._fifo:
                cid = int(self._fifo[0][0])
                if cid not in world.contracts:
                    self._fifo.popleft()
                    continue
                c = world.contracts[cid]
                if c.min_end > nxt:
                    break
                left -= world.shrink_contract(cid, left)
                if cid not in world.contracts:
                    self._fifo.popleft()
        if nxt < T and plan.on_demand[nxt] > 1e-9:
            per = np.zeros(world.cap.size)
            per[self._provider(world)] = float(plan.on_demand[nxt])
            world.order_on_demand_now(per, nxt)


def make_policy(name: str) -> Policy:
    """A fresh policy by name (one of :data:`POLICIES`)."""
    from plaza.sim.errors import SimError

    table: dict[str, type] = {
        "agent": AgentPolicy,
        "reactive": ReactivePolicy,
        "static": StaticPolicy,
        "oracle": OraclePolicy,
    }
    if name not in table:
        raise SimError(f"unknown policy {name!r}; choose one of {', '.join(POLICIES)}")
    policy: Policy = table[name]()
    return policy


__all__ = [
    "POLICIES",
    "AgentPolicy",
    "OraclePolicy",
    "Policy",
    "ReactivePolicy",
    "StaticPolicy",
    "make_policy",
    "provider_did",
]
