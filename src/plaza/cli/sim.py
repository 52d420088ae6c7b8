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
    traces: Annotated[Path, typer.Option("--traces", help="Folder of trace CSV files.")],
    pattern: Annotated[
        str, typer.Option("--pattern", help="Glob of trace files in the folder.")
    ] = "*.csv",
    plot: Annotated[Path | None, typer.Option("--plot", help="Write a PNG chart here.")] = None,
    scenario: ScenarioOpt = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed for accounts.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print every metric as JSON.")] = False,
) -> None:
    """Run every policy on every trace; print cost / oracle and unserved % per policy.

    The oracle is the offline optimum (an LP solved with HiGHS); every other policy's
    cost is shown as a ratio to it. With --plot, draws demand against the capacity each
    policy provisioned, one panel per trace. Progress goes to standard error: a bar on
    a terminal, otherwise one line per run ("[3/12] trace.csv agent"). A trace
    that fails (a bad file, an oracle past its time limit) gets a row saying why, the
    others still run, and the exit status is 1.

    Example:

    \b
        plaza sim bench --traces data/traces --pattern 'Twitter_*.csv'
        plaza sim bench --traces traces/ --plot docs/img/sim-bench.png
    """
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from plaza.sim import POLICIES, load_scenario
    from plaza.sim.bench import bench, format_table, trace_files
    from plaza.sim.bench import plot as draw

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
