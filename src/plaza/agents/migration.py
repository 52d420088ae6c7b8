"""Migration: drain hosts that must not keep their accounts, in batches the mandate allows.

Theory of operation. A provider is drained when it is gone (restore its accounts from the
relay mirror), has been unreachable longer than its SLA tolerates (restore from the
mirror; its disk reconciles if it comes back), is leaving or at the end of its contract
(move from the live host, verified), or holds more than the mandate's share of accounts
(move the excess from the live host). Each call emits at most one ``migration.batch`` per
source provider, each no larger than the mandate's batch limit; the loop calls again
next step until nothing is left to move (level-based: the batch sizes come from the
current state, never from remembered progress). Destinations are chosen by the same
water-filling as placement, never pushing any provider over the share limit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from plaza.agents.placement import PlacementObserved, plan_placement
from plaza.agents.types import Action, MandateLimits, Reason

IntArray = NDArray[np.int64]


@dataclass(frozen=True)
class MigrationObserved:
    """Hosting state per provider at step ``now``.

    ``down_for[p]``: steps provider ``p`` has been unreachable (0 when up); ``gone[p]``:
    it vanished; ``leaving[p]``: it is offboarding or its contract ends soon.
    """

    now: int
    hosted: IntArray
    slots: IntArray
    region: IntArray
    down_for: IntArray
    gone: NDArray[np.bool_]
    leaving: NDArray[np.bool_]


@dataclass(frozen=True)
class MigrationDesired:
    """When an unreachable host counts as failing its SLA, in steps (``unit`` names a
    step in the reasons: a live agent counts seconds)."""

    sla_down_steps: int = 2
    unit: str = "steps"


def _why(
    observed: MigrationObserved, p: int, desired: MigrationDesired, cap: int
) -> tuple[str, str, int]:
    """(rule, source, accounts to move) for provider ``p``; rule '' when nothing to do."""
    n = int(observed.hosted[p])
    if n == 0:
        return "", "", 0
    if observed.gone[p]:
        return "migration.restore-gone-host", "mirror", n
    if observed.down_for[p] >= desired.sla_down_steps:
        return "migration.restore-failing-host", "mirror", n
    if observed.down_for[p] > 0:
        return "", "", 0  # wait: a short outage is cheaper to ride out than a restore
    if observed.leaving[p]:
        return "migration.drain-leaving-host", "host", n
    if n > cap:
        return "migration.rebalance-over-share", "host", n - cap
    return "", "", 0


def decide(
    observed: MigrationObserved, desired: MigrationDesired, mandate: MandateLimits
) -> list[Action]:
    """``migration.batch`` actions for every provider that must shed accounts."""
    total = int(observed.hosted.sum())
    cap = math.floor(mandate.max_provider_share * total + 1e-9)
    if total < mandate.concentration_floor:
        cap = total  # too few accounts to spread: no rebalancing
    reachable = (observed.down_for == 0) & ~observed.gone
    plans = []
    for p in range(observed.hosted.size):
        rule, source, count = _why(observed, p, desired, cap)
        if rule:
            plans.append((p, rule, source, count))
    if not plans:
        return []
    draining = np.zeros(observed.hosted.size, dtype=bool)
    for p, rule, _, _ in plans:
        if rule != "migration.rebalance-over-share":
            draining[p] = True
    accepting = reachable & ~observed.leaving & ~draining
    hosted = observed.hosted.astype(np.int64).copy()
    actions: list[Action] = []
    n_regions = int(observed.region.max()) + 1 if observed.region.size else 1
    for p, rule, source, count in plans:
        batch = min(count, mandate.migration_batch_limit)
        hosted[p] -= batch
        pending = np.zeros(n_regions, dtype=np.int64)
        pending[int(observed.region[p])] = batch
        mask = accepting.copy()
        mask[p] = False
        alloc, unplaced = plan_placement(
            PlacementObserved(observed.now, hosted, observed.slots, observed.region, mask, pending),
            mandate.max_provider_share,
            mandate.concentration_floor,
        )
        per_dest = alloc.sum(axis=0)
        moved = int(per_dest.sum())
        hosted[p] += batch - moved
        if moved == 0:
            continue
        hosted += per_dest
        to = [(int(d), int(per_dest[d])) for d in np.nonzero(per_dest)[0]]
        reason = Reason.of(
            rule,
            f"Provider p{p} hosts {int(observed.hosted[p])} accounts and "
            + {
                "migration.restore-gone-host": "is gone: restore them from the relay mirror",
                "migration.restore-failing-host": (
                    f"has been unreachable for {int(observed.down_for[p])} {desired.unit} (SLA "
                    f"allows {desired.sla_down_steps}): restore them from the relay mirror"
                ),
                "migration.drain-leaving-host": "is leaving: move them while it still serves",
                "migration.rebalance-over-share": (
                    f"the mandate allows {mandate.max_provider_share:.0%} ({cap}): move the excess"
                ),
            }[rule]
            + f"; this batch moves {moved} (limit {mandate.migration_batch_limit})"
            + (f", {unplaced} wait for room" if unplaced else "")
            + ".",
            {
                "now": observed.now,
                "hosted": observed.hosted.tolist(),
                "down_for": observed.down_for.tolist(),
                "gone": observed.gone.tolist(),
                "leaving": observed.leaving.tolist(),
            },
            accounts=moved,
            remaining=count - moved,
            batch_limit=mandate.migration_batch_limit,
        )
        actions.append(
            Action.make(
                "migration.batch",
                reason,
                **{"from": p, "to": to, "source": source, "accounts": moved, "verify": "same-root"},
            )
        )
    return actions
