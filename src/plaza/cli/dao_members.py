"""``plaza dao member ...``: vouching, admission, removal and the member list."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from plaza.cli.dao_support import As, AsJson, At, did_of, iso, keystore, now_ms, open_dao
from plaza.cli.ledger import DATA_DIR, DataDir, Db, reporting


def member_vouch(
    member: Annotated[str, typer.Argument(help="The candidate's DID (or keystore name).")],
    signer: As,
    data_dir: DataDir = DATA_DIR,
    db: Db = None,
    at: At = None,
) -> None:
    """Vouch for a candidate. You become liable: if they are removed as a fake, you lose
    the right to vouch for a while.

    Example:

    \b
        plaza dao member vouch did:key:zQ3sh... --as alice
    """
    with reporting():
        did = did_of(data_dir, member)
        open_dao(data_dir, db).vouch(keystore(data_dir).get(signer), did, now_ms(at))
    typer.echo(f"{signer} vouched for {did}")


def member_admit(
    member: Annotated[str, typer.Argument(help="The candidate's DID (or keystore name).")],
    signer: As,
    data_dir: DataDir = DATA_DIR,
    db: Db = None,
    at: At = None,
) -> None:
    """Admit a candidate who holds enough vouches (signed by the candidate or a member).

    Example:

    \b
        plaza dao member admit dave --as dave
    """
    with reporting():
        did = did_of(data_dir, member)
        open_dao(data_dir, db).admit(keystore(data_dir).get(signer), did, now_ms(at))
    typer.echo(f"admitted {did}")


def member_remove(
    *,
    member: Annotated[str, typer.Argument(help="The member's DID (or keystore name).")],
    signer: As,
    fake: Annotated[
        bool, typer.Option("--fake", help="Removed as a fake: vouchers liable.")
    ] = False,
    data_dir: DataDir = DATA_DIR,
    db: Db = None,
    at: At = None,
) -> None:
    """File a removal proposal (members vote; executing it removes the member).

    Example:

    \b
        plaza dao member remove dave --fake --as alice
    """
    with reporting():
        dao = open_dao(data_dir, db)
        did = did_of(data_dir, member)
        title = f"Remove {did}" + (" as a fake" if fake else "")
        pid = dao.propose(
            keystore(data_dir).get(signer),
            "removal",
            title,
            now_ms(at),
            effect={"member": did, "fake": fake},
        )
        end = dao.state.proposals[pid].end_ms
    typer.echo(f"proposal {pid}: {title} (voting until {iso(end)})")


def member_list(
    data_dir: DataDir = DATA_DIR,
    db: Db = None,
    as_json: AsJson = False,
    all_: Annotated[bool, typer.Option("--all", help="Include removed members.")] = False,
) -> None:
    """List members with when and how they were admitted.

    Example:

    \b
        plaza dao member list
    """
    with reporting():
        st = open_dao(data_dir, db).state
        rows = [m.to_map() for _, m in sorted(st.member_records.items()) if all_ or m.active]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        gone = f" removed {iso(r['removed'])}" + (" (fake)" if r["fake"] else "")
        typer.echo(
            f"{r['did']}  since {iso(r['admitted'])} by {r['via']}" + (gone if r["removed"] else "")
        )
