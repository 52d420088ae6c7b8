"""The capacity reconciler's forecast: season, profile, level distribution, bound.

:func:`forecast` detects the season of the recent load (:mod:`plaza.agents.seasonality`),
builds its profile (:func:`plaza.agents.forecast.seasonal_profile`, flat without a
season), and the recency-weighted distribution of the level the reserved plan covers:
the load as the queue smooths it when load may wait for on-demand capacity, the
calibrated step-ahead bound (:mod:`plaza.agents.headroom`) when it cannot.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from plaza.agents.capacity_model import CapacityDesired, CapacityObserved
from plaza.agents.forecast import LoadDistribution, deseasonalise, seasonal_profile
from plaza.agents.headroom import StepAhead, step_ahead, step_quantile
from plaza.agents.seasonality import Season, detect_season

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class Forecast:
    """What :func:`decide` forecasts: the distribution of the deseasonalised level the
    reserved plan covers, the profile, the season it was detected from and, when load
    cannot wait, the calibrated bound on the next step's load."""

    distribution: LoadDistribution
    profile: FloatArray
    season: Season
    ahead: StepAhead | None
    #: The quantile of the next step's load worth ordering ahead when load waits for
    #: recourse only (:meth:`CapacityDesired.ahead_quantile`); None otherwise.
    low: float | None = None


def forecast(observed: CapacityObserved, desired: CapacityDesired) -> Forecast | None:
    """The forecast at ``observed.now`` (None without enough history).

    When load may wait (the SLA delay covers the on-demand lead), the level is the load as
    the queue smooths it; when it cannot, it is the step-ahead bound
    (:mod:`plaza.agents.headroom`): the capacity each step needs in place before its
    load arrives, which the plan covers with reserved units where they pay and on-demand
    capacity ordered a step ahead covers for the rest.
    """
    recent = observed.recent
    if recent.size < max(2, desired.reserved_lead_steps):
        return None
    block = desired.block_steps()
    now = observed.now
    season = detect_season(
        recent,
        now,
        block_steps=block,
        candidates=tuple(d * desired.season_steps for d in desired.season_candidates_days),
    )
    if season.found:
        profile = seasonal_profile(
            recent, now, season_steps=season.steps, block_steps=block, days=desired.season_days
        )
    else:
        profile = np.ones(max(1, desired.season_steps // block))
    window = recent[-desired.window_steps :]
    ahead = None
    if desired.load_cannot_wait():
        ahead = step_ahead(
            recent,
            now,
            profile,
            block,
            unserved=desired.unserved_target,
            half_life_steps=float(desired.reserved_term_steps),
        )
        bounds = ahead.bounds[:-1][-desired.window_steps :]
        level = deseasonalise(bounds, now, profile, block)
    else:
        level = _queue_smoothed(deseasonalise(window, now, profile, block), desired)
    dist = LoadDistribution.recent(level, desired.half_life_steps)
    low = None
    q = desired.ahead_quantile()
    if q is not None:
        low = step_quantile(
            recent, now, profile, block, q=q, half_life_steps=float(desired.season_steps)
        )
    return Forecast(dist, profile, season, ahead, low)


def _queue_smoothed(level: FloatArray, desired: CapacityDesired) -> FloatArray:
    """The load as reserved capacity sees it. Load may wait up to the SLA delay, so a
    reserved unit serves a burst over the next ``sla_delay_steps + 1`` steps: the
    forecast is of the trailing mean over that many steps (the first steps as they
    are). On-demand capacity, bought for the queue as it is, needs no forecast."""
    k = desired.sla_delay_steps + 1
    if k <= 1 or level.size < k:
        return level
    sums = np.cumsum(np.concatenate([[0.0], level]))
    return np.concatenate([level[: k - 1], (sums[k:] - sums[:-k]) / k])
