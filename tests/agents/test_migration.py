from __future__ import annotations

import numpy as np

from plaza.agents import migration
from plaza.agents.migration import MigrationDesired, MigrationObserved
from plaza.agents.types import MandateLimits
from tests.agents.clock import FakeClock

LIMITS = MandateLimits(max_provider_share=0.3, migration_batch_limit=50)


def obs(
    clock: FakeClock,
    hosted: list[int],
    *,
    down_for: list[int] | None = None,
    gone: list[bool] | None = None,
    leaving: list[bool] | None = None,
) -> MigrationObserved:
    n = len(hosted)
    return MigrationObserved(
        now=clock.step,
        hosted=np.array(hosted, dtype=np.int64),
        slots=np.full(n, 1000, dtype=np.int64),
        region=np.zeros(n, dtype=np.int64),
        down_for=np.array(down_for or [0] * n, dtype=np.int64),
        gone=np.array(gone or [False] * n),
        leaving=np.array(leaving or [False] * n),
    )


def test_calm_network_needs_nothing() -> None:
    assert migration.decide(obs(FakeClock(), [25, 25, 25, 25]), MigrationDesired(), LIMITS) == []


def test_gone_host_is_restored_from_the_mirror_in_batches() -> None:
    clock = FakeClock(step=100)
    [a] = migration.decide(
        obs(clock, [120, 60, 60, 60], gone=[True, False, False, False]), MigrationDesired(), LIMITS
    )
    assert a.kind == "migration.batch"
    assert a["from"] == 0
    assert a["source"] == "mirror"
    assert a["accounts"] == 50  # the batch limit
    assert a.reason.rule == "migration.restore-gone-host"
    assert a.reason.number("remaining") == 70
    assert 0 not in [p for p, _ in a["to"]]


def test_short_outage_is_ridden_out_long_one_is_restored() -> None:
    clock = FakeClock(step=10)
    desired = MigrationDesired(sla_down_steps=3)
    assert (
        migration.decide(obs(clock, [30, 30, 30, 30], down_for=[2, 0, 0, 0]), desired, LIMITS) == []
    )
    [a] = migration.decide(obs(clock, [30, 30, 30, 30], down_for=[3, 0, 0, 0]), desired, LIMITS)
    assert a["source"] == "mirror"
    assert a.reason.rule == "migration.restore-failing-host"


def test_leaving_host_is_drained_from_the_live_host() -> None:
    clock = FakeClock(step=10)
    [a] = migration.decide(
        obs(clock, [20, 10, 10, 10, 10, 10], leaving=[True] + [False] * 5),
        MigrationDesired(),
        LIMITS,
    )
    assert a["source"] == "host"
    assert a["accounts"] == 20
    assert a["verify"] == "same-root"


def test_a_drain_never_pushes_a_destination_over_the_share_limit() -> None:
    clock = FakeClock(step=10)
    [a] = migration.decide(
        obs(clock, [20, 30, 30, 30], leaving=[True, False, False, False]),
        MigrationDesired(),
        LIMITS,
    )
    # 110 accounts, 30% = 33 each: only 3 more fit on each of the others; the rest waits.
    assert a["accounts"] == 9
    assert a.reason.number("remaining") == 11


def test_over_share_host_sheds_only_the_excess() -> None:
    clock = FakeClock(step=10)
    [a] = migration.decide(obs(clock, [50, 20, 15, 15]), MigrationDesired(), LIMITS)
    assert a.reason.rule == "migration.rebalance-over-share"
    assert a["accounts"] == 50 - 30
    dests = dict(a["to"])
    assert dests.get(1, 0) + 20 <= 30
