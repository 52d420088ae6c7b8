"""The oracle: the cheapest capacity plan with perfect foresight, as a linear program.

Variables per step ``t`` (``T`` steps, the trace plus ``D`` empty steps to drain the queue):
reserved level ``R_t``, reserved starts ``s_t``, cumulative starts ``W_t``, on-demand
``O_t``, load served ``S_t`` and backlog ``Q_t`` (all >= 0). With ``M`` the reserved
minimum term, ``D`` the SLA delay, ``L_r``/``L_o`` the lead times and ``a_t`` the load::

    minimise  sum_t p_r R_t + p_o O_t  +  sum_{t > T-M} p_r (t + M - T) s_t
    s.t.      R_t <= R_{t-1} + s_t                 (reserved grows only by starting units)
              R_t >= W_t - W_{t-M}                 (units started < M steps ago still run)
              W_t  = W_{t-1} + s_t
              S_t <= R_t + O_t                     (serve at most the capacity)
              Q_t  = Q_{t-1} + a_t - S_t           (FIFO backlog)
              Q_t <= a_{t-D+1} + ... + a_t         (nothing waits longer than D steps)
              Q_{T-1} = 0,  s_t = 0 for t < L_r,  O_t = 0 for t < L_o

With on-demand recourse (``recourse_share`` > 0: capacity ordered within a step serves
that share of it, for a whole step's price), ``O_t`` for ``t < L_o`` is recourse, priced
``p_o / recourse_share`` per unit served, and ``L_o`` counts as 0 below. Load that
arrives before ``min(L_r, L_o) - D`` cannot be served by any policy (no
capacity arrives before its deadline); the LP drops it (``a_t = 0`` there) rather than
being infeasible.

The second constraint with FIFO retirement is exactly "every unit runs at least M steps":
ending the oldest units first, a decrease is allowed iff the units started in the last M
steps remain. The last term bills the rest of the term of units still running at the end,
as the simulator does. Capacity is continuous here (the relaxation of whole units), so the
optimum is a lower bound on the cost of any policy at zero unserved load, under the same
contract rules. The LP is homogeneous in the load (scale ``a`` and every variable scales
with it), so it is solved on the load divided by its mean and the plan multiplied back:
on a trace of bytes (means of millions) the unscaled LP took HiGHS minutes or past its
time limit, the scaled one seconds, at the same cost. HiGHS (interior point) solves a
55-day, 5-minute trace (about 95,000 variables) in under a minute.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from scipy.optimize import Bounds, LinearConstraint, linprog, milp

from plaza.sim.errors import SimError


@dataclass(frozen=True)
class OraclePlan:
    """The optimal plan: per-step reserved level, starts, on-demand units, and its cost."""

    reserved: NDArray[np.float64]
    starts: NDArray[np.float64]
    on_demand: NDArray[np.float64]
    cost: float
    seconds: float
    #: A lower bound on the optimum: ``cost`` for the LP; the MILP's dual bound when
    #: ``whole_units`` (its ``cost`` is then the best plan found within the time limit).
    bound: float = math.nan


def solve_oracle(
    load: NDArray[np.float64],
    *,
    term: int,
    delay: int,
    reserved_lead: int,
    on_demand_lead: int,
    reserved_price: float,
    on_demand_price: float,
    time_limit_s: float = 900.0,
    whole_units: bool = False,
    recourse_share: float = 0.0,
) -> OraclePlan:
    """Solve the LP above for ``load`` (per step); prices are per unit-step.

    With ``whole_units`` the reserved level, starts and on-demand units are integers (a
    MILP, HiGHS branch and bound): the optimum in the simulator's default unit of 1.
    It is exact only on short traces; on long ones it stops at ``time_limit_s`` with the
    best plan found and a lower bound (``bound``).
    """
    import time

    a = np.concatenate([np.asarray(load, dtype=np.float64), np.zeros(delay)])
    # On-demand recourse (ordered within a step, serving ``recourse_share`` of it for a
    # whole step's price) is dominated by on-demand ordered ahead, which the oracle can
    # always order, except in the steps before the on-demand lead time: there it is the
    # only on-demand capacity, at ``p_o / recourse_share`` per unit served.
    first_od = 0 if recourse_share > 0 else on_demand_lead
    # Load whose deadline passes before any capacity can arrive is unserved for every
    # policy (with a delay of 0 steps and no recourse, the first step's load): the plan
    # leaves it out.
    a[: max(0, min(first_od, reserved_lead) - delay)] = 0.0
    # Whole units fix the scale; the LP is solved on load of mean 1 (see the module doc).
    scale = 1.0 if whole_units or not a.any() else float(a.mean())
    a = a / scale
    T = a.size
    t = np.arange(T)
    tm = t[1:]
    one = np.ones(T)
    R, S_, W, OD, S, Q = (k * T for k in range(6))
    n = 6 * T

    def mat(
        vals: list[NDArray[np.float64]],
        rows: list[NDArray[np.int64]],
        cols: list[NDArray[np.int64]],
    ) -> sp.csr_matrix:
        return sp.csr_matrix(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(T, n)
        )

    tM = t[term:]
    a_ub = sp.vstack(
        [
            mat([one, -one, -np.ones(T - 1)], [t, t, tm], [R + t, S_ + t, R + tm - 1]),
            mat([-one, one, -np.ones(tM.size)], [t, t, tM], [R + t, W + t, W + tM - term]),
            mat([one, -one, -one], [t, t, t], [S + t, R + t, OD + t]),
        ]
    ).tocsr()
    a_eq = sp.vstack(
        [
            mat([one, -np.ones(T - 1), -one], [t, tm, t], [W + t, W + tm - 1, S_ + t]),
            mat([one, -np.ones(T - 1), one], [t, tm, t], [Q + t, Q + tm - 1, S + t]),
        ]
    ).tocsr()
    c = np.zeros(n)
    c[R : R + T] = reserved_price
    c[OD : OD + T] = on_demand_price
    tail = t[max(0, T - term) :]
    c[S_ + tail] += reserved_price * (tail + term - T)
    cs = np.cumsum(a)
    window = cs - np.concatenate([np.zeros(delay), cs[:-delay]]) if delay > 0 else np.zeros(T)
    bounds = np.zeros((n, 2))
    bounds[:, 1] = np.inf
    bounds[S_ : S_ + min(reserved_lead, T), 1] = 0
    if recourse_share > 0:
        c[OD : OD + min(on_demand_lead, T)] = on_demand_price / recourse_share
    else:
        bounds[OD : OD + min(on_demand_lead, T), 1] = 0
    bounds[Q : Q + T, 1] = window
    bounds[Q + T - 1, 1] = 0
    started = time.perf_counter()
    if whole_units:
        return _solve_whole(
            c,
            a_ub=a_ub,
            a_eq=a_eq,
            load=a,
            bounds=bounds,
            T=T,
            time_limit_s=time_limit_s,
            started=started,
        )
    res = linprog(
        c,
        A_ub=a_ub,
        b_ub=np.zeros(3 * T),
        A_eq=a_eq,
        b_eq=np.concatenate([np.zeros(T), a]),
        bounds=bounds,
        method="highs-ipm",
        options={"time_limit": time_limit_s},
    )
    seconds = time.perf_counter() - started
    if res.status != 0 or res.x is None:
        raise SimError(f"the oracle LP did not solve: {res.message}")
    x = np.maximum(res.x, 0.0) * scale
    return OraclePlan(
        reserved=x[R : R + T],
        starts=x[S_ : S_ + T],
        on_demand=x[OD : OD + T],
        cost=float(res.fun) * scale,
        seconds=seconds,
        bound=float(res.fun) * scale,
    )


def _solve_whole(
    c: NDArray[np.float64],
    *,
    a_ub: sp.csr_matrix,
    a_eq: sp.csr_matrix,
    load: NDArray[np.float64],
    bounds: NDArray[np.float64],
    T: int,
    time_limit_s: float,
    started: float,
) -> OraclePlan:
    import time

    integral = np.zeros(c.size)
    integral[: 4 * T] = 1  # R, s, W, O; the load served and the backlog stay fluid
    b_eq = np.concatenate([np.zeros(T), load])
    res = milp(
        c,
        constraints=[
            LinearConstraint(a_ub, -np.inf, np.zeros(3 * T)),
            LinearConstraint(a_eq, b_eq, b_eq),
        ],
        bounds=Bounds(bounds[:, 0], bounds[:, 1]),
        integrality=integral,
        options={"time_limit": time_limit_s},
    )
    seconds = time.perf_counter() - started
    if res.x is None:
        raise SimError(f"the whole-unit oracle found no plan: {res.message}")
    x = np.maximum(np.round(res.x[: 4 * T]), 0.0)
    R, S_, OD = 0, T, 3 * T
    return OraclePlan(
        reserved=x[R : R + T],
        starts=x[S_ : S_ + T],
        on_demand=x[OD : OD + T],
        cost=float(res.fun),
        seconds=seconds,
        bound=float(getattr(res, "mip_dual_bound", math.nan)),
    )
