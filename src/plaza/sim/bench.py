"""Every policy on every trace of a folder: cost ratio to the oracle, unserved load, a chart.

The table has one row per trace and, per policy, its cost divided by the oracle's and its
unserved fraction. A trace that cannot be run (a bad file, an oracle that does not solve
within its time limit) gets a row saying why, and the others still run. The chart draws
each trace's demand against the capacity each policy provisioned (one panel per trace,
the first two days after the first week, so the daily pattern and the policies'
reactions are visible).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from plaza.errors import PlazaError
from plaza.sim.engine import RunResult, run
from plaza.sim.errors import SimError
from plaza.sim.metrics import Metrics
from plaza.sim.policies import POLICIES
from plaza.sim.scenario import Scenario
from plaza.sim.trace import load_trace


@dataclass(frozen=True)
class BenchRow:
    """One trace: every policy's metrics, keyed by policy name, or why it failed."""

    trace: str
    metrics: dict[str, Metrics]
    error: str = ""

    def ratio(self, policy: str) -> float:
        oracle = self.metrics["oracle"].cost
        return self.metrics[policy].cost / oracle if oracle > 0 else float("nan")


def trace_files(folder: str | Path, pattern: str = "*.csv") -> list[Path]:
    """The trace files of ``folder`` matching ``pattern``, sorted; at least one."""
    files = sorted(Path(folder).glob(pattern))
    if not files:
        raise SimError(f"no trace files matching {pattern!r} in {folder}")
    return files


def bench(
    folder: str | Path,
    *,
    pattern: str = "*.csv",
    policies: tuple[str, ...] = POLICIES,
    scenario: Scenario | None = None,
    seed: int = 0,
    keep: bool = False,
    progress: Callable[[str, str], None] | None = None,
) -> tuple[list[BenchRow], dict[str, dict[str, RunResult]]]:
    """Run ``policies`` on every trace matching ``pattern`` in ``folder``.

    Returns the rows and (when ``keep``) the full results for plotting. ``progress`` is
    called with the trace's and the policy's names before each run. A trace whose file or
    run fails gets a row with ``error`` set (the other traces still run).
    """
    files = trace_files(folder, pattern)
    if "oracle" not in policies:
        policies = (*policies, "oracle")
    rows: list[BenchRow] = []
    kept: dict[str, dict[str, RunResult]] = {}
    for f in files:
        results: dict[str, RunResult] = {}
        try:
            trace = load_trace(f, repair=True)
            for p in policies:
                if progress is not None:
                    progress(f.name, p)
                results[p] = run(trace, p, scenario=scenario, seed=seed)
        except PlazaError as exc:
            rows.append(BenchRow(f.name, {}, error=f"{exc.code}: {exc.message}"))
            continue
        rows.append(BenchRow(trace.name, {p: r.metrics for p, r in results.items()}))
        if keep:
            kept[trace.name] = results
    return rows, kept


def format_table(rows: list[BenchRow], policies: tuple[str, ...] = POLICIES) -> str:
    """A Markdown table: cost / oracle and unserved % per policy, one row per trace."""
    shown = [p for p in policies if p != "oracle"]
    head = "| trace | oracle cost | " + " | ".join(
        f"{p} cost/oracle | {p} unserved %" for p in shown
    )
    sep = "|---|---:|" + "---:|---:|" * len(shown)
    lines = [head + " |", sep]
    for row in rows:
        if row.error:
            lines.append(f"| {row.trace} | failed: {row.error} |")
            continue
        cells = [row.trace, f"{row.metrics['oracle'].cost:,.0f}"]
        for p in shown:
            cells.append(f"{row.ratio(p):.3f}")
            cells.append(f"{100 * row.metrics[p].unserved_fraction:.4f}")
        lines.append("| " + " | ".join(cells) + " |")
    ran = [r for r in rows if not r.error]
    if ran:
        cells = ["geometric mean", ""]
        for p in shown:
            ratios = np.array([r.ratio(p) for r in ran])
            cells.append(f"{float(np.exp(np.log(ratios).mean())):.3f}")
            cells.append(f"{100 * max(r.metrics[p].unserved_fraction for r in ran):.4f} (max)")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(kept: dict[str, dict[str, RunResult]], out: str | Path, *, days: float = 2.0) -> None:
    """Demand against provisioned capacity per policy, one panel per trace (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(kept)
    fig, axes = plt.subplots(len(names), 1, figsize=(11, 2.6 * len(names)), squeeze=False)
    for ax, name in zip(axes[:, 0], names, strict=True):
        results = kept[name]
        any_result = next(iter(results.values()))
        step_s = any_result.world.step_seconds
        per_day = round(86400 / step_s)
        start = min(7 * per_day, max(0, any_result.load.size - int(days * per_day)))
        stop = min(any_result.load.size, start + int(days * per_day))
        hours = (np.arange(start, stop) - start) * step_s / 3600
        ax.fill_between(
            hours, any_result.load[start:stop], color="0.85", label="demand", step="mid"
        )
        for policy, res in results.items():
            ax.plot(hours, res.capacity[start:stop], lw=1.0, label=policy, drawstyle="steps-mid")
        ax.set_title(name, fontsize=9)
        ax.set_ylabel("units")
        top = float(np.percentile(any_result.load[start:stop], 99.5)) * 1.6 + 1
        ax.set_ylim(0, top)
    axes[-1, 0].set_xlabel("hours (from day 7)")
    axes[0, 0].legend(loc="upper right", fontsize=7, ncol=5)
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    plt.close(fig)
