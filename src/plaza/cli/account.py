"""``plaza account ...``: act on an account as its member (migration)."""

from __future__ import annotations

import os
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from plaza.cli import params
from plaza.errors import PlazaError

app = typer.Typer(
    name="account",
    help="Act on an account as its member: move it between hosting providers.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def _token_source(did: str, mail_dir: Path | None, console: Console) -> str:
    from plaza.services.pds.mail import read_token

    env = os.environ.get("PLAZA_PLC_TOKEN")
    if env:
        return env
    if mail_dir is not None:
        token = read_token(mail_dir, did, "plc_operation")
        if token:
            return token
        console.print(f"[yellow]no confirmation token for {did} in {mail_dir}[/]")
    value: str = typer.prompt("Confirmation token sent by the old host")
    return value


@app.command("migrate")
def migrate(
    *,
    did: str = typer.Option(..., "--did", callback=params.did, help="The account's DID."),
    from_url: str = typer.Option(..., "--from", help="URL of the current (old) host."),
    to_url: str = typer.Option(..., "--to", help="URL of the new host."),
    directory: str = typer.Option(
        "http://127.0.0.1:2582",
        "--directory",
        envvar="PLAZA_DIRECTORY",
        help="URL of the PLC directory.",
    ),
    mail_dir: str | None = typer.Option(
        None, "--mail-dir", help="Read the old host's confirmation token from this outbox."
    ),
    email: str | None = typer.Option(None, "--email", help="Email for the new account."),
) -> None:
    """Move an account to another hosting provider by the AT Protocol's migration flow.

    Logs in to the old host, creates the account on the new host with the same DID,
    copies the repository, blobs and preferences, moves the identity with a signed PLC
    operation (the member's own rotation keys stay first), activates the new account,
    deactivates the old one, and verifies the result. The password comes from
    PLAZA_PASSWORD or a prompt; the old host's confirmation token from PLAZA_PLC_TOKEN,
    --mail-dir, or a prompt. Exits 1 if a step or a check fails.

    Example:

    \b
        plaza account migrate --did did:plc:abc... --from http://127.0.0.1:2583 \\
            --to http://127.0.0.1:2584 --mail-dir .plaza/pds1/mail
    """
    from plaza.services.pds.migration import STEPS, migrate_account

    console = Console()
    password = os.environ.get("PLAZA_PASSWORD") or typer.prompt("Password", hide_input=True)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task(STEPS[0], total=len(STEPS), detail="")

        def on_step(index: int, name: str, detail: str) -> None:
            progress.update(task, completed=index, description=name, detail=detail)

        def token() -> str:
            progress.stop()
            try:
                return _token_source(did, Path(mail_dir) if mail_dir else None, console)
            finally:
                progress.start()

        try:
            report = migrate_account(
                did=did,
                old_url=from_url,
                new_url=to_url,
                password=password,
                directory_url=directory,
                plc_token=token,
                email=email,
                progress=on_step,
            )
        except PlazaError as exc:
            progress.stop()
            console.print(f"[red]migration failed:[/] {exc.message}")
            raise typer.Exit(1) from exc
        progress.update(task, completed=len(STEPS), description="done", detail="")
    table = Table(title=f"{report.handle} ({report.did})")
    table.add_column("check")
    table.add_column("result")
    for name, ok in report.checks.items():
        table.add_row(name, "[green]ok[/]" if ok else "[red]FAILED[/]")
    console.print(table)
    console.print(
        f"moved {report.repo_bytes} repository bytes and {report.blobs} blobs "
        f"from {report.old_url} to {report.new_url}; rev {report.rev}"
    )
    if not report.ok:
        raise typer.Exit(1)
