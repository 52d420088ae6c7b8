"""Agent decision speed: placement at scale and one capacity decision over many providers.

* placement: :func:`plaza.agents.placement.plan_placement` (batch water-filling over
  providers, three regions, 20% share limit) plus the expansion to one provider index
  per account, for 1M accounts over 1k providers and 10M over 10k;
* capacity: one :func:`plaza.agents.capacity.decide` over 10k providers with two days of
  5-minute load history, a full backlog and 10k reserved contracts.

Each figure is the median of ``runs`` timings, in seconds.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from plaza.agents import capacity
from plaza.agents.capacity import CapacityDesired, CapacityObserved, ReservedContract
from plaza.agents.placement import PlacementObserved, expand_assignment, plan_placement
from plaza.agents.types import MandateLimits


def _median(fn: Callable[[], Any], runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _placement(accounts: int, providers: int, runs: int) -> dict[str, Any]:
    rng = np.random.default_rng(7)
    slots = rng.integers(accounts // providers, 3 * accounts // providers + 2, providers)
    obs = PlacementObserved(
        now=0,
        hosted=np.zeros(providers, dtype=np.int64),
        slots=slots.astype(np.int64),
        region=rng.integers(0, 3, providers).astype(np.int64),
        accepting=rng.random(providers) > 0.02,
        pending=np.bincount(rng.integers(0, 3, accounts), minlength=3).astype(np.int64),
    )
    regions = np.repeat(np.arange(3), obs.pending)
    result: dict[str, Any] = {}

    def once() -> None:
        alloc, unplaced = plan_placement(obs, 0.2)
        idx = expand_assignment(regions, alloc)
        result["unplaced"] = unplaced
        result["max_share"] = float(np.bincount(idx[idx >= 0]).max() / accounts)

    seconds = _median(once, runs)
    return {
        "accounts": accounts,
        "providers": providers,
        "seconds": round(seconds, 4),
        "accounts_per_s": round(accounts / seconds),
        **result,
    }


def _capacity(providers: int, runs: int) -> dict[str, Any]:
    rng = np.random.default_rng(11)
    history = rng.gamma(2.0, 500.0, 576)
    contracts = tuple(
        ReservedContract(i, i % providers, float(rng.integers(1, 5)), -300, -12)
        for i in range(providers)
    )
    obs = CapacityObserved(
        now=0,
        recent=history,
        backlog=((-2, 900.0), (-1, 1200.0), (0, 1500.0)),
        contracts=contracts,
        usable=np.ones(providers),
        accepting=np.ones(providers, dtype=bool),
        cap=np.full(providers, 50.0),
    )
    desired = CapacityDesired()
    limits = MandateLimits(max_provider_share=0.2)
    out: dict[str, Any] = {}

    def once() -> None:
        out["actions"] = len(capacity.decide(obs, desired, limits))

    seconds = _median(once, runs)
    return {
        "providers": providers,
        "contracts": len(contracts),
        "seconds": round(seconds, 4),
        **out,
    }


def run(runs: int = 3) -> dict[str, Any]:
    """Run every measurement ``runs`` times; return the medians."""
    return {
        "placement_1M_over_1k": _placement(1_000_000, 1_000, runs),
        "placement_10M_over_10k": _placement(10_000_000, 10_000, runs),
        "capacity_decision_10k_providers": _capacity(10_000, runs),
        "runs": runs,
    }
