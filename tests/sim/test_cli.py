from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from plaza.cli import app


def write_trace(path: Path, values: list[float]) -> Path:
    lines = ["timestamp,value"]
    for i, v in enumerate(values):
        lines.append(f"2015-03-{1 + i // 288:02d} {(i % 288) // 12:02d}:{(i % 12) * 5:02d}:00,{v}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_sim_run_json(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    trace = write_trace(tmp_path / "t.csv", list(np.round(rng.gamma(3, 5, 400))))
    scenario = tmp_path / "s.toml"
    scenario.write_text("[accounts]\ncount = 500\n")
    result = CliRunner().invoke(
        app,
        [
            "sim",
            "run",
            "--trace",
            str(trace),
            "--policy",
            "agent",
            "--scenario",
            str(scenario),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.output)
    for key in (
        "cost",
        "unserved_fraction",
        "sla_violation_fraction",
        "p99_wait_steps",
        "records_lost",
        "migrations",
        "max_provider_share",
        "hhi",
        "nakamoto",
        "escalations",
        "guard_denials",
        "human_interventions",
    ):
        assert key in metrics
    assert metrics["cost"] > 0
    assert metrics["human_interventions"] == 0


def test_sim_run_rejects_bad_input(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,value\n2015-01-01 00:00:00,1\n2015-01-01 00:05:00,x\n")
    result = CliRunner().invoke(app, ["sim", "run", "--trace", str(bad)])
    assert result.exit_code == 1
    assert "bad.csv:3" in result.output
    good = write_trace(tmp_path / "g.csv", [1.0] * 50)
    result = CliRunner().invoke(
        app, ["sim", "run", "--trace", str(good), "--faults", "meteor:p1@1h"]
    )
    assert result.exit_code == 1
    assert "InvalidFaultSpec" in result.output
    result = CliRunner().invoke(app, ["sim", "run", "--trace", str(good), "--policy", "magic"])
    assert result.exit_code == 1


def test_sim_bench_table_and_plot(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    folder = tmp_path / "traces"
    folder.mkdir()
    write_trace(folder / "a.csv", list(np.round(rng.gamma(3, 5, 500))))
    scenario = tmp_path / "s.toml"
    scenario.write_text("[accounts]\ncount = 300\nsignups_per_day = 0\n")
    out = tmp_path / "chart.png"
    result = CliRunner().invoke(
        app,
        ["sim", "bench", "--traces", str(folder), "--scenario", str(scenario), "--plot", str(out)],
    )
    assert result.exit_code == 0, result.output
    assert "agent cost/oracle" in result.stdout
    assert "| a.csv |" in result.stdout
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # Progress goes to standard error (a line per run when it is not a terminal), and
    # nothing of it to standard output, which holds only the table.
    from plaza.sim import POLICIES

    progress = result.stderr.splitlines()
    assert progress == [f"[{i}/{len(POLICIES)}] a.csv {p}" for i, p in enumerate(POLICIES, 1)]
    assert "[1/" not in result.stdout


def test_sim_bench_reports_a_failing_trace_and_runs_the_others(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    folder = tmp_path / "traces"
    folder.mkdir()
    write_trace(folder / "a.csv", list(np.round(rng.gamma(3, 5, 400))))
    (folder / "b.csv").write_text("timestamp,value\n2015-01-01 00:00:00,1\nnot a row\n")
    scenario = tmp_path / "s.toml"
    scenario.write_text("[accounts]\ncount = 300\nsignups_per_day = 0\n")
    result = CliRunner().invoke(
        app, ["sim", "bench", "--traces", str(folder), "--scenario", str(scenario)]
    )
    assert result.exit_code == 1
    assert "| a.csv | " in result.output
    assert "| b.csv | failed: " in result.output
    assert "1 trace(s) failed: b.csv" in result.output
    mean = next(line for line in result.output.splitlines() if line.startswith("| geometric"))
    row = next(line for line in result.output.splitlines() if line.startswith("| a.csv"))
    assert mean.split("|")[3] == row.split("|")[3]  # the mean is over the traces that ran


def test_sim_bench_without_traces_is_an_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["sim", "bench", "--traces", str(tmp_path)])
    assert result.exit_code == 1
    assert "no trace files" in result.output
