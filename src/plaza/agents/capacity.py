"""Capacity: keep enough contracted capacity for demand at the lowest cost.

Theory of operation. Two kinds of capacity exist: *reserved* (cheap, bought for a
minimum term, arrives after a lead time) and *on-demand* (dear, one step at a time,
arrives next step). Load that finds no free capacity waits in a FIFO queue and counts as
served if it is served within the SLA delay. Every step :func:`decide` does two things:

1. **Reserved level (newsvendor).** A unit reserved now is paid for a whole term; it pays
   off if it is busy more than ``p_r / p_o`` of that term (the price ratio, 0.4 by
   default). So the target reserved level is the ``1 - p_r/p_o`` quantile of the load
   expected over the coming term, estimated by a recency-weighted quantile of the recent
   load (:mod:`plaza.agents.forecast`). Below the target it procures the difference;
   above it, it releases units whose minimum term has passed (never earlier: that is the
   contract's notice rule).
2. **On-demand, just in time.** The queue tells exactly which load must be served next
   step to meet its deadline: everything that arrived ``sla_delay - margin`` steps ago
   or earlier. On-demand capacity for the next step is what that due load needs beyond
   the reserved capacity already coming, rounded up to whole units — no more. Load not
   yet due is left for reserved capacity to absorb in later steps (the queue's slack),
   so on-demand is bought only for work that certainly exists. Capacity therefore stays
   at or above the upper quantile of demand that matters: the load already waiting.

Every unit is spread over providers by water-filling that keeps each provider at or
below the mandate's maximum share of contracted capacity and within its cap; down,
leaving or gone providers get nothing. Spending never passes the mandate's daily budget:
what would pass it is not bought (the reason says so). ``decide`` is pure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from plaza.agents.forecast import weighted_quantile
from plaza.agents.placement import water_fill
from plaza.agents.types import Action, MandateLimits, Reason
from plaza.errors import InvalidInputError

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class ReservedContract:
    """A reserved contract as the agent sees it (active, or pending until ``start``)."""

    id: int
    provider: int
    units: float
    start: int
    min_end: int


@dataclass(frozen=True)
class CapacityObserved:
    """A snapshot of demand and capacity at step ``now`` (after serving ``now``).

    ``recent``: load that arrived in the last steps, oldest first, ending at ``now``.
    ``backlog``: ``(arrival_step, amount)`` of servable load still queued, oldest first.
    ``contracts``: reserved contracts not yet ended. ``usable[p]``: the share of
    provider ``p``'s contracted units that actually serve (0 when down or gone, below 1
    when slowed); ``accepting[p]``: may be sold new capacity; ``cap[p]``: its capacity
    cap in units. ``spent_window`` is what procurement committed during the last 24
    hours (the rolling window the mandate's daily budget is checked against).
    """

    now: int
    recent: FloatArray
    backlog: tuple[tuple[int, float], ...]
    contracts: tuple[ReservedContract, ...]
    usable: FloatArray
    accepting: NDArray[np.bool_]
    cap: FloatArray
    spent_window: float = 0.0


@dataclass(frozen=True)
class CapacityDesired:
    """Contract rules and service targets, in steps and prices per unit-step."""

    sla_delay_steps: int = 3
    reserved_price: float = 1.0 / 12
    on_demand_price: float = 2.5 / 12
    reserved_term_steps: int = 288
    reserved_lead_steps: int = 12
    on_demand_lead_steps: int = 1
    unit: float = 1.0
    #: Serve due load this many steps before its deadline (slack kept for faults).
    margin_steps: int = 0
    #: Spread on-demand purchases over the steps before the deadline (False: buy all of
    #: it in the deadline step).
    spread_on_demand: bool = True
    #: Recency weighting of the load window (None: flat window).
    half_life_steps: float | None = 72.0
    #: Samples in the window used for the reserved quantile (two terms by default).
    window_steps: int = 576
    #: Override of the newsvendor quantile ``1 - p_r/p_o``.
    quantile: float | None = None
    extra: dict[str, float] = field(default_factory=dict, compare=False)

    def reserved_quantile(self) -> float:
        if self.quantile is not None:
            return self.quantile
        return min(1.0, max(0.0, 1.0 - self.reserved_price / self.on_demand_price))


def spread_units(
    amount: float,
    *,
    have: FloatArray,
    cap: FloatArray,
    accepting: NDArray[np.bool_],
    total_after: float,
    max_share: float,
    unit: float,
) -> FloatArray:
    """Split ``amount`` units over providers: within caps, each at most ``max_share``."""
    share_room = max_share * total_after - have
    room = np.where(accepting, np.minimum(cap - have, share_room), 0.0)
    room = np.floor(np.maximum(room, 0.0) / unit + 1e-9) * unit
    if room.sum() < amount - 1e-9:
        # The share limit cannot hold all of it; fall back to the caps alone and let the
        # guard decide (over-concentration is its call, not a silent shortfall).
        room = np.where(accepting, np.maximum(cap - have, 0.0), 0.0)
        room = np.floor(room / unit + 1e-9) * unit
    x = water_fill(have, np.maximum(cap, 1e-9), room, amount)
    units = np.floor(x / unit + 1e-9)
    short = round((min(amount, float(room.sum())) - units.sum() * unit) / unit)
    if short > 0:
        frac = np.where(units * unit < room, x / unit - units, -1.0)
        for i in np.argsort(-frac, kind="stable")[:short]:
            if frac[i] > -1.0:
                units[i] += 1
    return units * unit


def _allocations(x: FloatArray) -> list[tuple[int, float]]:
    return [(int(p), float(x[p])) for p in np.nonzero(x > 1e-12)[0]]


def reserved_target(observed: CapacityObserved, desired: CapacityDesired) -> float:
    """The reserved level the newsvendor rule asks for, in whole units."""
    window = observed.recent[-desired.window_steps :]
    if window.size < desired.reserved_lead_steps:
        return 0.0
    level = weighted_quantile(window, desired.reserved_quantile(), desired.half_life_steps)
    return math.floor(level / desired.unit + 1e-9) * desired.unit


def decide(
    observed: CapacityObserved, desired: CapacityDesired, mandate: MandateLimits
) -> list[Action]:
    """Procure or release reserved capacity and buy next step's on-demand capacity.

    Returns at most three actions: ``capacity.procure`` (reserved), ``capacity.release``
    and ``capacity.procure`` (on-demand). See the module docstring for the rules.
    """
    n_prov = observed.usable.size
    if not (observed.accepting.size == observed.cap.size == n_prov):
        raise InvalidInputError("capacity: provider arrays differ in length")
    now = observed.now
    unit = desired.unit
    pr, po = desired.reserved_price, desired.on_demand_price
    actions: list[Action] = []

    per_provider = np.zeros(n_prov)
    for c in observed.contracts:
        per_provider[c.provider] += c.units
    # Reserved units that will serve: on healthy providers (down/gone ones are replaced).
    healthy = observed.usable > 0
    have = float(sum(c.units for c in observed.contracts if healthy[c.provider]))
    target = reserved_target(observed, desired)
    q = desired.reserved_quantile()
    budget_left = math.inf
    if mandate.budget_per_day is not None:
        budget_left = mandate.budget_per_day - observed.spent_window
    inputs_digest = {
        "now": now,
        "recent_tail": observed.recent[-24:].tolist(),
        "recent_len": int(observed.recent.size),
        "backlog": list(observed.backlog),
        "contracts": [(c.id, c.provider, c.units, c.start, c.min_end) for c in observed.contracts],
        "usable": observed.usable.tolist(),
    }

    released = 0.0
    if target > have + 1e-9:
        want = target - have
        term_cost = pr * desired.reserved_term_steps
        if want * term_cost > budget_left:
            want = math.floor(max(0.0, budget_left) / term_cost / unit) * unit
        if want >= unit - 1e-9:
            alloc = spread_units(
                want,
                have=per_provider,
                cap=observed.cap,
                accepting=observed.accepting & healthy,
                total_after=have + want,
                max_share=mandate.max_provider_share,
                unit=unit,
            )
            bought = float(alloc.sum())
            if bought > 0:
                per_provider += alloc
                have += bought
                budget_left -= bought * term_cost
                reason = Reason.of(
                    "capacity.reserve-newsvendor",
                    f"Demand is expected above {target:g} units for at least {1 - q:.0%} of the "
                    f"next {desired.reserved_term_steps} steps, where reserved capacity "
                    f"(price {pr:.4g}/unit-step) beats on-demand ({po:.4g}); "
                    f"{have - bought:g} units are reserved, so reserve {bought:g} more.",
                    inputs_digest,
                    target=target,
                    reserved_before=have - bought,
                    quantile=q,
                    units=bought,
                )
                actions.append(
                    Action.make(
                        "capacity.procure",
                        reason,
                        contract="reserved",
                        allocations=_allocations(alloc),
                        start=now + desired.reserved_lead_steps,
                        term_steps=desired.reserved_term_steps,
                        unit_price=pr,
                        units=bought,
                        cost=bought * term_cost,
                    )
                )
    elif target < have - unit + 1e-9:
        surplus = have - target
        releases: list[tuple[int, float]] = []
        # Oldest first, and only contracts whose minimum term is over by next step.
        for c in sorted(observed.contracts, key=lambda c: (c.start, c.id)):
            if surplus < unit - 1e-9:
                break
            if c.min_end > now + 1 or not healthy[c.provider]:
                continue
            take = min(c.units, math.floor(surplus / unit + 1e-9) * unit)
            if take > 0:
                releases.append((c.id, take))
                surplus -= take
                released += take
                per_provider[c.provider] -= take
        if releases:
            reason = Reason.of(
                "capacity.release-surplus",
                f"Reserved capacity {have:g} is above the {q:.0%} quantile of expected load "
                f"({target:g}); release {released:g} units whose minimum term has ended.",
                inputs_digest,
                target=target,
                reserved_before=have,
                units=released,
            )
            actions.append(
                Action.make(
                    "capacity.release",
                    reason,
                    releases=releases,
                    units=released,
                    at=now + 1,
                )
            )

    # On-demand for next step: what the due load needs beyond reserved capacity then.
    nxt = now + desired.on_demand_lead_steps
    reserved_next = 0.0
    release_ids = {cid: u for cid, u in actions[-1].get("releases", ())} if released else {}
    for c in observed.contracts:
        if c.start <= nxt:
            units = c.units - release_ids.get(c.id, 0.0)
            reserved_next += units * float(observed.usable[c.provider])
    # The flattest on-demand rate that still meets every known deadline: for each
    # horizon k, the load due within k steps minus the reserved capacity of those k
    # steps, spread over k. Buying the maximum of these now (rather than all of it at
    # the last step) keeps per-step orders small, within provider caps, and leaves a
    # step of slack when a provider fails.
    horizon = max(1, desired.sla_delay_steps - desired.margin_steps)
    if not desired.spread_on_demand:
        horizon = 1
    due_by = [0.0] * (horizon + 1)
    for arrival, amount in observed.backlog:
        k = arrival + desired.sla_delay_steps - desired.margin_steps - now
        due_by[min(max(k, 1), horizon)] += amount
    need = 0.0
    due = 0.0
    cumulative = 0.0
    for k in range(1, horizon + 1):
        cumulative += due_by[k]
        if k == 1:
            due = cumulative
        need = max(need, (cumulative - reserved_next * k) / k)
    if need > 1e-9:
        units_needed = math.ceil(need / unit - 1e-9) * unit
        if units_needed * po > budget_left:
            units_needed = math.floor(max(0.0, budget_left) / po / unit) * unit
        total_after = float(per_provider.sum()) + units_needed
        alloc = spread_units(
            units_needed,
            have=per_provider,
            cap=observed.cap,
            accepting=observed.accepting & healthy,
            total_after=total_after,
            max_share=mandate.max_provider_share,
            unit=unit,
        )
        bought = float(alloc.sum())
        if bought > 0:
            reason = Reason.of(
                "capacity.on-demand-just-in-time",
                f"{due:g} units of queued load reach their {desired.sla_delay_steps}-step "
                f"deadline next step and reserved capacity then is {reserved_next:g}; buy "
                f"{bought:g} on-demand units for one step.",
                inputs_digest,
                due=due,
                reserved_next=reserved_next,
                units=bought,
            )
            actions.append(
                Action.make(
                    "capacity.procure",
                    reason,
                    contract="on_demand",
                    allocations=_allocations(alloc),
                    start=nxt,
                    term_steps=1,
                    unit_price=po,
                    units=bought,
                    cost=bought * po,
                )
            )
    return actions
