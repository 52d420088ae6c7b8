from __future__ import annotations

import numpy as np
import pytest

from plaza.sim import Scenario, SimError, trace_from_values
from plaza.sim.metrics import Metrics
from plaza.sim.testset import (
    SetRow,
    format_cost_breakdown,
    format_set_table,
    parse_steps,
    run_set,
    series,
    step_label,
)
from tests.vectors import DATA


def test_step_sizes_parse_and_print() -> None:
    assert parse_steps("10m,15m, 30m,1h,60m") == (600, 900, 1800, 3600)
    assert [step_label(s) for s in (600, 3600, 7200)] == ["10m", "60m", "2h"]
    for bad in ("", "10x", "30s", "2d"):
        with pytest.raises(SimError):
            parse_steps(bad)


def test_the_set_resamples_every_trace_and_draws_the_synthetic_series() -> None:
    items = list(
        series(DATA / "traces", pattern="Twitter_volume_CVS.csv", steps=(900, 3600), synthetic=2)
    )
    names = [(name, step) for name, step, _ in items]
    assert names == [
        ("Twitter_volume_CVS.csv", 900),
        ("synthetic-0-0", 900),
        ("synthetic-0-1", 900),
        ("Twitter_volume_CVS.csv", 3600),
        ("synthetic-0-0", 3600),
        ("synthetic-0-1", 3600),
    ]
    cvs = [t for name, _, t in items if name == "Twitter_volume_CVS.csv"]
    assert all(not isinstance(t, Exception) for t in cvs)
    totals = {float(t.values.sum()) for t in cvs if not isinstance(t, Exception)}
    assert len(totals) == 1  # summing keeps every unit of load


def _daily(days: int, step: int, mean: float) -> np.ndarray:
    rng = np.random.default_rng(5)
    t = np.arange(days * 86_400 // step)
    return rng.poisson(mean * (1 + 0.5 * np.sin(2 * np.pi * t * step / 86_400))).astype(float)


def test_a_small_bench_meets_the_ratio_targets() -> None:
    # Small networks, and a budget that puts the first reservation under the mandate's
    # optimistic threshold: on a series of days its 48-hour veto window would dominate.
    sc = Scenario(accounts=200, signups_per_day=0, budget_per_day=1e7)
    items = [
        (f"daily-{step}", step, trace_from_values(_daily(8, step, m), step_seconds=step))
        for step, m in ((600, 20.0), (900, 40.0))
    ]
    rows = run_set(iter(items), scenario=sc, policies=("agent", "oracle"))
    table = format_set_table(rows)
    for row in rows:
        assert not row.error, table
        assert row.ratio("agent") <= 1.25, table
        assert row.metrics["agent"].unserved_fraction <= 0.001, table
        assert row.metrics["agent"].records_lost == 0, table
    assert "| 10m | 1 |" in table and "| 15m | 1 |" in table


def test_at_half_hour_and_hourly_steps_load_waits_for_recourse() -> None:
    # An SLA delay of 0 steps: before recourse, each step's capacity had to be bought
    # before its load was seen. Run in two worker processes, as --jobs 2 does.
    sc = Scenario(accounts=200, signups_per_day=0, budget_per_day=1e7)
    items = [
        (f"daily-{step}", step, trace_from_values(_daily(8, step, m), step_seconds=step))
        for step, m in ((1800, 80.0), (3600, 160.0))
    ]
    seen: list[str] = []
    rows = run_set(
        iter(items),
        scenario=sc,
        policies=("agent", "oracle"),
        jobs=2,
        progress=lambda name, summary: seen.append(f"{name} {summary}"),
    )
    table = format_set_table(rows)
    assert [r.series for r in rows] == ["daily-1800", "daily-3600"]
    assert len(seen) == 2 and all("agent/oracle" in s for s in seen), seen
    for row in rows:
        assert not row.error, table
        assert row.ratio("agent") <= 1.25, table
        assert row.metrics["agent"].unserved_fraction <= 0.001, table
        assert row.metrics["agent"].records_lost == 0, table


def _metrics(
    policy: str, reserved: float, on_demand: float, recourse: float, idle: float
) -> Metrics:
    cost = reserved + on_demand + recourse
    return Metrics(
        policy=policy, trace="t", steps=10, cost=cost, unserved_fraction=0.0,
        sla_violation_fraction=0.0, p99_wait_steps=0.0, records_lost=0.0, migrations=0,
        max_provider_share=0.0, hhi=0.0, nakamoto=0, escalations=0, guard_denials=0,
        human_interventions=0, actions_executed=0, ledger_events=0, cost_accounted=cost,
        cost_reserved=reserved, cost_on_demand=on_demand, cost_recourse=recourse,
        cost_idle_reserved=idle,
    )  # fmt: skip


def test_the_cost_breakdown_is_in_shares_of_the_oracles_cost() -> None:
    rows = [
        SetRow(
            "s",
            1800,
            {
                "agent": _metrics("agent", 60.0, 10.0, 30.0, 20.0),
                "oracle": _metrics("oracle", 50.0, 30.0, 0.0, 5.0),
            },
        ),
        SetRow("bad", 1800, {}, "SimError: no"),
    ]
    table = format_cost_breakdown(rows).splitlines()
    assert table[0].startswith("| series | step | agent reserved | agent on-demand |")
    assert "oracle idle reserved" in table[0]
    # 80 is the oracle's cost: the agent's 100 is 0.75 + 0.125 + 0.375 of it.
    assert table[2] == (
        "| s | 30m | 0.750 | 0.125 | 0.375 | 0.250 | 0.625 | 0.375 | 0.000 | 0.062 |"
    )
    assert len(table) == 3  # the failed series has no row
