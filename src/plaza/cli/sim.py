"""``plaza sim ...``: run the simulator on a demand trace, or every policy on a folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from plaza.errors import PlazaError

app = typer.Typer(
    name="sim",
    help="Simulate Plaza's agents and baseline policies on demand traces.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


ScenarioOpt = Annotated[Path | None, typer.Option("--scenario", help="TOML scenario file.")]


def _fail(exc: PlazaError) -> None:
    typer.echo(f"error: {exc.code}: {exc.message}", err=True)
    raise typer.Exit(1)


@app.command("run")
def run_cmd(
    *,
    trace: Annotated[Path, typer.Option("--trace", help="CSV file with timestamp,value rows.")],
    policy: Annotated[
        str, typer.Option("--policy", help="agent, reactive, static or oracle.")
    ] = "agent",
    seed: Annotated[int, typer.Option("--seed", help="Seed for accounts and chaos faults.")] = 0,
    faults: Annotated[str, typer.Option("--faults", help="Fault spec, e.g. crash:p3@2d+4h.")] = "",
    scenario: ScenarioOpt = None,
    repair: Annotated[
        bool,
        typer.Option("--repair", help="Order rows, merge repeats, snap rows to the step grid."),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON.")] = False,
) -> None:
    """Simulate one policy on one trace and print its metrics.

    Each trace value is the load arriving in that step, in capacity units. Load waits in
    a FIFO queue and counts as unserved if it waits longer than the SLA delay. Prints
    cost, unserved_fraction, sla_violation_fraction, p99_wait_steps, records_lost,
    migrations, max_provider_share, hhi, nakamoto, escalations, guard_denials and
    human_interventions. Exits 1 on a bad trace, scenario or fault spec.

    Example:

    \b
        plaza sim run --trace Twitter_volume_FB.csv --policy agent --json
        plaza sim run --trace t.csv --policy agent --faults crash:p3@2d+4h,vanish:p4@3d
    """
    from plaza.sim import load_scenario, load_trace, run

    try:
        result = run(
            load_trace(trace, repair=repair),
            policy,
            scenario=load_scenario(scenario),
            faults=faults or None,
            seed=seed,
        )
    except PlazaError as exc:
        _fail(exc)
        return
    metrics = result.metrics.as_dict()
    if as_json:
        typer.echo(json.dumps(metrics, indent=2))
    else:
        width = max(len(k) for k in metrics)
        for key, value in metrics.items():
            typer.echo(f"{key.ljust(width)}  {value}")


@app.command("bench")
def bench_cmd(
    *,
    traces: Annotated[
        Path | None, typer.Option("--traces", help="Folder of trace CSV files.")
    ] = None,
    pattern: Annotated[
        str, typer.Option("--pattern", help="Glob of trace files in the folder.")
    ] = "*.csv",
    steps: Annotated[
        str,
        typer.Option(
            "--steps",
            help="Run the capacity test set at these step sizes, e.g. 10m,15m,30m,60m "
            "(each trace resampled, load summed per step).",
        ),
    ] = "",
    synthetic: Annotated[
        int,
        typer.Option(
            "--synthetic", help="Add this many synthetic series (drawn from --seed) to the set."
        ),
    ] = 0,
    days: Annotated[int, typer.Option("--days", help="Length of each synthetic series.")] = 28,
    jobs: Annotated[
        int, typer.Option("--jobs", help="Test set: run this many series at once (processes).")
    ] = 1,
    plot: Annotated[Path | None, typer.Option("--plot", help="Write a PNG chart here.")] = None,
    scenario: ScenarioOpt = None,
    seed: Annotated[
        int, typer.Option("--seed", help="Seed for accounts and the synthetic series.")
    ] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print every metric as JSON.")] = False,
) -> None:
    """Run every policy on every trace; print cost / oracle and unserved % per policy.

    The oracle is the offline optimum (an LP solved with HiGHS); every other policy's
    cost is shown as a ratio to it. With --plot, draws demand against the capacity each
    policy provisioned, one panel per trace. Progress goes to standard error: a bar on
    a terminal, otherwise one line per run ("[3/12] trace.csv agent"). A trace
    that fails (a bad file, an oracle past its time limit) gets a row saying why, the
    others still run, and the exit status is 1.

    With --steps or --synthetic, runs the capacity test set instead: every trace
    resampled to each step size, plus --synthetic series with daily and weekly cycles,
    trends and flash crowds drawn from --seed (nothing is written to disk), each run by
    the agent, the reactive baseline and the oracle. Prints, per series and step size,
    agent/oracle, reactive/oracle, the agent's unserved % and records lost, then the
    geometric mean and the worst case per step size, then where the agent's and the
    oracle's costs go (reserved, on-demand ordered ahead, recourse within a step, idle
    reserved capacity) as shares of the oracle's cost. --jobs runs that many series at
    once in worker processes (the same rows, in the same order).

    Example:

    \b
        plaza sim bench --traces data/traces --pattern 'Twitter_*.csv'
        plaza sim bench --traces traces/ --plot docs/img/sim-bench.png
        plaza sim bench --traces data/traces --steps 10m,15m,30m,60m --synthetic 4 --seed 1
        plaza sim bench --steps 30m,60m --synthetic 6 --jobs 2
    """
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from plaza.sim import POLICIES, load_scenario
    from plaza.sim.bench import bench, format_table, trace_files
    from plaza.sim.bench import plot as draw

    if steps or synthetic:
        _bench_set(traces, pattern, steps or "5m", synthetic, days, scenario, seed, as_json, jobs)
        return
    if traces is None:
        typer.echo("error: --traces is required (or --steps / --synthetic)", err=True)
        raise typer.Exit(2)
    try:
        files = trace_files(traces, pattern)
        chosen = load_scenario(scenario)
    except PlazaError as exc:
        _fail(exc)
        return
    console = Console(stderr=True)
    total = len(files) * len(POLICIES)
    started = [0]
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} runs"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    ) as bar:
        task = bar.add_task("", total=total)

        def advance(trace: str, policy: str) -> None:
            bar.update(task, completed=started[0], description=f"{trace} {policy}")
            started[0] += 1
            if not console.is_terminal:  # a log or a pipe: a line per run, not a bar
                typer.echo(f"[{started[0]}/{total}] {trace} {policy}", err=True)

        rows, kept = bench(
            traces, pattern=pattern, scenario=chosen, seed=seed, keep=bool(plot), progress=advance
        )
    if as_json:
        out = {
            r.trace: {"error": r.error}
            if r.error
            else {p: m.as_dict() for p, m in r.metrics.items()}
            for r in rows
        }
        typer.echo(json.dumps(out, indent=2))
    else:
        typer.echo(format_table(rows))
    if plot:
        draw(kept, plot)
    failed = [r.trace for r in rows if r.error]
    if failed:
        typer.echo(f"error: {len(failed)} trace(s) failed: {', '.join(failed)}", err=True)
        raise typer.Exit(1)


def _bench_set(  # noqa: PLR0917 - the command's options, passed on
    traces: Path | None,
    pattern: str,
    steps: str,
    synthetic: int,
    days: int,
    scenario: Path | None,
    seed: int,
    as_json: bool,
    jobs: int = 1,
) -> None:
    """``plaza sim bench --steps ...``: the capacity test set (plaza.sim.testset)."""
    from plaza.sim import load_scenario
    from plaza.sim.bench import trace_files
    from plaza.sim.testset import (
        SET_POLICIES,
        format_cost_breakdown,
        format_set_table,
        parse_steps,
        run_set,
        series,
    )

    if synthetic < 0 or jobs < 1:
        typer.echo("error: --synthetic must be >= 0 and --jobs >= 1", err=True)
        raise typer.Exit(2)
    try:
        step_sizes = parse_steps(steps)
        files = trace_files(traces, pattern) if traces is not None else []
        chosen = load_scenario(scenario)
        if synthetic:
            from plaza.sim.synthetic import synthetic_values

            synthetic_values(seed, 0, days=days)  # validates the seed and the length
    except PlazaError as exc:
        _fail(exc)
        return
    total = (len(files) + synthetic) * len(step_sizes) * (len(SET_POLICIES) if jobs == 1 else 1)
    started = [0]

    def advance(name: str, policy: str) -> None:
        started[0] += 1
        typer.echo(f"[{started[0]}/{total}] {name} {policy}", err=True)

    rows = run_set(
        series(
            traces, pattern=pattern, steps=step_sizes, synthetic=synthetic, seed=seed, days=days
        ),
        scenario=chosen,
        seed=seed,
        progress=advance,
        jobs=jobs,
    )
    if as_json:
        out = [
            {"series": r.series, "step_seconds": r.step_seconds, "error": r.error}
            if r.error
            else {
                "series": r.series,
                "step_seconds": r.step_seconds,
                **{p: m.as_dict() for p, m in r.metrics.items()},
            }
            for r in rows
        ]
        typer.echo(json.dumps(out, indent=2))
    else:
        typer.echo(format_set_table(rows))
        typer.echo("")
        typer.echo(format_cost_breakdown(rows))
    failed = [f"{r.series}@{r.step_seconds}s" for r in rows if r.error]
    if failed:
        typer.echo(f"error: {len(failed)} series failed: {', '.join(failed)}", err=True)
        raise typer.Exit(1)
