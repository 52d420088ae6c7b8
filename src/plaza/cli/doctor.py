"""``plaza doctor``: check the environment and print what was found."""

from __future__ import annotations

import json

import typer

from plaza.doctor import run_checks


def doctor(
    as_json: bool = typer.Option(False, "--json", help="Print the findings as JSON."),
    pg_url: str = typer.Option(
        "postgresql://postgres@127.0.0.1:5432/test", "--pg", help="PostgreSQL URL to probe."
    ),
) -> None:
    """Check the environment Plaza runs in and print what was found.

    Reports the Python version, the installed dependencies, whether PostgreSQL answers,
    and the optional tools (Node.js,
    Chromium). Exits 1 when a required check fails.

    Example:
        plaza doctor
        plaza doctor --json
    """
    checks = run_checks(pg_url=pg_url)
    if as_json:
        typer.echo(json.dumps([c.as_dict() for c in checks], indent=2))
    else:
        width = max(len(c.name) for c in checks)
        for c in checks:
            mark = "ok  " if c.ok else ("FAIL" if c.required else "n/a ")
            typer.echo(f"{mark} {c.name.ljust(width)}  {c.detail}")
    if any(c.required and not c.ok for c in checks):
        raise typer.Exit(1)
