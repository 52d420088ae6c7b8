"""``plaza dao keys ...``: signing identities in the local keystore."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from plaza.cli.dao_support import AsJson, At, keystore, now_ms, open_dao
from plaza.cli.ledger import DATA_DIR, DataDir, Db, reporting
from plaza.errors import InvalidInputError


def keys_new(
    name: Annotated[str, typer.Argument(help="A name for the identity (e.g. alice).")],
    alg: Annotated[str, typer.Option("--alg", help="ES256K or ES256.")] = "ES256K",
    data_dir: DataDir = DATA_DIR,
) -> None:
    """Create a signing identity (a did:key) in the local keystore.

    Example:

    \b
        plaza dao keys new alice
    """
    with reporting():
        if alg not in ("ES256K", "ES256"):
            raise InvalidInputError("--alg is ES256K or ES256")
        s = keystore(data_dir).create(name, alg=alg)
    typer.echo(f"{name}: {s.did}")


def keys_list(data_dir: DataDir = DATA_DIR, as_json: AsJson = False) -> None:
    """List the keystore's identities (names, DIDs and public keys only).

    Example:

    \b
        plaza dao keys list
    """
    with reporting():
        ids = keystore(data_dir).public()
    if as_json:
        typer.echo(json.dumps(ids, indent=2))
        return
    for name, v in ids.items():
        typer.echo(f"{name:<12} {v['did']}")


def keys_register(
    *,
    name: Annotated[str, typer.Argument(help="Keystore identity whose key signs for the DID.")],
    did: Annotated[str, typer.Option("--did", help="The DID to bind (e.g. a did:plc).")],
    role: Annotated[str, typer.Option("--role", help="person, agent or provider.")] = "person",
    data_dir: DataDir = DATA_DIR,
    db: Db = None,
    at: At = None,
) -> None:
    """Bind a DID (such as a did:plc) to a keystore identity's key on the ledger.

    Example:

    \b
        plaza dao keys register dora --did did:plc:ewvi7nxzyoun6zhxrhs64oiz
    """
    with reporting():
        ks = keystore(data_dir)
        open_dao(data_dir, db).register(ks.get(name), did, role, now_ms(at))
        ks.set_did(name, did)
    typer.echo(f"{name} now signs as {did}")
