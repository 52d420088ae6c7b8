"""Synthetic demand series from a seed: daily and weekly cycles, trends and flash crowds.

The shipped traces have no strong daily cycle at coarse steps and none is synthetic, so
the capacity agent's test set (:mod:`plaza.sim.testset`) adds series drawn from a seed.
Series ``i`` of seed ``s`` is drawn from ``numpy.random.default_rng([s, i])`` alone, so
the same ``(seed, index)`` gives the same values on any machine, whatever else is drawn.

Each series is ``days`` days of 5-minute steps (the step of the shipped traces; coarser
steps are resampled from it), the product of:

- a *scale*: the mean load, log-uniform over four decades (0.5 to 5,000 units per step);
- a *daily cycle*: a raised cosine with a random peak hour and depth (the quiet hours at
  10% to 90% of the busy ones), sharpened by a random power so that some days have a
  narrow peak;
- a *weekly cycle*: the weekend at 40% to 100% of the weekdays;
- a *trend*: linear growth or decline, -50% to +150% over the series, with a level shift
  (a step of -40% to +80%) at a random day in one series of two;
- *flash crowds*: a few bursts a week, each rising to 2 to 15 times the load within
  minutes and decaying over 20 minutes to 6 hours;
- *noise*: Poisson arrivals around the mean (small series are sparse), times lognormal
  jitter.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
from numpy.typing import NDArray

from plaza.sim.errors import SimError
from plaza.sim.trace import Trace

#: The step of the synthetic series, as the shipped traces': 5 minutes.
STEP_SECONDS = 300


def synthetic_values(seed: int, index: int, *, days: int = 28) -> NDArray[np.float64]:
    """The load per 5-minute step of series ``index`` of ``seed`` (see the module doc)."""
    if days < 2 or days > 366:
        raise SimError(f"a synthetic series has 2 to 366 days, not {days}")
    if index < 0 or seed < 0:
        raise SimError("the seed and the series index must be >= 0")
    rng = np.random.default_rng([seed, index])
    per_day = 86_400 // STEP_SECONDS
    n = days * per_day
    t = np.arange(n, dtype=np.float64)
    day_phase = (t % per_day) / per_day
    scale = math.exp(rng.uniform(math.log(0.5), math.log(5000.0)))
    # Daily cycle: 1 at the peak hour, ``floor`` at the opposite hour.
    peak = rng.uniform(0.0, 1.0)
    floor = rng.uniform(0.1, 0.9)
    sharp = rng.uniform(1.0, 3.0)
    wave = ((1.0 + np.cos(2 * math.pi * (day_phase - peak))) / 2.0) ** sharp
    daily = floor + (1.0 - floor) * wave
    # Weekly cycle: days 5 and 6 of each week are the weekend.
    weekend = rng.uniform(0.4, 1.0)
    weekday = (t // per_day) % 7
    weekly = np.where(weekday >= 5, weekend, 1.0)
    # Trend, and a level shift in one series of two.
    growth = rng.uniform(-0.5, 1.5)
    trend = 1.0 + growth * t / n
    if rng.uniform() < 0.5:
        at = int(rng.uniform(0.3, 0.8) * n)
        trend[at:] *= 1.0 + rng.uniform(-0.4, 0.8)
    trend = np.maximum(trend, 0.05)
    shape = daily * weekly * trend
    mean = scale * shape / float(shape.mean())
    # Flash crowds: a few a week, fast rise, exponential decay.
    crowd = np.ones(n)
    for _ in range(rng.poisson(days * 3 / 7)):
        start = int(rng.integers(0, n))
        height = rng.uniform(2.0, 15.0)
        decay = rng.uniform(20.0, 360.0) * 60 / STEP_SECONDS
        rise = int(rng.integers(1, 4))
        ramp = np.linspace(1.0 / rise, 1.0, rise)
        tail = np.exp(-np.arange(int(decay * 6)) / decay)
        bump = (height - 1.0) * np.concatenate([ramp, tail])
        stop = min(n, start + bump.size)
        crowd[start:stop] += bump[: stop - start]
    rate = mean * crowd * rng.lognormal(0.0, 0.15, n)
    return rng.poisson(rate).astype(np.float64)


def synthetic_trace(seed: int, index: int, *, days: int = 28) -> Trace:
    """Series ``index`` of ``seed`` as a :class:`Trace` named ``synthetic-<seed>-<index>``."""
    return Trace(
        name=f"synthetic-{seed}-{index}",
        step_seconds=STEP_SECONDS,
        start=datetime(2026, 1, 5, tzinfo=UTC),  # a Monday
        values=synthetic_values(seed, index, days=days),
    )
