"""``plaza repo ...``: inspect and verify repository CAR files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from plaza.atproto.commit import verify_commit
from plaza.atproto.crypto import PublicKey, parse_did_key
from plaza.atproto.errors import AtprotoError, CryptoError
from plaza.atproto.repo_verify import VerifiedRepo, import_car
from plaza.cli import params
from plaza.errors import PlazaError
from plaza.services.directory.client import DirectoryLookupError, fetch_state

app = typer.Typer(
    name="repo",
    help="Inspect and verify AT Protocol repository CAR files.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

UNCHECKED = "unchecked: pass --key or --directory"


def resolve_signing_key(directory: str, did: str) -> PublicKey:
    """The ``#atproto`` key of ``did``, from its audit log read from a PLC-style directory
    and re-validated here: a directory can withhold a DID's log, not forge it."""
    state = fetch_state(directory, did)
    key = state.data.signing_key if state.data is not None else None
    if key is None:
        raise DirectoryLookupError(f"{did} is deactivated or lists no #atproto signing key")
    try:
        return parse_did_key(key)
    except CryptoError as exc:
        raise DirectoryLookupError(
            f"the #atproto key of {did} is malformed: {exc.message}"
        ) from exc


def _summary(repo: VerifiedRepo, signature: str) -> dict[str, Any]:
    return {
        "valid": True,
        "did": repo.did,
        "rev": repo.rev,
        "commit": str(repo.commit_cid),
        "data": str(repo.data),
        "version": repo.commit.version,
        "records": len(repo.records),
        "blocks": len(repo.blocks),
        "unreferenced_blocks": repo.unreferenced_blocks,
        "signature": signature,
    }


def _fail(exc: PlazaError, as_json: bool) -> None:
    if as_json:
        out = {"valid": False, "error": {"code": exc.code, "message": exc.message}}
        typer.echo(json.dumps(out, indent=2))
    else:
        typer.echo(f"INVALID {exc.code}: {exc.message}")
    raise typer.Exit(1)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        typer.echo(f"error: cannot read {path}: {exc.strerror}", err=True)
        raise typer.Exit(2) from exc


@app.command("verify")
def verify(
    file: Annotated[Path, typer.Argument(help="The repository CAR file.", dir_okay=False)],
    did: str | None = typer.Option(
        None, "--did", callback=params.did, help="The DID the repository must belong to."
    ),
    key: str | None = typer.Option(
        None, "--key", help="Check the commit signature against this did:key."
    ),
    directory: str | None = typer.Option(
        None, "--directory", help="Resolve the DID's #atproto key from this PLC directory URL."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Verify a repository CAR completely and say what, if anything, is wrong.

    Re-hashes every block, checks that the root is in the file and is a well-formed
    commit (for --did, if given), walks the whole MST (every node present, canonical,
    keys in order, every record present and valid) and rebuilds it to the commit's
    root. The commit signature is checked against --key, or against the #atproto key of
    the DID's audit log read from --directory (re-validated here, so the directory is
    trusted only to hand over the current log); with neither, the output says the
    signature was not checked. Exits 0 when valid, 1 when invalid, 2 on a usage error.

    Example:

    \b
        plaza repo verify alice.car --json
        plaza repo verify alice.car --did did:plc:abc --key did:key:zQ3sh...
        plaza repo verify alice.car --directory http://127.0.0.1:2582
    """
    if key is not None and directory is not None:
        typer.echo("error: pass --key or --directory, not both", err=True)
        raise typer.Exit(2)
    public: PublicKey | None = None
    if key is not None:
        try:
            public = PublicKey.from_did_key(key)
        except CryptoError as exc:
            typer.echo(f"error: --key is not a usable did:key: {exc.message}", err=True)
            raise typer.Exit(2) from exc
    data = _read(file)
    try:
        repo = import_car(data, did=did)
        if directory is not None:
            public = resolve_signing_key(directory, repo.did)
        if public is not None:
            verify_commit(repo.commit, public)
    except DirectoryLookupError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from exc
    except AtprotoError as exc:
        _fail(exc, as_json)
        return
    signature = UNCHECKED if public is None else f"verified against {public.did_key()}"
    summary = _summary(repo, signature)
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    typer.echo(f"VALID repository of {repo.did}")
    for name in ("rev", "commit", "data", "records", "blocks", "signature"):
        typer.echo(f"  {name}: {summary[name]}")


@app.command("ls")
def ls(
    file: Annotated[Path, typer.Argument(help="The repository CAR file.", dir_okay=False)],
) -> None:
    """List the records of a repository CAR, one ``path cid`` line each, in key order.

    The file is verified as by ``plaza repo verify`` (without the signature) first;
    an invalid file prints the reason and exits 1.

    Example:

    \b
        plaza repo ls alice.car
        plaza repo ls alice.car | grep app.bsky.feed.post
    """
    data = _read(file)
    try:
        repo = import_car(data)
    except AtprotoError as exc:
        typer.echo(f"INVALID {exc.code}: {exc.message}", err=True)
        raise typer.Exit(1) from exc
    for path, cid in repo.records.items():
        typer.echo(f"{path} {cid}")
