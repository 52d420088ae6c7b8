"""Capacity for load that cannot wait: a calibrated bound on the next step's load.

When the SLA delay is shorter than the on-demand lead time (30-minute steps and a
15-minute SLA: a delay of 0 steps, and on-demand capacity arrives a step after it is
ordered), the capacity that serves a step must be ordered before its load is seen. Then
the question is not the expected load but a level the load stays under almost always:
what is above it is unserved.

:func:`step_ahead` answers with a calibrated bound. The predictor of step ``s + 1`` is
``m_s = max(y_s, ewma(y)_s)`` on the deseasonalised load ``y`` (the last step, or the
smoothed level if the last step was a dip), put back on the profile of step ``s + 1``,
plus a floor of a tenth of the mean load (so that a sparse series is not predicted to be
empty). The bound is ``alpha`` times the predictor, with ``alpha`` the smallest factor
whose bound would have left at most ``unserved`` of the load of the history unserved
(recency-weighted: a quarter of the weight on the last day by default), found by bisection
on the convex, decreasing shortfall ``sum_s w_s (x_{s+1} - alpha d_s)^+``. Errors that
grow raise the shortfall of recent steps and with it ``alpha``: the bound adapts online,
and relaxes again as the errors shrink. Pure: everything is computed from the history.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.signal import lfilter

from plaza.agents.forecast import block_of, decay_weights, weighted_quantile
from plaza.errors import InvalidInputError

FloatArray = NDArray[np.float64]

#: The predictor's floor, as a share of the history's mean load.
FLOOR_SHARE = 0.1


def ewma(x: FloatArray, half_life_steps: float) -> FloatArray:
    """The exponentially weighted moving mean of ``x`` (oldest first), starting at ``x[0]``."""
    if half_life_steps <= 0:
        raise InvalidInputError("half_life_steps must be > 0")
    x = np.asarray(x, dtype=np.float64)
    if x.size == 0:
        return x.copy()
    a = 1.0 - 0.5 ** (1.0 / half_life_steps)
    out, _ = lfilter([a], [1.0, a - 1.0], x, zi=np.array([(1.0 - a) * x[0]]))
    result: FloatArray = np.asarray(out, dtype=np.float64)
    return result


def calibrate(
    actual: FloatArray, predicted: FloatArray, weights: FloatArray, share: float
) -> float:
    """The smallest ``alpha`` with ``sum w (actual - alpha predicted)^+ <= share sum w actual``.

    ``predicted`` must be > 0. Returns 1.0 when there is no load to calibrate on.
    """
    x = np.asarray(actual, dtype=np.float64)
    d = np.asarray(predicted, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    if not (x.shape == d.shape == w.shape) or (d <= 0).any():
        raise InvalidInputError("calibrate: one positive prediction and weight per value")
    allowed = share * float((w * x).sum())
    if allowed <= 0 and not (x > 0).any():
        return 1.0
    lo, hi = 0.0, float((x / d).max()) if x.size else 1.0
    for _ in range(40):
        mid = (lo + hi) / 2
        if float((w * np.maximum(x - mid * d, 0.0)).sum()) <= allowed:
            hi = mid
        else:
            lo = mid
    return hi


@dataclass(frozen=True)
class StepAhead:
    """The calibrated bound: ``bounds[i]`` is what step ``i + 1`` of the history would
    have been given (``bounds[-1]`` is for the step after ``now``); ``alpha`` the factor."""

    alpha: float
    bounds: FloatArray

    @property
    def next(self) -> float:
        return float(self.bounds[-1])


def _predictor(
    recent: FloatArray, now: int, profile: FloatArray, block_steps: int, smooth_steps: float
) -> tuple[FloatArray, FloatArray]:
    """The load (as floats) and the predictor of each next step (one more than the load)."""
    x = np.asarray(recent, dtype=np.float64)
    if x.size < 2:
        raise InvalidInputError("step_ahead needs at least two steps of history")
    steps = now - x.size + 1 + np.arange(x.size + 1, dtype=np.int64)
    season = profile[block_of(steps, block_steps, profile.size)]
    y = x / season[:-1]
    level = np.maximum(y, ewma(y, smooth_steps))
    floor = FLOOR_SHARE * float(x.mean())
    pred: FloatArray = level * season[1:] + max(floor, 1e-9)
    return x, pred


def step_quantile(
    recent: FloatArray,
    now: int,
    profile: FloatArray,
    block_steps: int,
    *,
    q: float,
    half_life_steps: float,
    smooth_steps: float = 6.0,
) -> float:
    """The ``q``-quantile of the next step's load: the predictor above times the
    recency-weighted ``q``-quantile of the ratios of each past step's load to its
    prediction (a quantile forecast calibrated on the history alone; the ratios of the
    last ``half_life_steps`` weigh half, so it follows errors as they grow or shrink)."""
    if not 0.0 <= q <= 1.0:
        raise InvalidInputError(f"quantile {q} is not in [0, 1]")
    x, pred = _predictor(recent, now, profile, block_steps, smooth_steps)
    ratios = x[1:] / pred[:-1]
    return weighted_quantile(ratios, q, half_life_steps) * float(pred[-1])


def step_ahead(
    recent: FloatArray,
    now: int,
    profile: FloatArray,
    block_steps: int,
    *,
    unserved: float,
    half_life_steps: float,
    smooth_steps: float = 6.0,
) -> StepAhead:
    """The bound on each next step's load over ``recent`` (ending at ``now``; see above)."""
    x, pred = _predictor(recent, now, profile, block_steps, smooth_steps)
    w = decay_weights(x.size - 1, half_life_steps)
    alpha = calibrate(x[1:], pred[:-1], w, unserved)
    return StepAhead(alpha, alpha * pred)
