"""``plaza dao receive|books|mandate|legal``: the treasury and the DAO's documents."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from plaza.cli.dao_support import As, AsJson, At, iso, keystore, now_ms, open_dao, parse_amount
from plaza.cli.ledger import DATA_DIR, DataDir, Db, reporting
from plaza.errors import InvalidInputError


def receive(
    *,
    kind: Annotated[str, typer.Argument(help="dues, donation or grant.")],
    amount: Annotated[str, typer.Argument(help="Amount, e.g. 12.50.")],
    source: Annotated[str, typer.Option("--from", help="Who paid.")],
    ref: Annotated[
        str, typer.Option("--ref", help="The payment's reference (bank or processor id).")
    ],
    signer: As,
    currency: Annotated[
        str | None, typer.Option("--currency", help="The amount's currency (the DAO's).")
    ] = None,
    memo: Annotated[str, typer.Option("--memo", help="A note.")] = "",
    data_dir: DataDir = DATA_DIR,
    db: Db = None,
    at: At = None,
) -> None:
    """Record income into the treasury (dues, a donation or a grant) with its payment
    reference. Only the DAO's agents (when the mandate allows ``treasury.receive``) and
    the treasurers the constitution names may; a reference is booked once.

    Example:

    \b
        plaza dao receive donation 50.00 --from "a friend" --ref "bank 2025-0042" --as alice
    """
    with reporting():
        dao = open_dao(data_dir, db)
        minor = parse_amount(dao, amount)
        dao.receive(
            keystore(data_dir).get(signer),
            kind,
            minor,
            now_ms(at),
            source=source,
            ref=ref,
            memo=memo,
            currency=currency,
        )
        balance = dao.state.books.format(dao.state.books.balance("Assets:Treasury"))
    typer.echo(f"received {amount} ({kind}, {ref}); treasury {balance}")


def books(
    fmt: Annotated[str, typer.Option("--format", help="beancount or json.")] = "beancount",
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write to a file.")] = None,
    data_dir: DataDir = DATA_DIR,
    db: Db = None,
) -> None:
    """Export the treasury's double-entry books (Beancount passes bean-check).

    Example:

    \b
        plaza dao books --format beancount -o books.beancount
    """
    from plaza.dao.beancount import to_beancount

    with reporting():
        st = open_dao(data_dir, db).state
        if fmt == "beancount":
            text = to_beancount(st.books, title=st.constitution.name)
        elif fmt == "json":
            text = json.dumps(st.books.to_map(), indent=2) + "\n"
        else:
            raise InvalidInputError("--format is beancount or json")
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {output}")


def mandate_show(
    version: Annotated[int | None, typer.Option("--version", help="An earlier version.")] = None,
    default: Annotated[bool, typer.Option("--default", help="The shipped default.")] = False,
    data_dir: DataDir = DATA_DIR,
    db: Db = None,
) -> None:
    """Print the mandate in force (or an earlier version, or the default) as TOML.

    Example:

    \b
        plaza dao mandate show
        plaza dao mandate show --version 1
    """
    from plaza.dao.mandate import default_mandate

    with reporting():
        if default:
            m = default_mandate()
        else:
            st = open_dao(data_dir, db).state
            found = [mm for _, mm in st.mandates if version is None or mm.version == version]
            if not found:
                raise InvalidInputError(f"no mandate version {version}")
            m = found[-1]
    typer.echo(m.to_toml(), nl=False)


def mandate_diff(
    old: Annotated[str | None, typer.Argument(help="Version number or TOML file.")] = None,
    new: Annotated[str | None, typer.Argument(help="Version number or TOML file.")] = None,
    data_dir: DataDir = DATA_DIR,
    db: Db = None,
) -> None:
    """Show what changed between two mandates (default: the previous and current one).

    Example:

    \b
        plaza dao mandate diff
        plaza dao mandate diff 1 proposed.toml
    """
    from plaza.dao.mandate import diff_mandates, load_mandate

    with reporting():
        st = open_dao(data_dir, db).state
        versions = {m.version: m for _, m in st.mandates}

        def pick(ref: str | None, fallback: Any) -> Any:
            if ref is None:
                return fallback
            if ref.isascii() and ref.isdigit():
                if int(ref) not in versions:
                    raise InvalidInputError(f"no mandate version {ref}")
                return versions[int(ref)]
            return load_mandate(Path(ref))

        history = [m for _, m in st.mandates]
        a = pick(old, history[-2] if len(history) > 1 else history[-1])
        b = pick(new, history[-1])
        changes = diff_mandates(a, b)
    if not changes:
        typer.echo("no changes")
    for c in changes:
        typer.echo(f"{c.path}: {json.dumps(c.old)} -> {json.dumps(c.new)}")


def mandate_schema() -> None:
    """Print the mandate document's JSON Schema.

    Example:

    \b
        plaza dao mandate schema
    """
    from plaza.dao.mandate import mandate_json_schema

    typer.echo(json.dumps(mandate_json_schema(), indent=2))


def legal(
    history: Annotated[bool, typer.Option("--history", help="Every version with diffs.")] = False,
    as_json: AsJson = False,
    data_dir: DataDir = DATA_DIR,
    db: Db = None,
) -> None:
    """Show the legal record derived from the ledger (and, with --history, its diffs).

    Example:

    \b
        plaza dao legal
        plaza dao legal --history
    """
    from plaza.dao.legal import diff_records

    with reporting():
        st = open_dao(data_dir, db).state
        st.constitution  # noqa: B018 - raises NotInitialized before there is any record
        versions = st.legal
    if as_json:
        typer.echo(
            json.dumps(
                [
                    {"seq": v.seq, "time": v.time_ms, "record": v.record.to_map()}
                    for v in (versions if history else versions[-1:])
                ],
                indent=2,
            )
        )
        return
    for k, v in versions[-1].record.to_map().items():
        typer.echo(f"{k:<20} {v}")
    if history:
        for before, after in itertools.pairwise(versions):
            typer.echo(f"-- changed at event {after.seq} ({iso(after.time_ms)})")
            for field, x, y in diff_records(before.record, after.record):
                typer.echo(f"   {field}: {x!r} -> {y!r}")
