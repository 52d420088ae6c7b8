"""The simulated world: providers, capacity contracts, the load queue and the accounts.

Theory of operation. Time advances in whole steps (the trace's step). :meth:`World.step`
runs one step in a fixed order, so a run is a pure function of the trace, the scenario,
the faults, the seed and the policy:

1. scheduled events for this step fire (contract starts, faults starting or ending,
   a leaving provider going away);
2. capacity = sum over providers of (reserved + on-demand units) x usable factor
   (0 down or gone, the slowdown factor when slowed, 1 otherwise); every contract is
   billed for the step unless its provider is down or gone (an SLA credit of 100%);
3. the step's load arrives; the part belonging to accounts whose host is unreachable
   is held back (it can be served once the host is back or the accounts are moved);
4. capacity serves the queue oldest first; load older than the SLA delay is dropped.

The policy then observes the world and acts: the baselines directly through
:meth:`World.execute`, the agents through :class:`plaza.sim.marketplace.Marketplace`,
which buys on the real market and then gives the world what the market awarded. The
world keeps its own accounting of everything, as billed in the contracts: reserved units
for at least their minimum term (a run that ends mid-term pays the rest of the term),
on-demand per step; for the agents, the market's invoices are checked against it.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from plaza.agents.capacity import ReservedContract
from plaza.agents.types import Action
from plaza.dao.money import default_currency
from plaza.errors import ConflictError, InvalidInputError
from plaza.market import PRICE_SCALE
from plaza.sim.accounts import AccountPlane
from plaza.sim.faults import Fault
from plaza.sim.outcome import Outcome
from plaza.sim.queue import DeadlineQueue
from plaza.sim.scenario import Scenario
from plaza.sim.trace import Trace

#: Millionths of a minor unit per currency unit: the market's price scale times the
#: minor units of the shipped constitution's currency (the simulated DAO's).
MICRO_PER_UNIT = PRICE_SCALE * default_currency().per_unit


def recourse_share(lead_minutes: float, sla_minutes: float, step_seconds: int) -> float:
    """The share of a step that on-demand capacity ordered at its start serves: the rest
    of the step after the lead time, when the lead is shorter than the step and no
    longer than the SLA delay (the load waiting for it still meets its deadline);
    otherwise 0 (such capacity cannot help the step's load)."""
    step_minutes = step_seconds / 60.0
    if lead_minutes >= step_minutes or lead_minutes > sla_minutes:
        return 0.0
    return (step_minutes - lead_minutes) / step_minutes


def lot_price_micro(price_per_unit_hour: float, unit: float, step_seconds: int) -> int:
    """The price of one lot (``unit`` capacity units) for one step, in millionths of a
    minor unit, rounded to the nearest integer (the market's resolution)."""
    return max(1, round(price_per_unit_hour * unit * step_seconds / 3600 * MICRO_PER_UNIT))


@dataclass
class _Contract:
    id: int
    provider: int
    units: float
    start: int
    min_end: int


class World:
    """Providers, contracts, queue and accounts for one simulation run."""

    def __init__(
        self, trace: Trace, scenario: Scenario, faults: tuple[Fault, ...], seed: int
    ) -> None:
        sc = scenario.validate()
        self.trace, self.scenario, self.seed = trace, sc, seed
        step_s = trace.step_seconds
        self.step_seconds = step_s
        # The SLA delay in whole steps, rounded *down*: load may wait at most the delay,
        # so with 30-minute steps and a 15-minute SLA no load may wait (delay 0) and
        # capacity for a step must be in place before its load arrives.
        self.delay = math.floor(sc.sla_delay_minutes * 60.0 / step_s + 1e-9)
        self.res_term = sc.steps(sc.reserved.min_term_minutes, step_s, at_least=1)
        self.res_lead = sc.steps(sc.reserved.lead_time_minutes, step_s)
        # On-demand ordered ahead (by a policy's decision after a step) serves from the
        # start of the step the lead time reaches: the step after next at the earliest.
        self.od_lead = sc.steps(sc.on_demand.lead_time_minutes, step_s, at_least=1)
        # On-demand ordered *within* a step, in reaction to its load (recourse): it
        # serves the rest of the step once its lead time has passed, if the load it
        # serves may wait that long (lead <= SLA delay, in minutes); billed the whole
        # step (on-demand's shortest term). 0 when the lead is a step or more, or longer
        # than the SLA: then only orders made ahead serve. See docs/simulation.md,
        # "Queue and SLA".
        self.recourse_share = recourse_share(
            sc.on_demand.lead_time_minutes, sc.sla_delay_minutes, step_s
        )
        self._reacting = False
        self.od_term = sc.steps(sc.on_demand.min_term_minutes, step_s, at_least=1)
        # Prices per unit-step as the market states them: integer millionths of a minor unit
        # per lot (one ``unit`` of capacity) and step, so that the simulator's own
        # accounting and the market's invoices use the very same numbers.
        self.res_lot_price = lot_price_micro(sc.reserved.price_per_unit_hour, sc.unit, step_s)
        self.od_lot_price = lot_price_micro(sc.on_demand.price_per_unit_hour, sc.unit, step_s)
        self.res_price = self.res_lot_price / MICRO_PER_UNIT / sc.unit
        self.od_price = self.od_lot_price / MICRO_PER_UNIT / sc.unit
        self.steps_per_day = max(1, round(86400 / step_s))
        rng = np.random.default_rng([seed, 1])
        n = sc.providers
        peak_load = float(trace.values.max()) if trace.values.size else 1.0
        self.cap = np.full(n, max(math.ceil(sc.provider_cap_x_peak * peak_load), 10 * sc.unit))
        self.region = np.arange(n) % len(sc.regions)
        self.down = np.zeros(n, dtype=bool)
        self.gone = np.zeros(n, dtype=bool)
        self.leaving_at = np.full(n, -1, dtype=np.int64)
        self.slow = np.ones(n)
        self.down_since = np.full(n, -1, dtype=np.int64)
        self.now = -1
        self.queue = DeadlineQueue(self.delay)
        self.contracts: dict[int, _Contract] = {}
        self._active = np.zeros(n)  # reserved units of started contracts, per provider
        self._next_id = 1
        self.od = np.zeros(n)  # on-demand units serving this step
        self._od_orders: dict[int, NDArray[np.float64]] = {}
        self._events: list[tuple[int, int, str, Any]] = []
        self._seq = 0
        for f in faults:
            self._schedule(f.at, "fault-start", f)
        peak = float(trace.values.max()) if trace.values.size else 0.0
        self.budget_per_day = (
            sc.budget_per_day
            if sc.budget_per_day is not None
            else max(2.5 * peak * self.od_price * self.steps_per_day, 1.0)
        )
        self.accounts = AccountPlane(
            sc,
            n,
            provider_region=self.region,
            rng=rng,
            steps_per_day=self.steps_per_day,
            step_seconds=step_s,
        )
        # Metrics.
        self.cost = 0.0
        #: Steps whose load no capacity can reach before its deadline (the first step when
        #: the SLA delay is 0 steps), and that load.
        first_od = 0 if self.recourse_share > 0 else self.od_lead
        self.unservable_steps = max(0, min(first_od, self.res_lead) - self.delay)
        self.unservable = 0.0
        self.arrived = 0.0
        self.unserved = 0.0
        self.violation_steps = 0
        self.wait_hist = np.zeros(self.delay + 1)
        self.capacity_log: list[float] = []
        self.reserved_log: list[float] = []
        # What each provider could serve, step by step (0 down or gone): probers see this.
        self.usable_log: list[NDArray[np.float64]] = []
        self.offered = 0.0
        #: On-demand units bought within a step (recourse), summed over steps.
        self.od_recourse = 0.0
        #: Where ``cost`` goes: reserved capacity (with the rest of the terms running at
        #: the end), on-demand capacity ordered ahead, on-demand recourse within a step;
        #: and the part of the reserved cost that paid for idle capacity (reserved
        #: capacity beyond the load a step served, and the terms billed after the end).
        self.cost_reserved = 0.0
        self.cost_on_demand = 0.0
        self.cost_recourse = 0.0
        self.idle_reserved_cost = 0.0

    # -- scheduling ------------------------------------------------------------------
    def _schedule(self, at: int, kind: str, data: Any) -> None:
        self._seq += 1
        heapq.heappush(self._events, (at, self._seq, kind, data))

    def _fire(self, t: int) -> None:
        while self._events and self._events[0][0] <= t:
            _, _, kind, data = heapq.heappop(self._events)
            if kind == "fault-start":
                self._fault_start(data, t)
            elif kind == "fault-end":
                self._fault_end(data, t)
            elif kind == "leave":
                self._vanish(int(data), t, with_disk=False)
            elif kind == "contract-start":
                c = self.contracts.get(int(data))
                if c is not None:
                    self._active[c.provider] += c.units

    def _fault_start(self, f: Fault, t: int) -> None:
        p = f.provider
        if self.gone[p]:
            return
        if f.kind == "crash":
            self.down[p] = True
            self.down_since[p] = t
            self.accounts.host_down(p)
            self._schedule(t + max(1, f.duration), "fault-end", f)
        elif f.kind == "slow":
            self.slow[p] = f.factor
            self._schedule(t + max(1, f.duration), "fault-end", f)
        elif f.kind == "leave":
            self.leaving_at[p] = t + f.duration
            self._schedule(t + f.duration, "leave", p)
        elif f.kind == "vanish":
            self._vanish(p, t, with_disk=True)

    def _fault_end(self, f: Fault, t: int) -> None:
        p = f.provider
        if self.gone[p]:
            return
        if f.kind == "crash":
            self.down[p] = False
            self.down_since[p] = -1
            for arrival, amount in self.accounts.host_up(p):
                self.queue.add(arrival, amount)
        elif f.kind == "slow":
            self.slow[p] = 1.0

    def _vanish(self, p: int, t: int, *, with_disk: bool) -> None:
        if self.gone[p]:
            return
        self.gone[p] = True
        self.down[p] = False
        for cid in [c.id for c in self.contracts.values() if c.provider == p]:
            del self.contracts[cid]
        self._active[p] = 0.0
        self.accounts.host_gone(p, with_disk=with_disk)

    # -- observation helpers ---------------------------------------------------------
    def down_for(self, t: int) -> NDArray[np.int64]:
        """Steps each provider has been unreachable (gone counts as always)."""
        out = np.where(self.down_since >= 0, t - self.down_since + 1, 0)
        return np.where(self.gone, 10**9, out).astype(np.int64)

    def usable(self) -> NDArray[np.float64]:
        return np.where(self.down | self.gone, 0.0, self.slow)

    def accepting(self) -> NDArray[np.bool_]:
        return ~(self.down | self.gone | (self.leaving_at >= 0))

    def reserved_by_provider(self) -> NDArray[np.float64]:
        """Reserved units of started contracts, per provider."""
        return self._active.copy()

    def reserved_view(self) -> tuple[ReservedContract, ...]:
        return tuple(
            ReservedContract(c.id, c.provider, c.units, c.start, c.min_end)
            for c in sorted(self.contracts.values(), key=lambda c: c.id)
        )

    # -- the step --------------------------------------------------------------------
    def step(self, t: int, arrival: float, react: Callable[[int], None] | None = None) -> None:
        """Advance to step ``t`` with ``arrival`` units of load (see the module doc).

        ``react(t)`` is called after capacity has served the queue and before load past
        its deadline is dropped, when there is such load and on-demand recourse is
        possible (:attr:`recourse_share` > 0): the policy may then order on-demand
        capacity for the rest of this step (an on-demand procure starting at ``t``)."""
        self.now = t
        self._fire(t)
        self.od = self._od_orders.pop(t, np.zeros(self.cap.size))
        reserved = self._active
        usable = self.usable()
        self.usable_log.append(usable)
        billed = ~(self.down | self.gone)
        reserved_cost = float((reserved * billed).sum() * self.res_price)
        on_demand_cost = float((self.od * billed).sum() * self.od_price)
        self.cost += reserved_cost + on_demand_cost
        self.cost_reserved += reserved_cost
        self.cost_on_demand += on_demand_cost
        capacity = float(((reserved + self.od) * usable).sum())
        self.capacity_log.append(capacity)
        self.reserved_log.append(float((reserved * usable).sum()))
        self.accounts.signups(t)
        servable = self.accounts.arrive(t, arrival)
        if t < self.unservable_steps:
            # Its deadline passes before any capacity can arrive: no policy can serve it,
            # so it counts neither as arrived nor as unserved (the oracle leaves it out).
            self.unservable += arrival
            servable = 0.0
        else:
            self.arrived += arrival
        self.queue.add(t, servable)
        self.offered = self.queue.total()
        served, waits = self.queue.serve_with_waits(capacity, t)
        for wait, amount in waits:
            self.wait_hist[min(wait, self.delay)] += amount
        if react is not None and self.recourse_share > 0 and self.due_now() > 1e-9:
            self._reacting = True
            try:
                react(t)
            finally:
                self._reacting = False
        # Reserved capacity left idle: on-demand capacity is bought for the queue, so it
        # counts as used first, and only reserved capacity beyond the load is idle.
        idle = max(0.0, capacity - served)
        self.idle_reserved_cost += min(idle, self.reserved_log[-1]) * self.res_price
        dropped = self.queue.expire(t) + self.accounts.expire_blocked(t, self.delay)
        if dropped > 1e-9:
            self.unserved += dropped
            self.violation_steps += 1

    def due_now(self) -> float:
        """Queued load that is dropped at the end of the current step unless served."""
        return sum(x for a, x in self.queue.entries() if a <= self.now - self.delay)

    def _recourse(self, allocations: list[tuple[int, float]]) -> float:
        """On-demand capacity ordered within the current step: bill the step, serve the
        queue with its share of the step; return the capacity that served."""
        billed = ~(self.down | self.gone)
        usable = self.usable()
        units = sum(u for p, u in allocations if billed[p])
        capacity = self.recourse_share * sum(u * float(usable[p]) for p, u in allocations)
        self.cost += units * self.od_price
        self.cost_recourse += units * self.od_price
        self.od_recourse += units
        _, waits = self.queue.serve_with_waits(capacity, self.now)
        for wait, amount in waits:
            self.wait_hist[min(wait, self.delay)] += amount
        self.capacity_log[-1] += capacity
        return capacity

    def recourse_now(self, per_provider: NDArray[np.float64]) -> float:
        """Direct recourse order used by the baselines' replay (no action, no guard)."""
        if not self._reacting:
            raise ConflictError("on-demand recourse is ordered only within a step")
        alloc = [(int(p), float(per_provider[p])) for p in np.nonzero(per_provider)[0]]
        return self._recourse(alloc)

    def finish(self) -> None:
        """Bill the rest of every reserved term still running when the run ends."""
        end = self.now + 1
        for c in self.contracts.values():
            remaining = c.min_end - max(c.start, end)
            if remaining > 0:
                self.cost += c.units * self.res_price * remaining
                self.cost_reserved += c.units * self.res_price * remaining
                self.idle_reserved_cost += c.units * self.res_price * remaining
        for orders in self._od_orders.values():
            self.cost += float(orders.sum()) * self.od_price
            self.cost_on_demand += float(orders.sum()) * self.od_price
        self._od_orders.clear()

    # -- the executor (simulated market) ---------------------------------------------
    def execute(self, action: Action) -> Outcome:
        """Carry out ``action`` in the simulated market and account plane."""
        if action.kind == "capacity.procure":
            return self._procure(action)
        if action.kind == "capacity.release":
            return self._release(action)
        if action.kind == "placement.assign":
            return self.accounts.assign(action)
        if action.kind == "migration.batch":
            out = self.accounts.migrate(action, self.now, ~(self.down | self.gone))
            for arrival, amount in out.data.get("released", ()):
                self.queue.add(arrival, amount)
            return out
        raise InvalidInputError(f"the simulator cannot execute {action.kind!r}")

    def _procure(self, action: Action) -> Outcome:
        kind = action["contract"]
        allocations = [(int(p), float(u)) for p, u in action["allocations"]]
        for p, u in allocations:
            if not 0 <= p < self.cap.size or u < 0 or not math.isfinite(u):
                raise InvalidInputError(f"bad allocation ({p}, {u})")
            if self.gone[p] or self.leaving_at[p] >= 0:
                raise ConflictError(f"provider p{p} takes no new contracts")
        start = int(action["start"])
        if kind == "reserved":
            # The earliest start: a reservation carried out late (after a veto window
            # members let pass) starts its whole term once the lead time allows; what
            # members approved is the units and the term, not the hour.
            start = max(start, self.now + self.res_lead)
            term = max(int(action.get("term_steps", self.res_term)), self.res_term)
            for p, u in allocations:
                self.add_contract(p, u, start, start + term)
            return Outcome(
                True, f"reserved {sum(u for _, u in allocations):g} units from step {start}"
            )
        if kind == "on_demand":
            term = max(int(action.get("term_steps", 1)), self.od_term)
            first = 0
            if start == self.now and self._reacting:
                self._recourse(allocations)
                first = 1
            elif start < self.now + self.od_lead:
                raise ConflictError(f"on-demand capacity needs {self.od_lead} step(s) of lead time")
            for k in range(first, term):
                orders = self._od_orders.setdefault(start + k, np.zeros(self.cap.size))
                for p, u in allocations:
                    orders[p] += u
            return Outcome(
                True, f"on-demand {sum(u for _, u in allocations):g} units at step {start}"
            )
        raise InvalidInputError(f"unknown contract kind {kind!r}")

    def _release(self, action: Action) -> Outcome:
        at = max(int(action.get("at", self.now + 1)), self.now + 1)  # the earliest step
        total = 0.0
        for cid, units in action["releases"]:
            c = self.contracts.get(int(cid))
            if c is None:
                raise ConflictError(f"contract {cid} is not active")
            if c.min_end > at:
                raise ConflictError(
                    f"contract {cid} runs until step {c.min_end}; cannot end at {at}"
                )
            total += self.shrink_contract(c.id, float(units))
        return Outcome(True, f"released {total:g} units from step {at}")

    def add_contract(self, provider: int, units: float, start: int, min_end: int) -> int:
        """Create a reserved contract (starts at ``start``); return its id."""
        cid = self._next_id
        self._next_id += 1
        self.contracts[cid] = _Contract(cid, provider, units, start, min_end)
        if start <= self.now:
            self._active[provider] += units
        else:
            self._schedule(start, "contract-start", cid)
        return cid

    def shrink_contract(self, cid: int, units: float) -> float:
        """End ``units`` of contract ``cid`` now; return how many ended."""
        c = self.contracts[cid]
        units = min(units, c.units)
        c.units -= units
        if c.start <= self.now:  # started; a pending one adds what is left when it starts
            self._active[c.provider] = max(0.0, self._active[c.provider] - units)
        if c.units <= 1e-12:
            del self.contracts[cid]
        return units

    def order_on_demand_now(self, per_provider: NDArray[np.float64], start: int) -> None:
        """Direct order used by the oracle's replay (no action, no guard)."""
        orders = self._od_orders.setdefault(start, np.zeros(self.cap.size))
        orders += per_provider
