"""Which season the load has: autocorrelation of hourly load at candidate periods.

The capacity reconciler's forecast multiplies a seasonal profile by a level
(:mod:`plaza.agents.forecast`). Which season to use is read from the data, not assumed:
:func:`detect_season` sums the recent load into blocks (an hour by default), takes logs
(a flash crowd ten times the load would otherwise outweigh a cycle that repeats every
day), removes a slow trend (the centred moving mean over the candidate period) and
measures the autocorrelation of what is left at each candidate lag: a day and a week. A
period whose autocorrelation clears ``threshold`` is a season. Among those the longer
one is used only if it explains clearly more (an autocorrelation higher by ``margin``: a
weekly series also correlates at a day) and the history holds ``min_seasons`` of it for
a median profile. Otherwise the load has no season and the profile is flat.

Pure and cheap: one pass over at most a few thousand hourly blocks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from plaza.errors import InvalidInputError

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class Season:
    """The detected season: its length in steps (0: none) and the autocorrelations seen."""

    steps: int
    acf: dict[int, float]

    @property
    def found(self) -> bool:
        return self.steps > 0


def block_sums(recent: FloatArray, now: int, block_steps: int) -> FloatArray:
    """``recent`` (ending at absolute step ``now``) summed over whole aligned blocks."""
    x = np.asarray(recent, dtype=np.float64)
    first = now - x.size + 1
    skip = (-first) % block_steps
    whole = (x.size - skip) // block_steps
    if whole <= 0:
        return np.zeros(0)
    out: FloatArray = x[skip : skip + whole * block_steps].reshape(whole, block_steps).sum(1)
    return out


def autocorrelation(x: FloatArray, lag: int) -> float:
    """The autocorrelation of ``x`` at ``lag`` after removing its moving mean over ``lag``
    (so that a trend is not mistaken for a season); 0 when there is too little data."""
    x = np.asarray(x, dtype=np.float64)
    if lag < 1 or x.size < 2 * lag + 2:
        return 0.0
    kernel = np.ones(lag) / lag
    trend = np.convolve(x, kernel, mode="same")
    half = lag // 2
    r = (x - trend)[half : x.size - half]
    if r.size <= lag:
        return 0.0
    r = r - r.mean()
    denom = float((r * r).sum())
    if denom <= 0.0:
        return 0.0
    return float((r[:-lag] * r[lag:]).sum() / denom)


def detect_season(
    recent: FloatArray,
    now: int,
    *,
    block_steps: int,
    candidates: tuple[int, ...],
    threshold: float = 0.2,
    margin: float = 0.1,
    min_seasons: int = 3,
) -> Season:
    """The season of ``recent`` among ``candidates`` (periods in steps, ascending).

    Each candidate must be a whole number of blocks. See the module docstring.
    """
    if block_steps < 1 or any(c % block_steps or c <= 0 for c in candidates):
        raise InvalidInputError("seasons must be positive whole numbers of blocks")
    sums = block_sums(recent, now, block_steps)
    # On a log scale, so that a few bursts do not outweigh the cycle every day repeats.
    x = np.log(sums + 0.1 * float(sums.mean()) + 1e-12) if sums.size else sums
    acf = {c: autocorrelation(x, c // block_steps) for c in candidates}
    best, best_acf = 0, threshold
    for c in sorted(candidates):
        enough = x.size >= min_seasons * (c // block_steps)
        if enough and acf[c] >= best_acf + (margin if best else 0.0):
            best, best_acf = c, acf[c]
    return Season(best, acf)
