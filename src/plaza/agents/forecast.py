"""Demand forecasting for capacity decisions: recency-weighted load with a daily profile.

The capacity reconciler does not need a point forecast of every step. It needs, for each
future hour, the *distribution* of the load per step — what share of the time demand
will exceed a given capacity level, and by how much on average — because that is what
decides whether a reserved unit pays for itself (newsvendor: a unit reserved for a term
pays off when it is busy more than ``price_reserved / price_on_demand`` of the time) and
how much on-demand capacity the rest will need.

The model is multiplicative: load = daily profile(hour of day) x level. The profile
(:func:`seasonal_profile`) is the median over the last days of each hour's mean divided
by that day's mean, so one anomalous day does not bend it; the level's distribution is
the recency-weighted empirical distribution of the deseasonalised recent load
(:func:`deseasonalise`, :class:`LoadDistribution`). Weighting recent hours lets a level
shift show within hours instead of after a full day; dividing out the profile keeps the
weighting from mistaking the time of day for a level shift (without it, every morning
looks like a drop, because the most recent hours were the night).

Holt-Winters (additive and multiplicative, daily and weekly seasons, the recursions of
statsmodels' ``ExponentialSmoothing``), a week-ago seasonal-naive forecast and
level-shift corrections were measured as point forecasts and did worse (see
docs/simulation.md, "Forecasting"): bursty social load breaks the seasonal state after
every spike. The profile here is robust to spikes (a median of ratios) and carries no
state.

Everything is closed-form over the window: a sort, cumulative sums and ``bincount``,
O(n log n) for ``n`` steps of history; :class:`LoadWindow` keeps the window in a ring
buffer so each step costs O(1) to observe.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from plaza.errors import InvalidInputError

FloatArray = NDArray[np.float64]


def decay_weights(n: int, half_life_steps: float) -> FloatArray:
    """Weights for ``n`` samples, oldest first, halving every ``half_life_steps``."""
    if n < 0 or half_life_steps <= 0:
        raise InvalidInputError("decay_weights needs n >= 0 and half_life_steps > 0")
    age = np.arange(n - 1, -1, -1, dtype=np.float64)
    return np.power(0.5, age / half_life_steps)


def weighted_quantile(values: FloatArray, q: float, half_life_steps: float | None = None) -> float:
    """The ``q``-quantile of ``values`` (oldest first), recent samples weighted more.

    With ``half_life_steps`` None every sample counts the same. Returns 0.0 for an
    empty window. The result is always one of the sample values (no interpolation), so
    it is never above the window's maximum.
    """
    if not 0.0 <= q <= 1.0:
        raise InvalidInputError(f"quantile {q} is not in [0, 1]")
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        return 0.0
    w = np.ones(x.size) if half_life_steps is None else decay_weights(x.size, half_life_steps)
    order = np.argsort(x, kind="stable")
    cw = np.cumsum(w[order])
    idx = int(np.searchsorted(cw, q * cw[-1], side="left"))
    return float(x[order][min(idx, x.size - 1)])


def block_of(steps: NDArray[np.int64], block_steps: int, blocks: int) -> NDArray[np.int64]:
    """The block of the season (hour of the day, by default) each absolute step falls in."""
    return (steps // block_steps) % blocks


def seasonal_profile(
    recent: FloatArray,
    now: int,
    *,
    season_steps: int,
    block_steps: int,
    days: int,
    min_days: int = 3,
) -> FloatArray:
    """Multiplicative load factors per block of the season, mean 1.

    ``recent`` ends at absolute step ``now``; blocks are counted from step 0, so block
    ``b`` of every season covers the same steps of the day. For each of the last
    ``days`` whole seasons in ``recent``, each block's mean load is divided by that
    season's mean; the profile is the median of these ratios over the seasons. With
    fewer than ``min_days`` seasons (a median of two is a mean, which one odd day can
    bend), or when the load is zero throughout, the profile is flat (all ones).
    """
    if season_steps < 1 or block_steps < 1 or season_steps % block_steps:
        raise InvalidInputError("season_steps must be a positive multiple of block_steps")
    blocks = season_steps // block_steps
    x = np.asarray(recent, dtype=np.float64)
    n_days = min(days, x.size // season_steps)
    if n_days < max(2, min_days):
        return np.ones(blocks)
    seg = x[x.size - n_days * season_steps :].reshape(n_days, season_steps)
    first = now - n_days * season_steps + 1
    steps = first + np.arange(season_steps, dtype=np.int64)
    # Every season starts at the same phase, so one block index row serves all of them.
    b = block_of(steps, block_steps, blocks)
    counts = np.bincount(b, minlength=blocks).astype(np.float64)
    ratios = []
    for day in seg:
        mean = float(day.mean())
        if mean <= 0.0:
            continue
        sums = np.bincount(b, weights=day, minlength=blocks)
        ratios.append(sums / np.maximum(counts, 1.0) / mean)
    if len(ratios) < max(2, min_days):
        return np.ones(blocks)
    profile = np.maximum(np.median(np.asarray(ratios), axis=0), 1e-3)
    out: FloatArray = profile / profile.mean()
    return out


def deseasonalise(
    recent: FloatArray, now: int, profile: FloatArray, block_steps: int
) -> FloatArray:
    """``recent`` (ending at step ``now``) divided by the profile factor of each step."""
    x = np.asarray(recent, dtype=np.float64)
    steps = now - x.size + 1 + np.arange(x.size, dtype=np.int64)
    out: FloatArray = x / profile[block_of(steps, block_steps, profile.size)]
    return out


@dataclass(frozen=True)
class LoadDistribution:
    """A weighted empirical distribution of load per step (sorted, with tail sums).

    ``values`` ascending; ``tail_weight[i]`` = P(X >= values[i]) and ``tail_mass[i]`` =
    E[X; X >= values[i]], each with a trailing 0 so that index ``n`` means "beyond the
    largest value".
    """

    values: FloatArray
    tail_weight: FloatArray
    tail_mass: FloatArray

    @classmethod
    def of(cls, values: FloatArray, weights: FloatArray | None = None) -> LoadDistribution:
        """The distribution of ``values`` with ``weights`` (default: equal)."""
        x = np.asarray(values, dtype=np.float64)
        if x.size == 0:
            raise InvalidInputError("a load distribution needs at least one value")
        w = np.ones(x.size) if weights is None else np.asarray(weights, dtype=np.float64)
        if w.shape != x.shape or (w < 0).any() or w.sum() <= 0:
            raise InvalidInputError("weights must be non-negative, not all zero, one per value")
        order = np.argsort(x, kind="stable")
        xs, ws = x[order], w[order] / w.sum()
        tail_w = np.concatenate([np.cumsum(ws[::-1])[::-1], [0.0]])
        tail_m = np.concatenate([np.cumsum((ws * xs)[::-1])[::-1], [0.0]])
        return cls(xs, tail_w, tail_m)

    @classmethod
    def recent(cls, values: FloatArray, half_life_steps: float | None) -> LoadDistribution:
        """The distribution of ``values`` (oldest first), recent ones weighted more."""
        x = np.asarray(values, dtype=np.float64)
        w = None if half_life_steps is None else decay_weights(x.size, half_life_steps)
        return cls.of(x, w)

    @property
    def max(self) -> float:
        return float(self.values[-1])

    def excess(self, level: FloatArray | float) -> FloatArray:
        """E[(X - level)^+], elementwise over ``level``."""
        y = np.asarray(level, dtype=np.float64)
        i = np.searchsorted(self.values, y, side="right")
        out: FloatArray = self.tail_mass[i] - y * self.tail_weight[i]
        return out

    def breakpoints(self, n: int) -> FloatArray:
        """0, about ``n`` weighted quantiles, and the maximum: where to cut the cost curve."""
        q = (np.arange(n) + 0.5) / n
        below = 1.0 - self.tail_weight[:-1]  # P(X < values[i])
        idx = np.minimum(np.searchsorted(below, q, side="right"), self.values.size - 1)
        pts = np.concatenate([[0.0], self.values[idx], [self.max]])
        out: FloatArray = np.unique(np.maximum(pts, 0.0))
        return out


def newsvendor_units(
    dist: LoadDistribution,
    threshold: float,
    unit: float,
    scales: FloatArray | None = None,
) -> int:
    """The most whole units worth reserving: each busy at least ``threshold`` of the time.

    Unit ``k`` (counted from 0) serves the load between ``k * unit`` and ``(k+1) * unit``;
    its use is ``E[clip(s X - k u, 0, u)] / u`` averaged over the profile factors ``s``
    in ``scales`` (the hours of the coming term; default one hour at factor 1). Use falls
    with ``k``, so a binary search finds the last unit used at least ``threshold``. For
    loads in whole units this is the ``1 - threshold`` quantile rule; for fractional
    loads it also counts the unit that a load of 1.8 fills 80% of the time.
    """
    if unit <= 0:
        raise InvalidInputError("unit must be > 0")
    s = np.ones(1) if scales is None else np.asarray(scales, dtype=np.float64)

    def use(k: int) -> float:
        lo = dist.excess(k * unit / s) * s
        hi = dist.excess((k + 1) * unit / s) * s
        return float(((lo - hi) / unit).mean())

    lo, hi = 0, math.ceil(dist.max * float(s.max()) / unit) + 1
    while lo < hi:
        k = (lo + hi) // 2
        if use(k) >= threshold:
            lo = k + 1
        else:
            hi = k
    return lo


class LoadWindow:
    """The last ``size`` load observations, oldest first, in a ring buffer."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise InvalidInputError("LoadWindow size must be >= 1")
        self._buf = np.zeros(size, dtype=np.float64)
        self._n = 0

    def observe(self, value: float) -> None:
        self._buf[self._n % self._buf.size] = value
        self._n += 1

    def __len__(self) -> int:
        return min(self._n, self._buf.size)

    def values(self) -> FloatArray:
        """A copy of the window, oldest first."""
        size = self._buf.size
        if self._n <= size:
            return self._buf[: self._n].copy()
        start = self._n % size
        return np.concatenate([self._buf[start:], self._buf[:start]])


def newsvendor_quantile(reserved_price: float, on_demand_price: float, term_steps: int) -> float:
    """The critical ratio of a reserved unit: the quantile of the load to reserve up to.

    A unit reserved for a term of ``term_steps`` costs ``reserved_price x term_steps``
    whatever happens (the overage cost of a step it is idle: ``reserved_price``); each
    step it is busy saves the ``on_demand_price`` that step would cost, net of its own
    price (the underage cost: ``on_demand_price - reserved_price``). The newsvendor
    reserves up to the quantile ``cu / (cu + co) = 1 - reserved_price /
    on_demand_price`` of the load over the term (0.6 at 1.0 against 2.5): the term's
    length cancels, as both costs accrue per step of it. Clipped to [0, 1]; 0 when
    on-demand is not dearer.
    """
    if reserved_price <= 0 or on_demand_price <= 0 or term_steps < 1:
        raise InvalidInputError("prices must be > 0 and the term at least one step")
    under = (on_demand_price - reserved_price) * term_steps
    over = reserved_price * term_steps
    return min(1.0, max(0.0, under / (under + over)))
