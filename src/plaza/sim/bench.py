"""Every policy on every trace of a folder: cost ratio to the oracle, unserved load, a chart.

The table has one row per trace and, per policy, its cost divided by the oracle's and its
unserved fraction. The chart draws each trace's demand against the capacity each policy
provisioned (one panel per trace, the first two days after the first week, so the
daily pattern and the policies' reactions are visible).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from plaza.sim.engine import RunResult, run
from plaza.sim.errors import SimError
from plaza.sim.metrics import Metrics
from plaza.sim.policies import POLICIES
from plaza.sim.scenario import Scenario
from plaza.sim.trace import load_trace


@dataclass(frozen=True)
class BenchRow:
    """One trace: every policy's metrics, keyed by policy name."""

    trace: str
    metrics: dict[str, Metrics]

    def ratio(self, policy: str) -> float:
        oracle = self.metrics["oracle"].cost
        return self.metrics[policy].cost / oracle if oracle > 0 else float("nan")


def bench(
    folder: str | Path,
    *,
    pattern: str = "*.csv",
    policies: tuple[str, ...] = POLICIES,
    scenario: Scenario | None = None,
    seed: int = 0,
    keep: bool = False,
) -> tuple[list[BenchRow], dict[str, dict[str, RunResult]]]:
    """Run ``policies`` on every trace matching ``pattern`` in ``folder``.

    Returns the rows and (when ``keep``) the full results for plotting.
    """
    files = sorted(Path(folder).glob(pattern))
    if not files:
        raise SimError(f"no trace files matching {pattern!r} in {folder}")
    if "oracle" not in policies:
        policies = (*policies, "oracle")
    rows: list[BenchRow] = []
    kept: dict[str, dict[str, RunResult]] = {}
    for f in files:
        trace = load_trace(f, repair=True)
        results = {p: run(trace, p, scenario=scenario, seed=seed) for p in policies}
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
        cells = [row.trace, f"{row.metrics['oracle'].cost:,.0f}"]
        for p in shown:
            cells.append(f"{row.ratio(p):.3f}")
            cells.append(f"{100 * row.metrics[p].unserved_fraction:.4f}")
        lines.append("| " + " | ".join(cells) + " |")
    if rows:
        cells = ["geometric mean", ""]
        for p in shown:
            ratios = np.array([r.ratio(p) for r in rows])
            cells.append(f"{float(np.exp(np.log(ratios).mean())):.3f}")
            cells.append(f"{100 * max(r.metrics[p].unserved_fraction for r in rows):.4f} (max)")
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
