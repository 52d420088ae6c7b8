"""Capacity: keep enough contracted capacity for demand at the lowest cost.

Theory of operation. Two kinds of capacity exist: *reserved* (cheap, bought for a
minimum term, arrives after a lead time) and *on-demand* (dear, one step at a time,
arrives next step). Load that finds no free capacity waits in a FIFO queue and counts as
served if it is served within the SLA delay. :func:`decide` does two things:

1. **Reserved capacity — a rolling plan** (every block, an hour by default). A small
   linear program over the next term and a half (:mod:`plaza.agents.capacity_plan`) chooses
   how many reserved units to start now and how many past-term units to release, given
   the contracts already held and a forecast of the load per hour: the recency-weighted
   distribution of recent load times the profile of the season detected in it
   (:mod:`plaza.agents.capacity_forecast`); when load cannot wait for on-demand capacity
   (an SLA delay of 0 steps), of the capacity each step needs before its load arrives.
   It weighs each unit's price for its whole term against the on-demand capacity it
   saves, and it sees the fleet as a ladder: a unit bought at the morning rise can
   replace, at night, an older unit whose term is over, so committed capacity follows
   the daily cycle at reserved prices. Units are released only after their minimum
   term (the contract's notice rule). ``planner="newsvendor"`` (also the fallback if
   the LP fails) is the level rule alone: reserve the units busy at least ``p_r / p_o``
   (0.4) of the time under the same forecast.
2. **On-demand, just in time.** The queue tells exactly which load must be served next
   step to meet its deadline. On-demand capacity for the next step is the larger of
   what the load due next step needs beyond the reserved capacity then (rounded up to
   whole units) and the flattest whole-unit rate that meets every known deadline
   (rounded down). Nothing is bought for load that has not arrived; load not yet due
   is left for reserved capacity to absorb (the queue's slack), and a fraction of a
   unit is bought only when a deadline forces it — that unit then serves everything
   queued behind it too, which matters when the load is small against a unit. When
   load cannot wait (the SLA delay is shorter than the on-demand lead), the order also
   covers a calibrated bound on the next step's load (:mod:`plaza.agents.headroom`).

Every unit is spread over providers by water-filling that keeps each provider at or
below the mandate's maximum share of contracted capacity and within its cap; down,
leaving or gone providers get nothing. Spending never passes the mandate's daily budget:
what would pass it is not bought (the reason says so). ``decide`` is pure: the same
observation gives the same actions (the plan's LP included).
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from plaza.agents.allocation import allocations, spread_units
from plaza.agents.capacity_forecast import Forecast, forecast
from plaza.agents.capacity_model import CapacityDesired, CapacityObserved, ReservedContract
from plaza.agents.capacity_plan import PlanProblem, ReservedPlan, plan_reserved
from plaza.agents.forecast import newsvendor_units
from plaza.agents.headroom import StepAhead
from plaza.agents.types import Action, MandateLimits, Reason
from plaza.errors import InvalidInputError

FloatArray = NDArray[np.float64]

__all__ = [
    "CapacityDesired",
    "CapacityObserved",
    "Forecast",
    "ReservedContract",
    "decide",
    "decide_recourse",
    "forecast",
    "recourse_units",
    "reserved_plan",
    "reserved_target",
    "spread_units",
]


def reserved_target(
    observed: CapacityObserved, desired: CapacityDesired, fc: Forecast | None = None
) -> float:
    """The reserved level the newsvendor rule asks for, in whole units.

    The most units each busy at least ``1 - quantile`` (``p_r / p_o``) of the time
    under the recency-weighted load of the window, averaged over the hours of a day
    (:func:`plaza.agents.forecast.newsvendor_units`).
    """
    fc = fc or forecast(observed, desired)
    if fc is None:
        return 0.0
    units = newsvendor_units(
        fc.distribution, 1.0 - desired.reserved_quantile(), desired.unit, fc.profile
    )
    return units * desired.unit


def reserved_plan(
    observed: CapacityObserved, desired: CapacityDesired, fc: Forecast | None = None
) -> ReservedPlan | None:
    """The rolling plan's decision at ``observed.now`` (None when there is no history)."""
    fc = fc or forecast(observed, desired)
    if fc is None:
        return None
    dist, profile = fc.distribution, fc.profile
    block = desired.block_steps()
    term_blocks = max(1, round(desired.reserved_term_steps / block))
    blocks = math.ceil(desired.plan_horizon_terms * term_blocks) + 1
    first = observed.now + 1 + block * np.arange(blocks, dtype=np.int64)
    scales = profile[(first // block) % profile.size]
    healthy = observed.usable > 0
    problem = PlanProblem(
        now=observed.now,
        block_steps=block,
        blocks=blocks,
        term_steps=desired.reserved_term_steps,
        lead_steps=desired.reserved_lead_steps,
        reserved_price=desired.reserved_price,
        on_demand_price=desired.plan_on_demand_price(),
        unit=desired.unit,
        distribution=dist,
        scales=scales,
        contracts=tuple(
            (c.units, c.start, c.min_end) for c in observed.contracts if healthy[c.provider]
        ),
        breakpoints=desired.plan_breakpoints,
    )
    return plan_reserved(problem)


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
    if desired.planner not in ("lp", "newsvendor"):
        raise InvalidInputError(f"capacity: unknown planner {desired.planner!r}")
    now = observed.now
    per_provider = np.zeros(n_prov)
    for c in observed.contracts:
        per_provider[c.provider] += c.units
    budget_left = math.inf
    if mandate.budget_per_day is not None:
        budget_left = mandate.budget_per_day - observed.spent_window
    inputs_digest: dict[str, Any] = {
        "now": now,
        # The whole history the forecast used; its tail in clear for reading.
        "recent_sha256": hashlib.sha256(
            np.asarray(observed.recent, np.float64).tobytes()
        ).hexdigest(),
        "recent_tail": observed.recent[-24:].tolist(),
        "recent_len": int(observed.recent.size),
        "backlog": list(observed.backlog),
        "contracts": [(c.id, c.provider, c.units, c.start, c.min_end) for c in observed.contracts],
        "usable": observed.usable.tolist(),
    }
    plan_now = desired.planner == "newsvendor" or now % desired.block_steps() == 0
    every_step = desired.load_cannot_wait() or desired.ahead_quantile() is not None
    fc = forecast(observed, desired) if plan_now or every_step else None
    reserved = _Reserved(
        observed,
        desired,
        mandate,
        per_provider=per_provider,
        budget_left=budget_left,
        inputs_digest=inputs_digest,
    )
    actions = reserved.decide(fc)
    ahead = fc.ahead if fc is not None else None
    low = fc.low if fc is not None else None
    od = _on_demand(observed, desired, mandate, reserved, inputs_digest, ahead=ahead, low=low)
    if od is not None:
        actions.append(od)
    return actions


def recourse_units(due: float, share: float, unit: float) -> float:
    """Whole lots of on-demand capacity that, ordered within a step and serving
    ``share`` of it, serve ``due`` units of load (0 when nothing is due or no recourse)."""
    if due <= 1e-12 or share <= 0:
        return 0.0
    return math.ceil(due / (share * unit) - 1e-9) * unit


def _one_step_on_demand(reason: Reason, alloc: np.ndarray, start: int, price: float) -> Action:
    """Buy the on-demand units ``alloc`` spreads over providers, for the one step
    ``start``."""
    bought = float(alloc.sum())
    return Action.make(
        "capacity.procure",
        reason,
        contract="on_demand",
        allocations=allocations(alloc),
        start=start,
        term_steps=1,
        unit_price=price,
        units=bought,
        cost=bought * price,
    )


def decide_recourse(
    observed: CapacityObserved, desired: CapacityDesired, mandate: MandateLimits
) -> Action | None:
    """Within step ``observed.now``, after its capacity has served: on-demand capacity
    for the rest of the step for the queued load that would otherwise miss its deadline
    at the step's end (``desired.recourse_share`` > 0: on-demand capacity arrives within
    the step and the load may wait for it). Pure, as :func:`decide`."""
    share, unit, po = desired.recourse_share, desired.unit, desired.on_demand_price
    if share <= 0:
        return None
    now = observed.now
    due = sum(x for a, x in observed.backlog if a <= now - desired.sla_delay_steps)
    units = recourse_units(due, share, unit)
    if units <= 0:
        return None
    if mandate.budget_per_day is not None:
        left = mandate.budget_per_day - observed.spent_window
        units = min(units, math.floor(max(0.0, left) / po / unit) * unit)
        if units <= 0:
            return None
    healthy = observed.usable > 0
    per_provider = np.zeros(observed.usable.size)
    for c in observed.contracts:
        per_provider[c.provider] += c.units
    alloc = spread_units(
        units,
        have=per_provider,
        cap=observed.cap,
        accepting=observed.accepting & healthy,
        total_after=float(per_provider.sum()) + units,
        max_share=mandate.max_provider_share,
        unit=unit,
    )
    bought = float(alloc.sum())
    if bought <= 0:
        return None
    text = (
        f"{due:g} units of queued load miss their {desired.sla_delay_steps}-step deadline "
        f"at the end of this step; on-demand capacity ordered now serves {share:.0%} of "
        f"the step: buy {bought:g} units for this step."
    )
    digest = {"now": now, "backlog": list(observed.backlog)}
    reason = Reason.of("capacity.on-demand-recourse", text, digest, due=due, units=bought)
    return _one_step_on_demand(reason, alloc, now, po)


class _Reserved:
    """The reserved half of one decision: what to buy or release, and the state after."""

    def __init__(
        self,
        observed: CapacityObserved,
        desired: CapacityDesired,
        mandate: MandateLimits,
        *,
        per_provider: FloatArray,
        budget_left: float,
        inputs_digest: dict[str, Any],
    ) -> None:
        self.observed, self.desired, self.mandate = observed, desired, mandate
        self.per_provider = per_provider
        self.budget_left = budget_left
        self.inputs = inputs_digest
        # Reserved units that will serve: on healthy providers (down/gone ones are replaced).
        self.healthy = observed.usable > 0
        self.have = float(sum(c.units for c in observed.contracts if self.healthy[c.provider]))
        self.releases: dict[int, float] = {}

    def decide(self, fc: Forecast | None) -> list[Action]:
        d = self.desired
        if d.planner == "lp":
            if self.observed.now % d.block_steps() or fc is None:
                return []
            plan = reserved_plan(self.observed, d, fc)
            if plan is None:
                return []
            if plan.solved:
                return self._from_plan(plan)
        if fc is None:
            return []
        return self._from_target(reserved_target(self.observed, d, fc))

    def _from_plan(self, plan: ReservedPlan) -> list[Action]:
        d = self.desired
        numbers = {
            "held": plan.held,
            "committed": plan.committed,
            "planned_level": plan.level_next,
            "expected_cost": plan.expected_cost,
            "horizon_blocks": float(plan.blocks),
        }
        horizon_h = d.plan_horizon_terms * d.reserved_term_steps / max(1, d.season_steps) * 24
        if plan.start_units > 0:
            text = (
                f"The plan for the next {horizon_h:g} hours (reserved {d.reserved_price:.4g} "
                f"vs on-demand {d.on_demand_price:.4g} per unit-step, forecast of the load per "
                f"hour) holds {plan.level_next:.4g} units from step "
                f"{self.observed.now + d.reserved_lead_steps}; {plan.held:g} are held "
                f"({plan.committed:g} inside their term), so reserve {{units:g}} more for "
                f"{d.reserved_term_steps} steps."
            )
            return self._buy(plan.start_units, "capacity.reserve-plan", text, numbers)
        if plan.release_units > 0:
            text = (
                f"The plan for the next {horizon_h:g} hours keeps fewer units than the "
                f"{plan.held:g} held ({plan.committed:g} inside their term): release "
                f"{{units:g}} whose minimum term has ended."
            )
            return self._release(
                self.have - plan.release_units, "capacity.release-plan", text, numbers
            )
        return []

    def _from_target(self, target: float) -> list[Action]:
        d = self.desired
        q = d.reserved_quantile()
        numbers = {"target": target, "quantile": q}
        if target > self.have + 1e-9:
            text = (
                f"Demand is expected above {target:g} units for at least {1 - q:.0%} of the "
                f"next {d.reserved_term_steps} steps, where reserved capacity (price "
                f"{d.reserved_price:.4g}/unit-step) beats on-demand ({d.on_demand_price:.4g}); "
                f"{self.have:g} units are reserved, so reserve {{units:g}} more."
            )
            return self._buy(target - self.have, "capacity.reserve-newsvendor", text, numbers)
        if target < self.have - d.unit + 1e-9:
            text = (
                f"Reserved capacity {self.have:g} is above the {q:.0%} quantile of expected "
                f"load ({target:g}); release {{units:g}} units whose minimum term has ended."
            )
            return self._release(target, "capacity.release-surplus", text, numbers)
        return []

    def _buy(self, want: float, rule: str, text: str, numbers: dict[str, float]) -> list[Action]:
        d, obs = self.desired, self.observed
        unit = d.unit
        term_cost = d.reserved_price * d.reserved_term_steps
        if want * term_cost > self.budget_left:
            want = math.floor(max(0.0, self.budget_left) / term_cost / unit) * unit
        if want < unit - 1e-9:
            return []
        alloc = spread_units(
            want,
            have=self.per_provider,
            cap=obs.cap,
            accepting=obs.accepting & self.healthy,
            total_after=self.have + want,
            max_share=self.mandate.max_provider_share,
            unit=unit,
        )
        bought = float(alloc.sum())
        if bought <= 0:
            return []
        before = self.have
        self.per_provider += alloc
        self.have += bought
        self.budget_left -= bought * term_cost
        reason = Reason.of(
            rule,
            text.format(units=bought),
            self.inputs,
            reserved_before=before,
            units=bought,
            **numbers,
        )
        return [
            Action.make(
                "capacity.procure",
                reason,
                contract="reserved",
                # One reservation waits for its veto window at a time (AgentLoop).
                intent="reserve",
                allocations=allocations(alloc),
                start=obs.now + d.reserved_lead_steps,
                term_steps=d.reserved_term_steps,
                unit_price=d.reserved_price,
                units=bought,
                cost=bought * term_cost,
            )
        ]

    def _release(
        self, keep: float, rule: str, text: str, numbers: dict[str, float]
    ) -> list[Action]:
        unit, now = self.desired.unit, self.observed.now
        surplus = self.have - keep
        released = 0.0
        # Oldest first, and only contracts whose minimum term is over by next step.
        for c in sorted(self.observed.contracts, key=lambda c: (c.start, c.id)):
            if surplus < unit - 1e-9:
                break
            if c.min_end > now + 1 or not self.healthy[c.provider]:
                continue
            take = min(c.units, math.floor(surplus / unit + 1e-9) * unit)
            if take > 0:
                self.releases[c.id] = take
                surplus -= take
                released += take
                self.per_provider[c.provider] -= take
        if not self.releases:
            return []
        before = self.have
        self.have -= released
        reason = Reason.of(
            rule,
            text.format(units=released),
            self.inputs,
            reserved_before=before,
            units=released,
            **numbers,
        )
        return [
            Action.make(
                "capacity.release",
                reason,
                intent="release",  # one release waits for its veto window at a time
                releases=list(self.releases.items()),
                units=released,
                at=now + 1,
            )
        ]


def _on_demand(
    observed: CapacityObserved,
    desired: CapacityDesired,
    mandate: MandateLimits,
    reserved: _Reserved,
    inputs_digest: dict[str, Any],
    *,
    ahead: StepAhead | None = None,
    low: float | None = None,
) -> Action | None:
    """Next step's on-demand order: what the queue's deadlines need beyond reserved, and
    when load cannot wait, the step-ahead bound on the next step's load beyond reserved."""
    now, unit, po = observed.now, desired.unit, desired.on_demand_price
    nxt = now + desired.on_demand_lead_steps
    reserved_next = 0.0
    for c in observed.contracts:
        if c.start <= nxt:
            units = c.units - reserved.releases.get(c.id, 0.0)
            reserved_next += units * float(observed.usable[c.provider])
    horizon = max(1, desired.sla_delay_steps - desired.margin_steps)
    due_by = [0.0] * (horizon + 1)
    for arrival, amount in observed.backlog:
        k = arrival + desired.sla_delay_steps - desired.margin_steps - now
        due_by[min(max(k, 1), horizon)] += amount
    due = due_by[1]
    # What the next step's deadline forces, in whole units (rounded up: it must be met).
    units_needed = math.ceil((due - reserved_next) / unit - 1e-9) * unit
    if desired.spread_on_demand:
        # The flattest rate that still meets every known deadline: for each horizon k,
        # the load due within k steps minus the reserved capacity of those k steps,
        # spread over k — in whole units rounded down, so that a fraction of a unit is
        # bought only when a deadline forces it. Buying these early keeps per-step orders
        # small, within provider caps, and leaves a step of slack when a provider fails.
        cumulative = 0.0
        for k in range(1, horizon + 1):
            cumulative += due_by[k]
            rate = (cumulative - reserved_next * k) / k
            units_needed = max(units_needed, math.floor(rate / unit + 1e-9) * unit)
    bound = 0.0
    if ahead is not None:
        bound = ahead.next
        units_needed = max(units_needed, math.ceil((bound - reserved_next) / unit - 1e-9) * unit)
    if low is not None:
        # Rounded down: the last lot is worth it only where the quantile says so.
        units_needed = max(units_needed, math.floor((low - reserved_next) / unit + 1e-9) * unit)
    if units_needed <= 0:
        return None
    if units_needed * po > reserved.budget_left:
        units_needed = math.floor(max(0.0, reserved.budget_left) / po / unit) * unit
    total_after = float(reserved.per_provider.sum()) + units_needed
    alloc = spread_units(
        units_needed,
        have=reserved.per_provider,
        cap=observed.cap,
        accepting=observed.accepting & reserved.healthy,
        total_after=total_after,
        max_share=mandate.max_provider_share,
        unit=unit,
    )
    bought = float(alloc.sum())
    if bought <= 0:
        return None
    if ahead is not None:
        rule = "capacity.on-demand-ahead"
        text = (
            f"Load cannot wait {desired.on_demand_lead_steps} step(s) for on-demand capacity "
            f"(SLA delay {desired.sla_delay_steps} steps): next step's load is expected below "
            f"{bound:.4g} units (a bound calibrated to leave {desired.unserved_target:.2%} of "
            f"recent load unserved) and reserved capacity then is {reserved_next:g}; buy "
            f"{bought:g} on-demand units for one step."
        )
    elif low is not None:
        rule = "capacity.on-demand-quantile"
        text = (
            f"Load waits for on-demand capacity ordered within its step, which serves "
            f"{desired.recourse_share:.0%} of a step for a whole step's price; ordered now, "
            f"a unit costs less wherever the load exceeds it with that probability: the "
            f"{desired.ahead_quantile():.0%} quantile of next step's load is {low:.4g} units "
            f"and reserved capacity then is {reserved_next:g}; buy {bought:g} on-demand "
            f"units for one step."
        )
    else:
        rule = "capacity.on-demand-just-in-time"
        text = (
            f"{due:g} units of queued load reach their {desired.sla_delay_steps}-step "
            f"deadline next step and reserved capacity then is {reserved_next:g}; buy "
            f"{bought:g} on-demand units for one step."
        )
    reason = Reason.of(
        rule,
        text,
        inputs_digest,
        due=due,
        bound=bound,
        low=low if low is not None else 0.0,
        reserved_next=reserved_next,
        units=bought,
    )
    return _one_step_on_demand(reason, alloc, nxt, po)
