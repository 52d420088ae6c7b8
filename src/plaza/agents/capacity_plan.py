"""The reserved-capacity plan: a small linear program over the next day and a half, hourly.

Theory of operation. A reserved unit is paid for at least a whole term (24 h by
default) from the moment it starts, and may be released in any step after that. Buying
one when demand rises is therefore not a bet on the next 24 hours alone: when demand falls
again, an *older* unit whose term is over can be released instead, so the new unit takes
its place in the fleet. Staggered like this — a ladder of terms started at different
hours — committed capacity can follow a daily cycle (up to about 2:1 between the busy and
the quiet half of the day) at reserved prices. A rule that judges each unit on its own
cannot see that; a plan over the whole fleet can.

So, at the start of every block (an hour by default), :func:`plan_reserved` solves a
linear program over the next term and a half — a new unit's term and the half day after,
when the ladder would release it — in blocks ``b = 0 .. B-1``, block ``b`` covering
steps ``now + 1 + b G .. now + (b+1) G``:

- ``X_b`` units of the contracts already held (``C_b <= X_b <= A_b``: ``A_b`` those
  started by the block, ``C_b`` those still inside their minimum term; released units do
  not come back: ``X_b - X_{b-1} <= A_b - A_{b-1}``);
- ``y_b`` units started in block ``b`` (none before the lead time allows) and ``N_b``
  those still running: ``N_b <= N_{b-1} + y_b`` and ``y_{b-M+1} + ... + y_b <= N_b``
  (a unit runs at least its term of ``M`` blocks) — the oracle's constraints
  (:mod:`plaza.sim.oracle`);
- the load per step in block ``b`` is ``s_b X``: the block's daily profile factor times
  the recency-weighted distribution of the deseasonalised recent load
  (:mod:`plaza.agents.forecast`). The expected on-demand need ``E[(s_b X - R)^+]`` is
  convex and piecewise linear in the reserved level ``R``; the level is cut into
  segments ``z_{b,m}`` between breakpoints (weighted quantiles of ``X``), each saving
  ``p_o`` times the chord slope of the curve per unit-step, steepest first, so the LP
  fills them in order: ``X_b + N_b = sum_m z_{b,m}``.

It minimises ``sum_b G (p_r (X_b + N_b) - p_o sum_m slope_m z_{b,m})`` — reserved cost
minus the on-demand cost it saves — plus a small cost per unit started, so that between
equally cheap plans it keeps units it may release at any time rather than swapping them
for units committed for a term. Only the first decisions are used: the units to start now
(``y`` of the first block the lead time reaches, rounded to whichever neighbouring whole
number costs less on the exact forecast over the new units' term) and the units to
release now (``A_0 - X_0``, rounded down, only from contracts past their term). The rest
of the plan is re-made an hour later with an hour more of history. Whatever the plan,
on-demand capacity still covers the load that is actually queued
(:mod:`plaza.agents.capacity`).

Loads are divided by a scale (the largest forecast load) before solving so that the LP is
well conditioned whether a unit is a request or a gigabyte. HiGHS (dual simplex, through
``scipy.optimize.linprog``, no presolve) solves the default problem — 37 blocks, about 800
variables — in a few milliseconds, and the same inputs always give the same plan.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from scipy.optimize import linprog

from plaza.agents.forecast import LoadDistribution
from plaza.errors import InvalidInputError

FloatArray = NDArray[np.float64]

#: A small cost per unit started, so that among equally cheap plans the LP keeps the
#: units it holds (free to release at any time) rather than starting new ones (committed
#: for a term). Relative to a unit-block of reserved capacity; large enough to clear the
#: solver's tolerances, far too small to change a plan that is cheaper by a unit-block.
_START_TIE_BREAK = 1e-4


@dataclass(frozen=True)
class PlanProblem:
    """Everything :func:`plan_reserved` needs, in steps, units and prices per unit-step.

    ``distribution`` is the forecast of the deseasonalised load per step; ``scales[b]``
    is block ``b``'s profile factor (the load per step in block ``b`` is ``scales[b]``
    times a draw from ``distribution``); ``contracts`` are ``(units, start, min_end)``
    of the healthy reserved contracts held (started or pending).
    """

    now: int
    block_steps: int
    blocks: int
    term_steps: int
    lead_steps: int
    reserved_price: float
    on_demand_price: float
    unit: float
    distribution: LoadDistribution
    scales: FloatArray
    contracts: tuple[tuple[float, int, int], ...]
    breakpoints: int = 16

    def __post_init__(self) -> None:
        checks = [
            (self.block_steps >= 1, "block_steps must be >= 1"),
            (self.term_steps >= 1 and self.lead_steps >= 0, "term >= 1 and lead >= 0 steps"),
            (self.blocks > self.first_start, "the horizon must reach past the lead time"),
            (self.scales.shape == (self.blocks,), "one profile factor per block"),
            (bool((self.scales > 0).all()), "profile factors must be > 0"),
            (self.reserved_price > 0 and self.on_demand_price > 0, "prices must be > 0"),
            (self.unit > 0 and self.breakpoints >= 1, "unit > 0 and breakpoints >= 1"),
        ]
        for ok, message in checks:
            if not ok:
                raise InvalidInputError(f"capacity plan: {message}")

    @property
    def term_blocks(self) -> int:
        """The reserved term in whole blocks (at least one)."""
        return max(1, round(self.term_steps / self.block_steps))

    @property
    def first_start(self) -> int:
        """The first block a unit bought now serves in full (the lead time is over)."""
        return max(0, math.ceil((self.lead_steps - 1) / self.block_steps))


@dataclass(frozen=True)
class ReservedPlan:
    """The plan's first decisions and the numbers behind them.

    ``start_units`` whole units to start now (arriving after the lead time);
    ``release_units`` whole units to release now (from contracts past their term).
    ``held``/``committed`` are the units held and still inside their term in the first
    block; ``level_next`` the planned reserved level when new units arrive;
    ``expected_cost`` the plan's cost over the horizon (reserved plus expected
    on-demand); ``solved`` False when the LP failed (then nothing changes).
    """

    start_units: float
    release_units: float
    held: float
    committed: float
    level_next: float
    expected_cost: float
    blocks: int
    solved: bool
    status: str


def _held_by_block(problem: PlanProblem) -> tuple[FloatArray, FloatArray]:
    """Units held (started by the block) and committed (and inside their term), per block."""
    first = problem.now + 1 + problem.block_steps * np.arange(problem.blocks)
    held = np.zeros(problem.blocks)
    committed = np.zeros(problem.blocks)
    for units, start, min_end in problem.contracts:
        present = start <= first
        held += units * present
        committed += units * (present & (min_end > first))
    return held, committed


@dataclass(frozen=True)
class _Lp:
    cost: FloatArray
    a_ub: sp.csr_matrix
    b_ub: FloatArray
    a_eq: sp.csr_matrix
    bounds: FloatArray


# Column blocks of the LP, each ``B`` wide: kept units, starts, new units running; then
# the ``B x S`` segments of the reserved level.
_X, _Y, _N, _Z = 0, 1, 2, 3


def _build(
    problem: PlanProblem,
    *,
    held: FloatArray,
    committed: FloatArray,
    slopes: FloatArray,
    widths: FloatArray,
    scale: float,
) -> _Lp:
    B, S, G, M = problem.blocks, slopes.size, problem.block_steps, problem.term_blocks
    X, Y, N, Z = _X * B, _Y * B, _N * B, _Z * B
    n = 3 * B + B * S
    b = np.arange(B)
    b1 = b[1:]
    # X_b + N_b - sum_m z_bm = 0: the level, cut into its segments.
    a_eq = sp.csr_matrix(
        (
            np.concatenate([np.ones(2 * B), -np.ones(B * S)]),
            (
                np.concatenate([b, b, np.repeat(b, S)]),
                np.concatenate([X + b, N + b, Z + np.arange(B * S)]),
            ),
        ),
        shape=(B, n),
    )
    # X_b - X_{b-1} <= A_b - A_{b-1} (released units do not come back);
    # N_b - N_{b-1} - y_b <= 0 (new units only by starting them);
    # y_{b-M+1} + ... + y_b - N_b <= 0 (a unit runs at least its term).
    run_rows = np.repeat(b, M)
    run_cols = (b[:, None] - np.arange(M)[None, :]).ravel()
    ok = run_cols >= 0
    r1, r2 = B - 1, 2 * B - 1
    rows = [b1 - 1, b1 - 1, r1 + b, r1 + b, r1 + b1, r2 + run_rows[ok], r2 + b]
    cols = [X + b1, X + b1 - 1, N + b, Y + b, N + b1 - 1, Y + run_cols[ok], N + b]
    vals = [
        np.ones(B - 1),
        -np.ones(B - 1),
        np.ones(B),
        -np.ones(B),
        -np.ones(B - 1),
        np.ones(int(ok.sum())),
        -np.ones(B),
    ]
    a_ub = sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(3 * B - 1, n),
    )
    b_ub = np.concatenate([np.diff(held) / scale, np.zeros(2 * B)])
    pr, po = problem.reserved_price, problem.on_demand_price
    cost = np.zeros(n)
    cost[X : X + B] = pr * G
    cost[N : N + B] = pr * G
    cost[Y : Y + B] = _START_TIE_BREAK * pr * G
    cost[Z:] = -po * G * np.tile(slopes, B)
    bounds = np.zeros((n, 2))
    bounds[:, 1] = np.inf
    bounds[X : X + B, 0] = committed / scale
    bounds[X : X + B, 1] = held / scale
    bounds[Y : Y + problem.first_start, 1] = 0.0
    bounds[Z:, 1] = (problem.scales[:, None] * widths[None, :]).ravel() / scale
    return _Lp(cost, a_ub, b_ub, a_eq, bounds)


def _whole_units(
    problem: PlanProblem, start: float, level: FloatArray, scales: FloatArray
) -> float:
    """Round the plan's fractional start to the cheaper neighbouring whole number of units.

    The plan's level moves by the rounding for the new units' term; each choice is priced
    on the exact forecast (not the LP's piecewise-linear cut of it): reserved cost plus
    the expected on-demand need it leaves, over those blocks.
    """
    unit, G = problem.unit, problem.block_steps
    lo = math.floor(start / unit + 1e-9) * unit
    if start - lo <= 1e-9 * max(1.0, unit):
        return lo
    dist = problem.distribution

    def cost(units: float) -> float:
        r = np.maximum(level + (units - start), 0.0)
        expected_od = scales * dist.excess(r / scales)
        return float(G * (problem.reserved_price * r + problem.on_demand_price * expected_od).sum())

    hi = lo + unit
    return hi if cost(hi) < cost(lo) else lo


def plan_reserved(problem: PlanProblem) -> ReservedPlan:
    """Solve the plan (see the module docstring) and return its first decisions."""
    B, G = problem.blocks, problem.block_steps
    held, committed = _held_by_block(problem)
    dist = problem.distribution
    # Work in units of the largest load so that the LP is well conditioned.
    scale = max(dist.max * float(problem.scales.max()), float(held.max()), problem.unit)

    pts = dist.breakpoints(problem.breakpoints)
    exc = dist.excess(pts)
    # Saving per unit of reserved level on each segment (the chord of E[(X - r)^+]),
    # then a last segment with no saving for levels above the largest load.
    slopes = np.concatenate([(exc[:-1] - exc[1:]) / np.diff(pts), [0.0]])
    widths = np.concatenate([np.diff(pts), [np.inf]])
    lp = _build(problem, held=held, committed=committed, slopes=slopes, widths=widths, scale=scale)
    res = linprog(
        lp.cost,
        A_ub=lp.a_ub,
        b_ub=lp.b_ub,
        A_eq=lp.a_eq,
        b_eq=np.zeros(B),
        bounds=lp.bounds,
        method="highs-ds",
        # Presolve costs more than it saves on a problem this small.
        options={"presolve": False},
    )
    if res.status != 0 or res.x is None:
        h0, c0 = float(held[0]), float(committed[0])
        return ReservedPlan(0.0, 0.0, h0, c0, h0, math.nan, B, False, str(res.message))
    x = res.x * scale
    level = x[_X * B : _X * B + B] + x[_N * B : _N * B + B]
    first = problem.first_start
    planned = float(x[_Y * B + first])
    term = slice(first, min(B, first + problem.term_blocks))
    starts = _whole_units(problem, planned, level[term], problem.scales[term])
    release = 0.0
    if starts <= 0:
        release = max(0.0, math.floor((held[0] - x[_X * B]) / problem.unit + 1e-6) * problem.unit)
    # The objective leaves out a constant: on-demand for all the load, at the forecast.
    everything_on_demand = (
        problem.on_demand_price * G * float(dist.excess(0.0)) * problem.scales.sum()
    )
    return ReservedPlan(
        start_units=float(starts),
        release_units=float(release),
        held=float(held[0]),
        committed=float(committed[0]),
        level_next=float(level[first] + starts - planned),
        expected_cost=float(res.fun) * scale + everything_on_demand,
        blocks=B,
        solved=True,
        status="optimal",
    )
