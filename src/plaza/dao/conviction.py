"""Conviction voting for continuous budget requests (1Hive / Gardens).

Members put *points* behind budget proposals (one member, one equal allowance of points,
spread as they like and moved at any time). A proposal's conviction ``y`` grows while
points stay on it and decays when they leave: per time step ``y <- a*y + x``, with ``x``
the points currently staked and ``a`` the decay. Over ``t`` steps with ``x`` constant
that is the closed form Gardens uses (1Hive/gardens-v2, ConvictionsUtils.sol)::

    y(t) = a^t * y0 + x * (1 - a^t) / (1 - a)

``t`` may be fractional here (we step in continuous time), and the decay comes from a
half-life: ``a = 2^(-step / half_life)`` (the Gardens UI's conversion). Conviction never
exceeds ``x / (1 - a)``.

A request for ``r`` from a pool holding ``R`` passes once conviction reaches the
threshold (1Hive conviction-voting-cadcad, algorithm_overview.md)::

    threshold = rho * S / ((1 - a) * (beta - r/R)^2)        if r/R < beta, else infinite

with ``beta`` the largest share of the pool one proposal may take, ``rho`` a scale, and
``S`` the effective supply. Plaza takes ``S`` as the points of *all eligible members*
(Gardens uses the points actually staked): low turnout then cannot lower the bar. A
floor of ``min_points / (1 - a)`` (Gardens' ``minThresholdPoints``) stops tiny pools from
paying out to a handful of members. At exactly ``r/R == beta`` the threshold is infinite.
A proposal passes when ``y >= threshold`` (reaching it counts).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

PPM: Final = 1_000_000


@dataclass(frozen=True, slots=True)
class ConvictionParams:
    """``beta`` and ``rho`` in ppm; times in seconds."""

    half_life_s: int
    step_s: int = 3600
    beta_ppm: int = 200_000
    rho_ppm: int = 2_500
    min_points: int = 0

    def __post_init__(self) -> None:
        if self.half_life_s <= 0 or self.step_s <= 0:
            raise ValueError("half-life and step must be positive")
        if not 0 < self.beta_ppm <= PPM or not 0 <= self.rho_ppm <= PPM:
            raise ValueError("beta must be in (0, 1e6] ppm and rho in [0, 1e6] ppm")

    @property
    def decay(self) -> float:
        """``a = 2^(-step / half_life)``."""
        return float(2.0 ** (-self.step_s / self.half_life_s))


def grow(y0: float, staked: float, elapsed_s: float, params: ConvictionParams) -> float:
    """Conviction after ``elapsed_s`` seconds with ``staked`` points held constant."""
    a = params.decay
    t = elapsed_s / params.step_s
    at: float = math.pow(a, t)
    return at * y0 + staked * (1.0 - at) / (1.0 - a)


def conviction_at(
    changes: Sequence[tuple[int, int]], now_ms: int, params: ConvictionParams
) -> float:
    """Conviction at ``now_ms`` from the history of the staked total: ``changes`` is
    ``[(time_ms, staked_from_then_on), ...]`` in time order, starting from zero."""
    y, x, t = 0.0, 0, None
    for when, staked in changes:
        if when > now_ms:
            break
        if t is not None:
            y = grow(y, x, (when - t) / 1000, params)
        x, t = staked, when
    if t is None:
        return 0.0
    return grow(y, x, (now_ms - t) / 1000, params)


def threshold(requested: int, pool: int, supply: int, params: ConvictionParams) -> float:
    """Conviction needed to pay ``requested`` from a pool of ``pool`` (``inf`` if the
    request is too large a share, or the pool is empty)."""
    if pool <= 0 or requested <= 0:
        return math.inf
    beta = params.beta_ppm / PPM
    share = requested / pool
    if share >= beta:
        return math.inf
    a = params.decay
    needed = (params.rho_ppm / PPM) * supply / ((1.0 - a) * (beta - share) ** 2)
    return max(needed, params.min_points / (1.0 - a))


def max_conviction(staked: int, params: ConvictionParams) -> float:
    """The limit of conviction with ``staked`` points held forever: ``x / (1 - a)``."""
    return staked / (1.0 - params.decay)
