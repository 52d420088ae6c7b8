"""Spreading capacity units over providers: within their caps and the mandate's share.

The capacity reconciler and the simulator's baselines buy capacity in whole units and
split each purchase over the providers that may sell: water-filling (the same as
placement's, :func:`plaza.agents.placement.water_fill`) raises every provider towards a
common utilisation of its cap, each kept at or below ``max_share`` of the contracted
total, and the rounding to whole units goes to the providers with the largest remainders.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from plaza.agents.placement import water_fill

FloatArray = NDArray[np.float64]


def spread_units(
    amount: float,
    *,
    have: FloatArray,
    cap: FloatArray,
    accepting: NDArray[np.bool_],
    total_after: float,
    max_share: float,
    unit: float,
) -> FloatArray:
    """Split ``amount`` units over providers: within caps, each at most ``max_share``."""
    share_room = max_share * total_after - have
    room = np.where(accepting, np.minimum(cap - have, share_room), 0.0)
    room = np.floor(np.maximum(room, 0.0) / unit + 1e-9) * unit
    if room.sum() < amount - 1e-9:
        # The share limit cannot hold all of it; fall back to the caps alone and let the
        # guard decide (over-concentration is its call, not a silent shortfall).
        room = np.where(accepting, np.maximum(cap - have, 0.0), 0.0)
        room = np.floor(room / unit + 1e-9) * unit
    x = water_fill(have, np.maximum(cap, 1e-9), room, amount)
    units = np.floor(x / unit + 1e-9)
    short = round((min(amount, float(room.sum())) - units.sum() * unit) / unit)
    if short > 0:
        frac = np.where(units * unit < room, x / unit - units, -1.0)
        for i in np.argsort(-frac, kind="stable")[:short]:
            if frac[i] > -1.0:
                units[i] += 1
    return units * unit


def allocations(x: FloatArray) -> list[tuple[int, float]]:
    """``(provider, units)`` for every provider given a positive amount."""
    return [(int(p), float(x[p])) for p in np.nonzero(x > 1e-12)[0]]
