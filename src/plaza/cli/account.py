"""``plaza account ...``: act on an account as its member (migration, recovery keys,
recovery from an archive when the host is gone)."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from plaza.atproto.crypto import PrivateKey
from plaza.cli import params
from plaza.errors import PlazaError

app = typer.Typer(
    name="account",
    help="Act on an account as its member: move it between hosting providers, keep a "
    "recovery key, leave a dead host.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


_DIRECTORY = typer.Option(
    "http://127.0.0.1:2582",
    "--directory",
    envvar="PLAZA_DIRECTORY",
    help="URL of the PLC directory.",
)


def _read_key(path: Path, console: Console) -> PrivateKey:
    """The private key in ``path`` (never printed); a file others can read is warned of."""
    from plaza.atproto.crypto import parse_private_key
    from plaza.atproto.errors import CryptoError

    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        text = path.read_text(encoding="ascii", errors="replace")
    except OSError as exc:
        console.print(f"[red]cannot read {path}:[/] {exc.strerror or exc}")
        raise typer.Exit(1) from exc
    if mode & 0o077:
        console.print(
            f"[yellow]warning: {path} is readable by others (mode {mode:o}); chmod 600 {path}[/]"
        )
    try:
        return parse_private_key(text)
    except CryptoError as exc:
        console.print(f"[red]{path} holds no usable private key:[/] {exc.message}")
        raise typer.Exit(1) from exc


@contextmanager
def _steps(console: Console, steps: tuple[str, ...]) -> Iterator[Callable[[int, str, str], None]]:
    """A progress bar over ``steps``; yields the callback the library reports to."""
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task(steps[0], total=len(steps), detail="")

        def on_step(index: int, name: str, detail: str) -> None:
            progress.update(task, completed=index, description=name, detail=detail)

        yield on_step
        progress.update(task, completed=len(steps), description="done", detail="")


def _checks_table(title: str, checks: dict[str, bool]) -> Table:
    table = Table(title=title)
    table.add_column("check")
    table.add_column("result")
    for name, ok in checks.items():
        table.add_row(name, "[green]ok[/]" if ok else "[red]FAILED[/]")
    return table


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


@app.command("recover")
def recover(
    *,
    did: str = typer.Option(..., "--did", callback=params.did, help="The account's DID."),
    key: str = typer.Option(
        ...,
        "--key",
        help="File with a rotation key the DID lists: 64 hex characters or a multibase "
        "private key.",
    ),
    archive: str = typer.Option(..., "--archive", help="URL of an archive holding the account."),
    to_url: str = typer.Option(..., "--to", help="URL of the new host."),
    new_password: str = typer.Option(
        ...,
        "--new-password",
        envvar="PLAZA_NEW_PASSWORD",
        help="Password of the account on the new host.",
    ),
    directory: str = _DIRECTORY,
    handle: str | None = typer.Option(None, "--handle", help="Handle (default: the DID's)."),
    email: str | None = typer.Option(None, "--email", help="Email for the new account."),
) -> None:
    """Move an account to a new host from an archive's copy, without its old host.

    Not a single call goes to the old host. The directory's audit log is replayed and
    must list the key; the archive's repository is verified in full; the new host
    reserves a signing key; a PLC operation signed with the key names the new host and
    that key (the dead host's rotation key dropped, the member's kept first); the new
    host creates the account, adds its rotation key, imports the repository (re-signed
    with the new key) and every blob, and activates it; then the result is verified.
    A failed step says what state is left; re-running resumes. The key is never
    printed. Exits 1 if a step or a check fails.

    Example:

    \b
        plaza account recover --did did:plc:abc... --key recovery.key \\
            --archive http://127.0.0.1:2586 --to http://127.0.0.1:2584 \\
            --new-password 'a new password'
    """
    from plaza.services.pds.recovery import STEPS, recover_account

    console = Console(emoji=False)  # did:key must not become an emoji
    rotation_key = _read_key(Path(key), console)
    try:
        with _steps(console, STEPS) as on_step:
            report = recover_account(
                did=did,
                rotation_key=rotation_key,
                archive_url=archive,
                new_url=to_url,
                password=new_password,
                directory_url=directory,
                handle=handle,
                email=email,
                progress=on_step,
            )
    except PlazaError as exc:
        console.print(f"[red]recovery failed:[/] {exc.message}")
        raise typer.Exit(1) from exc
    console.print(_checks_table(f"{report.handle} ({report.did})", report.checks))
    resumed = f"; resumed past: {', '.join(report.resumed)}" if report.resumed else ""
    console.print(
        f"restored {report.records} records ({report.repo_bytes} repository bytes) and "
        f"{report.blobs} blobs from {report.archive_url} to {report.new_url}; "
        f"signing key {report.signing_key}; rev {report.rev}{resumed}"
    )
    if not report.ok:
        raise typer.Exit(1)


_PDS = typer.Option(
    ...,
    "--pds",
    help="URL of the account's current host, or of the entryway it signed up at.",
)
_MAIL_DIR = typer.Option(
    None, "--mail-dir", help="Read the host's confirmation token from this outbox."
)


def _rotation_change(
    change: Callable[..., list[str]], *, did: str, pds: str, key_did: str, mail_dir: str | None,
    directory: str, console: Console,
) -> list[str]:  # fmt: skip
    password = os.environ.get("PLAZA_PASSWORD") or typer.prompt("Password", hide_input=True)
    try:
        return change(
            did=did,
            pds_url=pds,
            key_did=key_did,
            password=password,
            directory_url=directory,
            plc_token=lambda: _token_source(did, Path(mail_dir) if mail_dir else None, console),
        )
    except PlazaError as exc:
        console.print(f"[red]changing the rotation keys failed:[/] {exc.message}")
        raise typer.Exit(1) from exc


def _print_keys(console: Console, did: str, keys: list[str], mine: str | None) -> None:
    console.print(f"rotation keys of {did}, in priority order:")
    for i, k in enumerate(keys, 1):
        console.print(f"  {i}. {k}{'  (yours)' if k == mine else ''}")


@app.command("add-recovery-key")
def add_recovery_key(
    *,
    did: str = typer.Option(..., "--did", callback=params.did, help="The account's DID."),
    pds: str = _PDS,
    key: str = typer.Option(..., "--key", help="File with the recovery key (private)."),
    mail_dir: str | None = _MAIL_DIR,
    directory: str = _DIRECTORY,
) -> None:
    """List your own recovery key first among the account's rotation keys.

    Uses the host's standard identity calls: log in (password from PLAZA_PASSWORD or a
    prompt; at --pds, which may be the entryway: its session names the host to go on
    at), requestPlcOperationSignature (the confirmation token from PLAZA_PLC_TOKEN,
    --mail-dir, or a prompt), signPlcOperation with the key's did:key first and the
    other keys in their order, submitPlcOperation. Your key then stands above the DAO
    agent's: within 72 hours you can undo anything a lower key signs. Only the key's
    public did:key leaves this machine. Exits 1 on failure.

    Example:

    \b
        plaza account add-recovery-key --did did:plc:abc... \\
            --pds http://127.0.0.1:2583 --key recovery.key --mail-dir .plaza/pds1/mail
    """
    from plaza.services.pds import rotation_keys

    console = Console(emoji=False)
    key_did = _read_key(Path(key), console).did_key()
    keys = _rotation_change(
        rotation_keys.add_recovery_key, did=did, pds=pds, key_did=key_did,
        mail_dir=mail_dir, directory=directory, console=console,
    )  # fmt: skip
    _print_keys(console, did, keys, key_did)


@app.command("remove-recovery-key")
def remove_recovery_key(
    *,
    did: str = typer.Option(..., "--did", callback=params.did, help="The account's DID."),
    pds: str = _PDS,
    key_did: str = typer.Option(
        ..., "--key-did", help="The did:key to drop (the DAO agent's, to withdraw consent)."
    ),
    mail_dir: str | None = _MAIL_DIR,
    directory: str = _DIRECTORY,
) -> None:
    """Drop a key from the account's rotation keys; the others keep their order.

    An account made at the entryway lists the DAO agent's key, so the agents can
    restore it from the archive if its host dies; dropping it withdraws that consent
    (the agents then leave the account where it is). The same standard identity calls
    as add-recovery-key (password from PLAZA_PASSWORD or a prompt; the confirmation
    token from PLAZA_PLC_TOKEN, --mail-dir, or a prompt). The DID's last rotation key is
    never dropped. Exits 1 on failure.

    Example:

    \b
        plaza account remove-recovery-key --did did:plc:abc... \\
            --pds http://127.0.0.1:2591 --key-did did:key:zQ3sh... \\
            --mail-dir .plaza/pds1/mail
    """
    from plaza.services.pds import rotation_keys

    console = Console(emoji=False)
    keys = _rotation_change(
        rotation_keys.remove_recovery_key, did=did, pds=pds, key_did=key_did,
        mail_dir=mail_dir, directory=directory, console=console,
    )  # fmt: skip
    _print_keys(console, did, keys, None)


@app.command("new-recovery-key")
def new_recovery_key(
    *,
    out: str = typer.Option(..., "--out", help="File to write the new key to (mode 0600)."),
) -> None:
    """Make a fresh secp256k1 recovery key: its secret goes to --out, its did:key is printed.

    The file holds 64 hex characters, readable only by you; an existing file is never
    overwritten. Give the printed did:key as createAccount's recoveryKey, or list it
    later with add-recovery-key; keep the file (offline) for recover.

    Example:

    \b
        plaza account new-recovery-key --out recovery.key
    """
    from plaza.atproto.crypto import ES256K
    from plaza.services.pds.files import write_private

    console = Console(emoji=False)
    path = Path(out)
    if path.exists() or path.is_symlink():
        console.print(f"[red]{out} exists; not overwriting a key[/]")
        raise typer.Exit(1)
    key = PrivateKey.generate(ES256K)
    try:
        write_private(path, key.to_bytes().hex().encode() + b"\n")
    except PlazaError as exc:
        console.print(f"[red]{exc.message}[/]")
        raise typer.Exit(1) from exc
    print(key.did_key())
