"""Placement: assign new accounts to hosting providers by free room, region and share.

Theory of operation. Placement is batch water-filling. For a batch of ``n`` new accounts
the reconciler computes, for every provider, the *room* it may still take: its free
account slots, and no more than ``floor(max_share * total_after)`` minus what it hosts,
so no provider passes the mandate's concentration limit once the batch lands. It then
raises a common "water level" of utilisation (hosted / slots) until the batch fits:
providers below the level fill up to it, never past their room. Accounts are placed
region by region, home-region providers first, and what a region cannot hold spills over
to the rest. Everything is vector arithmetic over providers (numpy); the cost is
O(P log P) per region and does not grow with the number of accounts, except for the
final expansion into one provider index per account (:func:`expand_assignment`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from plaza.agents.types import Action, MandateLimits, Reason
from plaza.errors import InvalidInputError

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]


def water_fill(
    level_base: FloatArray, scale: FloatArray, room: FloatArray, amount: float
) -> FloatArray:
    """Continuous water-filling: ``x_i = clip(L*scale_i - level_base_i, 0, room_i)``.

    Finds the level ``L`` so that ``sum(x) == min(amount, sum(room))``. ``scale`` is each
    bin's size (so equal ``L`` means equal utilisation); bins with zero scale take nothing.
    """
    room = np.maximum(np.asarray(room, dtype=np.float64), 0.0)
    scale = np.asarray(scale, dtype=np.float64)
    base = np.asarray(level_base, dtype=np.float64)
    total_room = float(room.sum())
    amount = min(float(amount), total_room)
    if amount <= 0 or room.size == 0:
        return np.zeros_like(room)
    ok = (scale > 0) & (room > 0)
    if not np.any(ok):
        return np.zeros_like(room)
    # Each bin is piecewise linear in L between its start and its full level.
    start = np.where(ok, base / np.where(ok, scale, 1.0), np.inf)
    full = np.where(ok, (base + room) / np.where(ok, scale, 1.0), np.inf)
    breaks = np.unique(np.concatenate([start[ok], full[ok]]))

    def filled(level: float) -> float:
        x = np.clip(level * scale - base, 0.0, room)
        return float(np.where(ok, x, 0.0).sum())

    vals = np.array([filled(b) for b in breaks]) if breaks.size <= 64 else None
    if vals is None:
        # Vectorised evaluation at every breakpoint for big instances.
        lv = breaks[:, None]
        x = np.clip(lv * scale[None, :] - base[None, :], 0.0, room[None, :])
        vals = (
            np.where(ok[None, :], x, 0.0).sum(axis=1)
            if breaks.size * room.size <= 4_000_000
            else None
        )
    if vals is None:
        lo, hi = float(breaks[0]), float(breaks[-1])
        for _ in range(100):
            mid = (lo + hi) / 2
            if filled(mid) < amount:
                lo = mid
            else:
                hi = mid
        level = hi
    else:
        k = int(np.searchsorted(vals, amount - 1e-9))
        if k == 0:
            level = float(breaks[0])
        else:
            # Linear between breaks[k-1] and breaks[k].
            b0, b1, v0, v1 = breaks[k - 1], breaks[k], vals[k - 1], vals[k]
            level = float(b1) if v1 == v0 else float(b0 + (amount - v0) * (b1 - b0) / (v1 - v0))
    x = np.clip(level * scale - base, 0.0, room)
    x = np.where(ok, x, 0.0)
    total = float(x.sum())
    if total > 0 and abs(total - amount) > 1e-9 * max(1.0, amount):
        x *= amount / total
        x = np.minimum(x, room)
    return x


def round_preserving(x: FloatArray, total: int, room: IntArray) -> IntArray:
    """Round ``x`` to integers summing to ``total``, never above ``room`` (largest remainder)."""
    base = np.minimum(np.floor(x + 1e-9).astype(np.int64), room)
    short = int(total - base.sum())
    if short > 0:
        frac = np.where(base < room, x - base, -1.0)
        order = np.argsort(-frac, kind="stable")
        eligible = order[frac[order] > -1.0]
        base[eligible[:short]] += 1
    return base


@dataclass(frozen=True)
class PlacementObserved:
    """What placement sees: providers' hosting state and the pending sign-ups.

    ``hosted[p]`` accounts on provider ``p``, ``slots[p]`` its account capacity,
    ``region[p]`` its region index, ``accepting[p]`` False for providers that are down,
    leaving or gone. ``pending[r]`` new accounts waiting in region ``r``.
    """

    now: int
    hosted: IntArray
    slots: IntArray
    region: IntArray
    accepting: NDArray[np.bool_]
    pending: IntArray


@dataclass(frozen=True)
class PlacementDesired:
    """Placement's goal: place every pending account (``home_first``: region first)."""

    home_first: bool = True


def plan_placement(
    observed: PlacementObserved, max_share: float, floor: int = 0
) -> tuple[IntArray, int]:
    """Counts ``alloc[r, p]`` of pending accounts of region ``r`` to provider ``p``.

    Returns the allocation and the number of accounts that could not be placed (no room
    under the slots and the share limit, which applies once the network will hold at
    least ``floor`` accounts). Pure; no rounding beyond whole accounts.
    """
    hosted = np.asarray(observed.hosted, dtype=np.int64)
    slots = np.asarray(observed.slots, dtype=np.int64)
    pending = np.asarray(observed.pending, dtype=np.int64)
    n_prov = hosted.size
    if not (slots.size == n_prov == observed.region.size == observed.accepting.size):
        raise InvalidInputError("placement: provider arrays differ in length")
    total_after = int(hosted.sum() + pending.sum())
    share_cap = math.floor(max_share * total_after + 1e-9)
    if total_after < floor:
        share_cap = int(slots.max(initial=0))
    room = np.minimum(slots - hosted, share_cap - hosted)
    room = np.where(observed.accepting, np.maximum(room, 0), 0).astype(np.int64)
    alloc = np.zeros((pending.size, n_prov), dtype=np.int64)
    current = hosted.astype(np.float64)
    scale = np.maximum(slots, 1).astype(np.float64)
    unplaced = 0
    for r in np.argsort(-pending, kind="stable"):
        need = int(pending[r])
        if need <= 0:
            continue
        for mask in (observed.region == r, observed.region != r):
            if need <= 0:
                break
            sub_room = np.where(mask, room, 0)
            cap = int(sub_room.sum())
            if cap <= 0:
                continue
            take = min(need, cap)
            x = water_fill(current, scale, sub_room.astype(np.float64), take)
            xi = round_preserving(x, take, sub_room)
            alloc[r] += xi
            room -= xi
            current += xi
            need -= take
        unplaced += need
    return alloc, unplaced


def decide(
    observed: PlacementObserved, desired: PlacementDesired, mandate: MandateLimits
) -> list[Action]:
    """One ``placement.assign`` action placing the pending accounts (or none to place).

    The action's ``allocations`` lists ``(region, provider, count)``; the executor gives
    each provider the next ``count`` pending accounts of that region in sign-up order.
    """
    if int(np.sum(observed.pending)) == 0:
        return []
    alloc, unplaced = plan_placement(
        observed, mandate.max_provider_share, mandate.concentration_floor
    )
    regions, provs = np.nonzero(alloc)
    allocations = [(int(r), int(p), int(alloc[r, p])) for r, p in zip(regions, provs, strict=True)]
    placed = int(alloc.sum())
    if placed == 0:
        return []
    total_after = int(observed.hosted.sum()) + placed
    max_after = int((observed.hosted + alloc.sum(axis=0)).max())
    reason = Reason.of(
        "placement.water-fill",
        f"Place {placed} new accounts by free slots, home region first, keeping every "
        f"provider at or below {mandate.max_provider_share:.0%} of accounts"
        + (f"; {unplaced} wait for room" if unplaced else "")
        + ".",
        {
            "now": observed.now,
            "hosted": observed.hosted.tolist(),
            "slots": observed.slots.tolist(),
            "pending": observed.pending.tolist(),
            "accepting": observed.accepting.tolist(),
        },
        placed=placed,
        unplaced=unplaced,
        max_share_after=max_after / max(total_after, 1),
        limit=mandate.max_provider_share,
    )
    return [
        Action.make(
            "placement.assign",
            reason,
            allocations=allocations,
            accounts=placed,
            max_share_after=max_after / max(total_after, 1),
        )
    ]


def expand_assignment(region_of_pending: IntArray, alloc: IntArray) -> IntArray:
    """Provider index for each pending account (sign-up order), or -1 if unplaced.

    Within a region, accounts go to providers in provider order, ``alloc[r, p]`` each.
    Vectorised: a stable sort by region and one ``np.repeat`` per region.
    """
    out = np.full(region_of_pending.size, -1, dtype=np.int64)
    order = np.argsort(region_of_pending, kind="stable")
    sorted_regions = region_of_pending[order]
    bounds = np.searchsorted(sorted_regions, np.arange(alloc.shape[0] + 1))
    for r in range(alloc.shape[0]):
        lo, hi = int(bounds[r]), int(bounds[r + 1])
        targets = np.repeat(np.arange(alloc.shape[1]), alloc[r])
        k = min(targets.size, hi - lo)
        out[order[lo : lo + k]] = targets[:k]
    return out
