"""``plaza load``: drive a running network with simulated members and price the load."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from plaza.errors import InvalidInputError, PlazaError

_PDS = typer.Option(
    [], "--pds", help="Sign up round-robin on this PDS instead of an entryway (repeatable)."
)


def _endpoints(data_dir: Path | None) -> dict[str, Any]:
    if data_dir is None:
        return {}
    path = data_dir / "endpoints.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InvalidInputError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidInputError(f"{path} is not a JSON object")
    return data


def _market(url: str) -> Any:
    import httpx

    from plaza.network.load_cost import MarketPicture

    try:
        summary = httpx.get(f"{url}/market", timeout=30).json()
        contracts = httpx.get(f"{url}/market/contracts", timeout=30).json()
    except (httpx.HTTPError, ValueError) as exc:
        raise PlazaError(
            f"cannot read the market at {url}: {exc}", code="MarketUnreachable"
        ) from exc
    return MarketPicture.of(summary, contracts)


def load(
    *,
    users: Annotated[int, typer.Option("--users", help="Members acting at once.")] = 10,
    duration: Annotated[float, typer.Option("--duration", help="Seconds of load.")] = 60.0,
    entryway: Annotated[
        str | None, typer.Option("--entryway", help="The entryway's URL (sign-ups go there).")
    ] = None,
    pds: list[str] = _PDS,
    data_dir: Annotated[
        Path | None,
        typer.Option("--data-dir", help="A `plaza up` data dir: its endpoints.json names all."),
    ] = None,
    market: Annotated[
        str | None, typer.Option("--market", help="The market's URL, to price the load.")
    ] = None,
    think: Annotated[float, typer.Option("--think", help="Seconds between a member's acts.")] = 1.0,
    step: Annotated[float, typer.Option("--step", help="Seconds per trace step.")] = 1.0,
    trace: Annotated[
        Path | None, typer.Option("--trace", help="Write the trace (CSV, one row per step).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Generate load: members sign up, post, follow and read their timeline.

    Each of --users members signs up (at --entryway, which chooses the host, or
    round-robin on --pds), then until --duration has passed acts every --think seconds
    in turn: a post, a follow of another member, a timeline read through their PDS
    (which forwards it to the app view). Progress goes to standard error every 5 s.
    --trace FILE records every step: requests per kind, errors, accounts held. The
    report gives throughput, errors by XRPC name, and, with --market (or a --data-dir
    whose endpoints.json names one), what the hosting contracts cost over the run
    against the simulator's oracle for the same accounts per step.

    Example:

    \b
        plaza load --users 20 --duration 60 --data-dir .plaza --trace load.csv
        plaza load --users 5 --duration 30 --pds http://127.0.0.1:2584 --json
    """
    import asyncio
    import time

    from plaza.network.load import LoadPlan, LoadRun
    from plaza.network.load_cost import compare

    try:
        ends = _endpoints(data_dir)
        plan = LoadPlan(
            users=users,
            duration_s=duration,
            entryway=entryway or ends.get("entryway") or None,
            pds=tuple(u.rstrip("/") for u in (pds or ends.get("pds") or ())),
            think_s=think,
            step_s=step,
        )
        market_url = (market or ends.get("market") or "").rstrip("/")
        where = plan.entryway or ", ".join(plan.pds)
        typer.echo(f"{users} members for {duration:g}s against {where}", err=True)
        started_ms = int(time.time() * 1000)
        run = LoadRun(plan, progress=lambda line: typer.echo(line, err=True))
        report = asyncio.run(run.run())
        if trace is not None:
            run.trace.write(trace)
            report["trace"] = str(trace)
        if market_url:
            report["cost"] = compare(
                _market(market_url), run.trace.accounts(), plan.step_s, started_ms
            )
    except PlazaError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from exc
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    typer.echo(
        f"{report['requests']} requests in {report['seconds']}s "
        f"({report['throughput_rps']} /s); ok {report['ok']}; errors {report['errors'] or 0}"
    )
    typer.echo(f"accounts {report['accounts']['before']} -> {report['accounts']['after']}")
    cost = report.get("cost")
    if cost and cost.get("oracle") is not None:
        typer.echo(
            f"cost {cost['cost']:.6f} {cost['currency']} against the oracle's "
            f"{cost['oracle']:.6f}: ratio {cost['ratio']}"
        )
    elif cost:
        typer.echo(f"cost {cost['cost']:.6f} {cost['currency']} ({cost['why']})")
