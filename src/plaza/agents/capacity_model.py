"""What the capacity reconciler observes and wants: contracts, the snapshot, the rules.

:class:`CapacityObserved` is one step's snapshot (recent load, the queue, the contracts,
the providers); :class:`CapacityDesired` the contract rules and service targets, in steps
and prices per unit-step, so that the same reconciler runs at any step size
(:mod:`plaza.agents.capacity`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from plaza.agents.forecast import newsvendor_quantile

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
    #: The share of a step that on-demand capacity ordered within it serves (0: none
    #: arrives within the step; see :func:`plaza.agents.capacity.decide_recourse`).
    recourse_share: float = 0.0
    #: Serve due load this many steps before its deadline (slack kept for faults).
    margin_steps: int = 0
    #: Spread on-demand purchases over the steps before the deadline (False: buy only
    #: what the next step's deadline forces).
    spread_on_demand: bool = True
    #: Recency weighting of the load window (None: flat window).
    half_life_steps: float | None = 72.0
    #: Steps of recent load the level distribution is drawn from (two terms).
    window_steps: int = 576
    #: Override of the newsvendor quantile ``1 - p_r/p_o`` (the ``newsvendor`` rule).
    quantile: float | None = None
    #: How reserved capacity is decided: ``"lp"`` (the rolling plan) or
    #: ``"newsvendor"`` (the level rule alone).
    planner: str = "lp"
    #: Steps in a day (288 five-minute steps): the blocks of the plan are its 24th parts.
    season_steps: int = 288
    #: Seasons the load is tested for, in days (a day and a week); the profile is the
    #: detected one's (:mod:`plaza.agents.seasonality`), flat if none is found.
    season_candidates_days: tuple[int, ...] = (1, 7)
    #: Seasons of history the profile is the median over (at most).
    season_days: int = 7
    #: The share of the load that may go unserved when load cannot wait for on-demand
    #: capacity (SLA delay shorter than its lead): the step-ahead bound's calibration.
    unserved_target: float = 0.001
    #: The plan's horizon, in reserved terms: a new unit's term and half a term after.
    plan_horizon_terms: float = 1.5
    #: Quantile breakpoints of the plan's on-demand cost curve.
    plan_breakpoints: int = 16
    extra: dict[str, float] = field(default_factory=dict, compare=False)

    def reserved_quantile(self) -> float:
        if self.quantile is not None:
            return self.quantile
        return newsvendor_quantile(
            self.reserved_price, self.on_demand_price, self.reserved_term_steps
        )

    def load_cannot_wait(self) -> bool:
        """True when on-demand capacity ordered after load arrives lands past its deadline
        (the SLA delay is shorter than the lead in steps, and no recourse within a step)."""
        return self.sla_delay_steps < self.on_demand_lead_steps and self.recourse_share <= 0

    def ahead_quantile(self) -> float | None:
        """When load waits for recourse only (an SLA delay of 0 steps): the quantile of
        the next step's load worth ordering on demand ahead. An ahead unit costs ``p_o``
        for sure; used, it saves recourse's ``p_o / share``: worth it while the load
        exceeds it with probability at least ``share`` (newsvendor), so up to the
        ``1 - share`` quantile. None otherwise."""
        if self.sla_delay_steps < self.on_demand_lead_steps and self.recourse_share > 0:
            return 1.0 - self.recourse_share
        return None

    def plan_on_demand_price(self) -> float:
        """What a unit-step of load above reserved capacity costs on demand: the price,
        or, when only recourse within the step can serve it, the price over its share."""
        if self.sla_delay_steps < self.on_demand_lead_steps and self.recourse_share > 0:
            return self.on_demand_price / self.recourse_share
        return self.on_demand_price

    def block_steps(self) -> int:
        """Steps per plan block: an hour (the largest divisor of the season <= 1/24 of it)."""
        b = max(1, self.season_steps // 24)
        while self.season_steps % b:
            b -= 1
        return b

    def history_steps(self) -> int:
        """How much load history :func:`decide` uses (the observer should keep as much):
        the level's window, the profile's days, and three of the longest season tested."""
        longest = max(self.season_candidates_days, default=1)
        return max(
            self.window_steps,
            self.season_days * self.season_steps,
            3 * longest * self.season_steps,
        )
