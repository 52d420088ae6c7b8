"""``plaza repo ...``: inspect and verify repository CAR files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from plaza.atproto.commit import verify_commit
from plaza.atproto.crypto import ES256, ES256K, Alg, PublicKey, b58decode
from plaza.atproto.errors import AtprotoError, CryptoError
from plaza.atproto.repo_verify import VerifiedRepo, import_car
from plaza.errors import PlazaError

app = typer.Typer(
    name="repo",
    help="Inspect and verify AT Protocol repository CAR files.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

UNCHECKED = "unchecked: pass --key or --directory"
_LEGACY_KEY_TYPES: dict[str, Alg] = {
    "EcdsaSecp256k1VerificationKey2019": ES256K,
    "EcdsaSecp256r1VerificationKey2019": ES256,
}


class ResolutionError(PlazaError):
    """The DID could not be resolved to an ``#atproto`` signing key."""

    code = "DidResolutionFailed"
    status = 502


def resolve_signing_key(directory: str, did: str, *, timeout: float = 10.0) -> PublicKey:
    """The ``#atproto`` verification key in ``did``'s document, fetched from a PLC-style
    directory as ``GET {directory}/{did}``."""
    url = f"{directory.rstrip('/')}/{did}"
    try:
        response = httpx.get(url, timeout=timeout, follow_redirects=True)
    except httpx.HTTPError as exc:
        raise ResolutionError(f"could not reach {url}: {exc}") from exc
    if response.status_code != 200:
        raise ResolutionError(f"{url} answered HTTP {response.status_code}")
    try:
        doc = response.json()
        methods = doc.get("verificationMethod") or []
    except (ValueError, AttributeError) as exc:
        raise ResolutionError(f"{url} did not return a DID document") from exc
    for method in methods:
        if not isinstance(method, dict):
            continue
        ident = str(method.get("id", ""))
        if ident not in ("#atproto", f"{did}#atproto"):
            continue
        multibase = method.get("publicKeyMultibase")
        kind = method.get("type")
        try:
            if kind == "Multikey":
                return PublicKey.from_multikey(str(multibase))
            if kind in _LEGACY_KEY_TYPES and isinstance(multibase, str) and multibase[:1] == "z":
                return PublicKey(_LEGACY_KEY_TYPES[kind], b58decode(multibase[1:]))
        except CryptoError as exc:
            raise ResolutionError(f"the #atproto key of {did} is malformed: {exc.message}") from exc
        raise ResolutionError(f"the #atproto key of {did} has unsupported type {kind!r}")
    raise ResolutionError(f"the DID document of {did} has no #atproto verification method")


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
    did: str | None = typer.Option(None, "--did", help="The DID the repository must belong to."),
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
    root. The commit signature is checked against --key, or against the key the DID
    document from --directory lists; with neither, the output says the signature was
    not checked. Exits 0 when valid, 1 when invalid, 2 on a usage error.

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
    except ResolutionError as exc:
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
