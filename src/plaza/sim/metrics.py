"""What a run is judged by, and the concentration measures behind two of the numbers.

HHI is the Herfindahl-Hirschman index on the 0-10,000 scale (sum of squared percentage
shares; above 1,800 is "highly concentrated" under the 2023 US merger guidelines). The
Nakamoto coefficient is the fewest providers that together hold more than half of the
accounts (Srinivasan 2017).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import NDArray


def hhi(counts: NDArray[np.int64] | NDArray[np.float64]) -> float:
    """Herfindahl-Hirschman index of ``counts``, 0..10,000 (0 for an empty market)."""
    x = np.asarray(counts, dtype=np.float64)
    total = x.sum()
    if total <= 0:
        return 0.0
    return float(((100.0 * x / total) ** 2).sum())


def nakamoto(counts: NDArray[np.int64] | NDArray[np.float64], threshold: float = 0.5) -> int:
    """Fewest holders whose combined share exceeds ``threshold`` (0 for an empty market)."""
    x = np.sort(np.asarray(counts, dtype=np.float64))[::-1]
    total = x.sum()
    if total <= 0:
        return 0
    return int(np.searchsorted(np.cumsum(x) / total, threshold, side="right") + 1)


@dataclass(frozen=True)
class Metrics:
    """The numbers ``plaza sim run`` prints (see docs/simulation.md for each)."""

    policy: str
    trace: str
    steps: int
    cost: float
    unserved_fraction: float
    sla_violation_fraction: float
    p99_wait_steps: float
    records_lost: float
    migrations: int
    max_provider_share: float
    hhi: float
    nakamoto: int
    escalations: int
    guard_denials: int
    human_interventions: int
    actions_executed: int
    ledger_events: int
    cost_accounted: float = 0.0
    invoices: int = 0
    #: ``cost_accounted`` split: reserved capacity, on-demand ordered ahead, on-demand
    #: recourse within a step; and the part of the reserved cost paid for idle capacity.
    cost_reserved: float = 0.0
    cost_on_demand: float = 0.0
    cost_recourse: float = 0.0
    cost_idle_reserved: float = 0.0

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def p99_wait(wait_hist: NDArray[np.float64], unserved: float) -> float:
    """99th percentile of waiting steps over all load (unserved counts as delay + 1)."""
    hist = np.concatenate([wait_hist, [unserved]])
    total = hist.sum()
    if total <= 0:
        return 0.0
    return float(np.searchsorted(np.cumsum(hist) / total, 0.99 - 1e-12))
