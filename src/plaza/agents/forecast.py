"""Demand forecasting for capacity decisions: a recency-weighted empirical quantile.

The capacity reconciler needs one number per decision: the load level that demand is
expected to exceed for a given share of the next reserved term (newsvendor: a unit
reserved for one term pays off when it is busy more than ``price_reserved /
price_on_demand`` of the time). It does not need a point forecast of every step.

Holt-Winters (additive and multiplicative, daily and weekly seasons, the recursions of
statsmodels' ``ExponentialSmoothing``), a week-ago seasonal-naive forecast and
level-shift corrections were measured against this estimator on the developer traces and
did worse (see docs/simulation.md, "Forecasting"): bursty social load breaks the
seasonal state after every spike, and a reserved term spans a whole daily cycle, so the
phase of the season matters less than the level. What does help is weighting recent
hours more, so that a level shift shows up within hours instead of after a full day.

:func:`weighted_quantile` is closed-form (sort + cumulative weights), O(n log n) for a
window of ``n`` steps; :class:`LoadWindow` keeps the window in a ring buffer so each step
costs O(1) to observe.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from plaza.errors import InvalidInputError


def decay_weights(n: int, half_life_steps: float) -> NDArray[np.float64]:
    """Weights for ``n`` samples, oldest first, halving every ``half_life_steps``."""
    if n < 0 or half_life_steps <= 0:
        raise InvalidInputError("decay_weights needs n >= 0 and half_life_steps > 0")
    age = np.arange(n - 1, -1, -1, dtype=np.float64)
    return np.power(0.5, age / half_life_steps)


def weighted_quantile(
    values: NDArray[np.float64], q: float, half_life_steps: float | None = None
) -> float:
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

    def values(self) -> NDArray[np.float64]:
        """A copy of the window, oldest first."""
        size = self._buf.size
        if self._n <= size:
            return self._buf[: self._n].copy()
        start = self._n % size
        return np.concatenate([self._buf[start:], self._buf[:start]])
