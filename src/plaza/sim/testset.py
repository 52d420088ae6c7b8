"""The capacity agent's test set: the shipped traces at several step sizes, and synthetic
series, each run by the agent, the reactive baseline and the oracle.

:func:`series` builds the set: every trace of a folder resampled (summed) to each step
size (:func:`plaza.sim.trace.resample`), and ``synthetic`` series of a seed
(:mod:`plaza.sim.synthetic`) at the same step sizes. Nothing is written to disk: the set
is generated again from the traces and the seed on every run. :func:`run_set` runs the
policies on every series; :func:`format_set_table` prints, per series and step size, the
agent's and the reactive baseline's cost over the oracle's, the agent's unserved load and
the records it lost, and per step size the geometric means and the worst cases;
:func:`format_cost_breakdown` where each policy's cost goes (reserved, on-demand ordered
ahead, recourse, idle reserved capacity), as shares of the oracle's cost.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from plaza.errors import PlazaError
from plaza.sim.bench import trace_files
from plaza.sim.engine import run
from plaza.sim.errors import SimError
from plaza.sim.metrics import Metrics
from plaza.sim.scenario import Scenario
from plaza.sim.synthetic import synthetic_trace
from plaza.sim.trace import Trace, load_trace, resample

#: The policies the test set compares (the oracle is the denominator).
SET_POLICIES = ("agent", "reactive", "oracle")

_UNITS = {"s": 1, "m": 60, "h": 3600}


def parse_steps(text: str) -> tuple[int, ...]:
    """``"10m,15m,30m,60m"`` as step sizes in seconds (units ``s``, ``m``, ``h``)."""
    out: list[int] = []
    for part in text.split(","):
        m = re.fullmatch(r"\s*(\d+)\s*([smh])\s*", part)
        if m is None:
            raise SimError(f"bad step size {part.strip()!r} (expected e.g. 10m, 1h or 900s)")
        seconds = int(m.group(1)) * _UNITS[m.group(2)]
        if not 60 <= seconds <= 86_400:
            raise SimError(f"step size {part.strip()!r} must be between 1 minute and a day")
        if seconds not in out:
            out.append(seconds)
    if not out:
        raise SimError("no step sizes given")
    return tuple(out)


def step_label(seconds: int) -> str:
    """``1800`` -> ``"30m"``."""
    return f"{seconds // 3600}h" if seconds % 3600 == 0 and seconds > 3600 else f"{seconds // 60}m"


@dataclass(frozen=True)
class SetRow:
    """One series at one step size: each policy's metrics, or why it failed."""

    series: str
    step_seconds: int
    metrics: dict[str, Metrics]
    error: str = ""

    def ratio(self, policy: str) -> float:
        oracle = self.metrics["oracle"].cost
        return self.metrics[policy].cost / oracle if oracle > 0 else float("nan")


def series(
    folder: str | Path | None,
    *,
    pattern: str = "*.csv",
    steps: tuple[int, ...],
    synthetic: int = 0,
    seed: int = 0,
    days: int = 28,
) -> Iterator[tuple[str, int, Trace | PlazaError]]:
    """``(name, step, trace)`` for every series of the set (or the error that stopped it)."""
    files = trace_files(folder, pattern) if folder is not None else []
    for step in steps:
        for f in files:
            try:
                yield f.name, step, resample(load_trace(f, repair=True), step)
            except PlazaError as exc:
                yield f.name, step, exc
        for i in range(synthetic):
            trace = synthetic_trace(seed, i, days=days)
            try:
                yield trace.name, step, resample(trace, step)
            except PlazaError as exc:
                yield trace.name, step, exc


def _run_one(
    item: tuple[str, int, Trace | PlazaError],
    scenario: Scenario | None,
    seed: int,
    policies: tuple[str, ...],
    progress: Callable[[str, str], None] | None = None,
) -> SetRow:
    name, step, trace = item
    if isinstance(trace, PlazaError):
        return SetRow(name, step, {}, f"{trace.code}: {trace.message}")
    metrics: dict[str, Metrics] = {}
    try:
        for p in policies:
            if progress is not None:
                progress(f"{name} {step_label(step)}", p)
            metrics[p] = run(trace, p, scenario=scenario, seed=seed).metrics
    except PlazaError as exc:
        return SetRow(name, step, {}, f"{exc.code}: {exc.message}")
    return SetRow(name, step, metrics)


def _run_packed(args: tuple[Any, ...]) -> SetRow:
    return _run_one(*args)


def run_set(
    items: Iterator[tuple[str, int, Trace | PlazaError]],
    *,
    scenario: Scenario | None = None,
    seed: int = 0,
    policies: tuple[str, ...] = SET_POLICIES,
    progress: Callable[[str, str], None] | None = None,
    jobs: int = 1,
) -> list[SetRow]:
    """Run ``policies`` (and the oracle) on every series; a failed series gets its error.

    With ``jobs`` > 1 the series run in that many worker processes (each run is
    deterministic, so the rows are the same); ``progress`` is then called with each
    series once it is done, the second argument its :func:`row_summary` (so a run cut
    short still says what it measured). Rows keep the order of ``items``.
    """
    if "oracle" not in policies:
        policies = (*policies, "oracle")
    if jobs <= 1:
        return [_run_one(item, scenario, seed, policies, progress) for item in items]
    return _run_parallel(items, scenario, seed, policies, progress, jobs)


def _run_parallel(  # noqa: PLR0917 - run_set's arguments, passed on
    items: Iterator[tuple[str, int, Trace | PlazaError]],
    scenario: Scenario | None,
    seed: int,
    policies: tuple[str, ...],
    progress: Callable[[str, str], None] | None,
    jobs: int,
) -> list[SetRow]:
    import multiprocessing

    rows: list[SetRow] = []
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(jobs) as pool:
        work = ((item, scenario, seed, policies) for item in items)
        for row in pool.imap(_run_packed, work):
            if progress is not None:
                progress(f"{row.series} {step_label(row.step_seconds)}", row_summary(row))
            rows.append(row)
    return rows


def row_summary(row: SetRow) -> str:
    """One finished series in a line: the ratios, the agent's unserved share and the
    records it lost."""
    if row.error:
        return f"failed: {row.error}"
    parts = [f"{p}/oracle {row.ratio(p):.3f}" for p in row.metrics if p != "oracle"]
    agent = row.metrics.get("agent")
    if agent is not None:
        parts.append(f"agent unserved {100 * agent.unserved_fraction:.4f}%")
        parts.append(f"records lost {agent.records_lost:g}")
    return "done: " + ", ".join(parts)


def _geomean(values: list[float]) -> float:
    return float(np.exp(np.log(np.asarray(values)).mean())) if values else float("nan")


def format_set_table(rows: list[SetRow]) -> str:
    """Markdown: one row per series and step size, then one summary row per step size."""
    lines = [
        "| series | step | oracle cost | agent/oracle | reactive/oracle | agent unserved % "
        "| records lost |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        label = step_label(row.step_seconds)
        if row.error:
            lines.append(f"| {row.series} | {label} | failed: {row.error} | | | | |")
            continue
        agent = row.metrics["agent"]
        reactive_cell = f"{row.ratio('reactive'):.3f}" if "reactive" in row.metrics else ""
        lines.append(
            f"| {row.series} | {label} | {row.metrics['oracle'].cost:,.0f} "
            f"| {row.ratio('agent'):.3f} | {reactive_cell} "
            f"| {100 * agent.unserved_fraction:.4f} | {agent.records_lost:g} |"
        )
    lines += [
        "",
        "| step | series | agent/oracle geometric mean | agent/oracle max | reactive/oracle "
        "geometric mean | agent unserved % max | records lost | failed |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for step in dict.fromkeys(r.step_seconds for r in rows):
        at = [r for r in rows if r.step_seconds == step]
        ran = [r for r in at if not r.error]
        ratios = [r.ratio("agent") for r in ran]
        reactive = [r.ratio("reactive") for r in ran if "reactive" in r.metrics]
        unserved = max((r.metrics["agent"].unserved_fraction for r in ran), default=0.0)
        lost = sum(r.metrics["agent"].records_lost for r in ran)
        lines.append(
            f"| {step_label(step)} | {len(ran)} | {_geomean(ratios):.3f} "
            f"| {max(ratios, default=float('nan')):.3f} | {_geomean(reactive):.3f} "
            f"| {100 * unserved:.4f} | {lost:g} | {len(at) - len(ran)} |"
        )
    return "\n".join(lines)


#: The parts of a run's cost :func:`format_cost_breakdown` shows, by ``Metrics`` field.
_PARTS = (
    ("reserved", "cost_reserved"),
    ("on-demand", "cost_on_demand"),
    ("recourse", "cost_recourse"),
    ("idle reserved", "cost_idle_reserved"),
)


def format_cost_breakdown(
    rows: list[SetRow], policies: tuple[str, ...] = ("agent", "oracle")
) -> str:
    """Markdown: where each policy's cost goes, per series and step size, as shares of the
    oracle's cost (the simulator's own accounting): reserved capacity, on-demand ordered
    ahead, on-demand recourse within a step, and the part of the reserved cost that paid
    for idle capacity (included in reserved). The first three add up to the policy's
    cost over the oracle's."""
    shown = [p for p in policies if all(p in r.metrics for r in rows if not r.error)]
    head = " | ".join(f"{p} {part}" for p in shown for part, _ in _PARTS)
    lines = [
        f"| series | step | {head} |",
        "|---|---|" + "---:|" * (len(shown) * len(_PARTS)),
    ]
    for row in rows:
        if row.error:
            continue
        base = row.metrics["oracle"].cost_accounted
        if base <= 0:
            continue
        cells = [
            f"{getattr(row.metrics[p], field) / base:.3f}" for p in shown for _, field in _PARTS
        ]
        lines.append(f"| {row.series} | {step_label(row.step_seconds)} | {' | '.join(cells)} |")
    return "\n".join(lines)
