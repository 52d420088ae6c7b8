"""``plaza dao keys ...``: signing identities in the local keystore."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from plaza.cli import params
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


Directory = Annotated[
    str,
    typer.Option(
        "--directory", envvar="PLAZA_DIRECTORY", help="PLC directory the DID is resolved from."
    ),
]
DEFAULT_DIRECTORY = "http://127.0.0.1:2582"


def keys_register(
    *,
    name: Annotated[str, typer.Argument(help="Keystore identity whose key signs for the DID.")],
    did: Annotated[
        str, typer.Option("--did", callback=params.did_plc, help="The DID to bind (a did:plc).")
    ],
    role: Annotated[str, typer.Option("--role", help="person, agent or provider.")] = "person",
    directory: Directory = DEFAULT_DIRECTORY,
    data_dir: DataDir = DATA_DIR,
    db: Db = None,
    at: At = None,
) -> None:
    """Bind a did:plc to a keystore identity's key on the ledger, with the DID's proof.

    The DID's document must list the identity's key under #plaza (see 'plaza dao keys
    publish') or #atproto. The DID's operations are read from --directory, verified
    here (signatures, hashes, recovery rule), and recorded with the binding, so every
    replay of the ledger checks the proof again.

    Example:

    \b
        plaza dao keys register dora --did did:plc:ewvi7nxzyoun6zhxrhs64oiz
    """
    from plaza.atproto.plc import PlcProofError, proof_value, verify_chain
    from plaza.services.directory.client import active_chain

    with reporting():
        ks = keystore(data_dir)
        signer = ks.get(name)
        chain = active_chain(directory, did)
        if verify_chain(did, chain).listed(signer.did_key) is None:
            raise PlcProofError(
                f"the DID document of {did} does not list {name}'s key {signer.did_key}: "
                f"publish it first with 'plaza dao keys publish {name} --did {did} "
                "--rotation-key NAME'"
            )
        open_dao(data_dir, db).register(signer, did, role, now_ms(at), proof=proof_value(chain))
        ks.set_did(name, did)
    typer.echo(f"{name} now signs as {did}")


def keys_publish(
    *,
    name: Annotated[str, typer.Argument(help="Keystore identity whose key to publish.")],
    did: Annotated[
        str, typer.Option("--did", callback=params.did_plc, help="The did:plc to publish it in.")
    ],
    rotation_key: Annotated[
        str,
        typer.Option(
            "--rotation-key", help="Keystore identity holding one of the DID's rotation keys."
        ),
    ],
    directory: Directory = DEFAULT_DIRECTORY,
    data_dir: DataDir = DATA_DIR,
) -> None:
    """List a keystore identity's key as the DID's #plaza key (a signed PLC update).

    Signs an update of the DID's document with --rotation-key (for a member, their own
    recovery key) that keeps everything else and sets verificationMethods.plaza, and
    submits it to --directory. Then 'plaza dao keys register' can prove the binding.

    Example:

    \b
        plaza dao keys publish dora --did did:plc:ewvi7nxzyoun6zhxrhs64oiz --rotation-key rec
    """
    from plaza.atproto.plc import PLAZA_KEY, PlcOperation, PlcProofError, create_update
    from plaza.services.directory.client import active_chain, submit

    with reporting():
        ks = keystore(data_dir)
        key, rotation = ks.get(name), ks.get(rotation_key)
        head = active_chain(directory, did)[-1]
        if not isinstance(head, PlcOperation):
            raise PlcProofError(f"{did}'s last operation cannot be updated")
        if rotation.did_key not in head.rotation_keys:
            raise PlcProofError(f"{rotation_key}'s key is not a rotation key of {did}")
        methods = {**head.verification_methods, PLAZA_KEY: key.did_key}
        submit(directory, did, create_update(head, rotation.key, verification_methods=methods))
    typer.echo(f"{did} now lists {name}'s key as #{PLAZA_KEY}")
