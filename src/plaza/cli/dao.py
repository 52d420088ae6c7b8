"""``plaza dao ...``: run a DAO from the command line (docs/governance.md walks through it).

Settings come from flags, then the environment, then defaults: ``--data-dir``
(``PLAZA_DATA``, default ``./.plaza``) holds the keystore ``keys.json`` and the SQLite
ledger; ``--db`` (``PLAZA_DB``) points elsewhere, e.g. at PostgreSQL; ``--as``
(``PLAZA_AS``) names the keystore identity that signs; ``--at`` (``PLAZA_AT``) acts at
another time than now (ISO 8601, Unix ms, or ``+7d`` from now) — for rehearsals and
simulations. Secrets never leave the keystore file; nothing here prints them.

This module founds and serves the DAO and registers every ``plaza dao`` command; the
commands live by concept in :mod:`plaza.cli.dao_keys`, :mod:`plaza.cli.dao_members`,
:mod:`plaza.cli.dao_votes` (proposals, votes, delegation, tallies),
:mod:`plaza.cli.dao_agents` (agent actions, vetoes, execution) and
:mod:`plaza.cli.dao_books` (treasury, mandate, legal record), over the shared options
and helpers of :mod:`plaza.cli.dao_support`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from plaza.cli import dao_agents, dao_books, dao_keys, dao_members, dao_votes, params
from plaza.cli.dao_support import (
    AsJson,
    At,
    iso,
    json_arg,
    keystore,
    now_ms,
    open_dao,
    pairs,
)
from plaza.cli.ledger import DATA_DIR, DataDir, Db, reporting, resolve_db

# The market's commands import these helpers under their old names.
_now, _iso, _keystore, _pairs, _json_arg = now_ms, iso, keystore, pairs, json_arg

app = typer.Typer(
    name="dao",
    help="Run the DAO: members, proposals, votes, delegation, treasury, mandate, legal record.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
member_app = typer.Typer(help="Vouch for, admit, remove and list members.", no_args_is_help=True)
mandate_app = typer.Typer(help="Show and compare the agents' mandate.", no_args_is_help=True)
keys_app = typer.Typer(
    help="Manage signing identities in the local keystore.", no_args_is_help=True
)
app.add_typer(member_app, name="member")
app.add_typer(mandate_app, name="mandate")
app.add_typer(keys_app, name="keys")


# -- founding and status ---------------------------------------------------------------------


@app.command("init")
def init(
    *,
    founder: Annotated[list[str], typer.Option("--founder", help="Founding member (repeat).")],
    agent: Annotated[list[str] | None, typer.Option("--agent", help="Agent identity.")] = None,
    treasurer: Annotated[
        list[str] | None,
        typer.Option("--treasurer", help="Identity that records income (repeat)."),
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="The DAO's name.")] = None,
    constitution: Annotated[
        Path | None, typer.Option("--constitution", help="Constitution TOML (default: Plaza's).")
    ] = None,
    mandate: Annotated[
        Path | None, typer.Option("--mandate", help="Mandate TOML (default: Plaza's).")
    ] = None,
    opening: Annotated[str, typer.Option("--opening", help="Opening treasury balance.")] = "0",
    data_dir: DataDir = DATA_DIR,
    db: Db = None,
    at: At = None,
) -> None:
    """Found a DAO: write the genesis event with its founders, constitution and mandate.

    Founders, agents and treasurers are keystore names; missing identities are created,
    and so is the identity ``ledger``, whose key signs checkpoints (it is written into
    the constitution's ``ledger_keys``). Treasurers (written into the constitution's
    ``treasurers``) record income, as agents do when the mandate allows it.

    Example:

    \b
        plaza dao init --founder alice --founder bob --founder carol --agent ops --treasurer alice
    """
    from plaza.dao.constitution import default_constitution, load_constitution
    from plaza.dao.mandate import default_mandate, load_mandate
    from plaza.dao.money import Currency
    from plaza.dao.service import Dao
    from plaza.ledger import SqlEventStore

    with reporting():
        ks = keystore(data_dir)
        signers = [ks.get(n) if ks.has(n) else ks.create(n) for n in founder]
        agents = [ks.get(n) if ks.has(n) else ks.create(n) for n in agent or []]
        treasurers = [ks.get(n) if ks.has(n) else ks.create(n) for n in treasurer or []]
        ledger_key = ks.get("ledger") if ks.has("ledger") else ks.create("ledger")
        c = load_constitution(constitution) if constitution else default_constitution()
        update: dict[str, Any] = {
            "agents": tuple(dict.fromkeys([*c.agents, *(a.did for a in agents)])),
            "treasurers": tuple(dict.fromkeys([*c.treasurers, *(t.did for t in treasurers)])),
            "ledger_keys": tuple(dict.fromkeys([*c.ledger_keys, ledger_key.did_key])),
        }
        if name:
            update["name"] = name
        c = c.model_copy(update=update)
        m = load_mandate(mandate) if mandate else default_mandate()
        opening_minor = Currency.of(c).parse(opening)
        dao = Dao.init(
            SqlEventStore.open(resolve_db(data_dir, db)),
            signers[0],
            constitution=c,
            mandate=m,
            now=now_ms(at),
            cofounders=tuple(signers[1:]),
            opening=opening_minor,
        )
    typer.echo(
        f"founded {c.name!r}: ledger {dao.state.ledger_id[:16]}..., "
        f"{len(signers)} founders, agents {len(agents)}"
    )


@app.command("status")
def status(data_dir: DataDir = DATA_DIR, db: Db = None, as_json: AsJson = False) -> None:
    """Summarize the DAO: members, proposals, motions, treasury, mandate version, ledger head.

    Motions are counted open (in or past their veto window, not yet executed) and lapsed
    (refused by the mandate guard after their window; `plaza dao lapse`).

    Example:

    \b
        plaza dao status
    """
    with reporting():
        dao = open_dao(data_dir, db)
        st = dao.state
        out = {
            "name": st.constitution.name,
            "ledger_id": st.ledger_id,
            "events": len(dao.ledger),
            "members": len(st.active_members()),
            "proposals": len(st.proposals),
            "open_motions": sum(1 for m in st.motions.values() if m.status == "open"),
            "lapsed_motions": sum(1 for m in st.motions.values() if m.status == "lapsed"),
            "treasury": st.books.format(st.books.balance("Assets:Treasury")),
            "mandate_version": st.mandate.version,
        }
    if as_json:
        typer.echo(json.dumps(out, indent=2))
        return
    for k, v in out.items():
        typer.echo(f"{k:<16} {v}")


# -- registration (one line per command, in the order --help lists them) --------------------

keys_app.command("new")(dao_keys.keys_new)
keys_app.command("list")(dao_keys.keys_list)
keys_app.command("register")(dao_keys.keys_register)
keys_app.command("publish")(dao_keys.keys_publish)
member_app.command("vouch")(dao_members.member_vouch)
member_app.command("admit")(dao_members.member_admit)
member_app.command("remove")(dao_members.member_remove)
member_app.command("list")(dao_members.member_list)
app.command("propose")(dao_votes.propose)
app.command("vote")(dao_votes.vote)
app.command("delegate")(dao_votes.delegate)
app.command("tally")(dao_votes.tally)
app.command("execute")(dao_agents.execute)
app.command("veto")(dao_agents.veto)
app.command("lapse")(dao_agents.lapse)
app.command("act")(dao_agents.act)
app.command("receive")(dao_books.receive)
app.command("books")(dao_books.books)
mandate_app.command("show")(dao_books.mandate_show)
mandate_app.command("diff")(dao_books.mandate_diff)
mandate_app.command("schema")(dao_books.mandate_schema)
app.command("legal")(dao_books.legal)


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option("--host", help="Listening address.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", callback=params.port, help="Listening port (0: any free).")
    ] = 2590,
    directory: Annotated[
        str | None,
        typer.Option(
            "--directory",
            envvar="PLAZA_DIRECTORY",
            help="PLC directory: identity proofs must end at the DID's current operation.",
        ),
    ] = None,
    data_dir: DataDir = DATA_DIR,
    db: Db = None,
) -> None:
    """Serve the DAO's HTTP API (OpenAPI at /openapi.json) until Ctrl-C.

    With --directory, an event binding a did:plc to a key is accepted only when its
    proof ends at the DID's current operation in that directory (a proof the DID has
    since superseded is refused).

    Example:

    \b
        plaza dao serve --port 2590 --directory http://127.0.0.1:2582
    """
    from functools import partial

    from plaza.dao.api import ApiSettings, create_app
    from plaza.services.directory.client import current_head
    from plaza.services.runner import ServedApp, run

    with reporting():
        head = partial(current_head, directory) if directory else None
        app_ = create_app(ApiSettings(db_url=resolve_db(data_dir, db), identity_head=head))
        run(
            [ServedApp("dao", app_, host, port)],
            on_ready=lambda urls: typer.echo(f"DAO API at {urls[0]} (OpenAPI: /openapi.json)"),
        )
    typer.echo("stopped")
