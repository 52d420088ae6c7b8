"""``plaza dao ...``: run a DAO from the command line (docs/governance.md walks through it).

Settings come from flags, then the environment, then defaults: ``--data-dir``
(``PLAZA_DATA``, default ``./.plaza``) holds the keystore ``keys.json`` and the SQLite
ledger; ``--db`` (``PLAZA_DB``) points elsewhere, e.g. at PostgreSQL; ``--as``
(``PLAZA_AS``) names the keystore identity that signs; ``--at`` (``PLAZA_AT``) acts at
another time than now (ISO 8601, Unix ms, or ``+7d`` from now) — for rehearsals and
simulations. Secrets never leave the keystore file; nothing here prints them.
"""

from __future__ import annotations

import itertools
import json
import time
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any

import typer

from plaza.cli.ledger import DATA_DIR, DataDir, Db, reporting, resolve_db
from plaza.errors import InvalidInputError

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

As = Annotated[str, typer.Option("--as", envvar="PLAZA_AS", help="Keystore identity that signs.")]
At = Annotated[
    str | None,
    typer.Option("--at", envvar="PLAZA_AT", help="Act at this time: ISO 8601, Unix ms, or +7d."),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]


# -- helpers ------------------------------------------------------------------------------


def _now(at: str | None) -> int:
    from plaza.dao.mandate import parse_duration

    wall = int(time.time() * 1000)
    if not at:
        return wall
    try:
        if at.startswith("+"):
            return wall + parse_duration(at[1:]) * 1000
        if at.isdigit():
            return int(at)
        return int(datetime.fromisoformat(at.replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError as exc:
        raise InvalidInputError(f"--at {at!r}: use ISO 8601, Unix ms, or +DURATION") from exc


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _keystore(data_dir: Path) -> Any:
    from plaza.ledger.keystore import Keystore

    return Keystore(data_dir / "keys.json")


def _dao(data_dir: Path, db: str | None) -> Any:
    from plaza.dao.service import Dao
    from plaza.ledger import SqlEventStore

    return Dao(SqlEventStore.open(resolve_db(data_dir, db)))


def _did(data_dir: Path, who: str) -> str:
    """A DID as given, or the DID of a keystore identity of that name."""
    return who if who.startswith("did:") else str(_keystore(data_dir).get(who).did)


def _amount(dao: Any, text: str) -> int:
    digits = dao.state.constitution.minor_digits
    try:
        value = Decimal(text) * (10**digits)
    except InvalidOperation as exc:
        raise InvalidInputError(f"{text!r} is not an amount") from exc
    if value != value.to_integral_value() or value < 0:
        raise InvalidInputError(f"{text!r} has more than {digits} decimals or is negative")
    return int(value)


def _json_arg(text: str) -> Any:
    raw = Path(text[1:]).read_text(encoding="utf-8") if text.startswith("@") else text
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise InvalidInputError(f"not JSON: {exc}") from exc


def _pairs(text: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for part in text.split(","):
        name, sep, n = part.partition("=")
        if not sep or not n.strip().lstrip("-").isdigit():
            raise InvalidInputError(f"expected name=integer pairs, got {part!r}")
        out[name.strip()] = int(n)
    return out


# -- keys ---------------------------------------------------------------------------------


@keys_app.command("new")
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
        s = _keystore(data_dir).create(name, alg=alg)
    typer.echo(f"{name}: {s.did}")


@keys_app.command("list")
def keys_list(data_dir: DataDir = DATA_DIR, as_json: AsJson = False) -> None:
    """List the keystore's identities (names, DIDs and public keys only).

    Example:

    \b
        plaza dao keys list
    """
    with reporting():
        ids = _keystore(data_dir).public()
    if as_json:
        typer.echo(json.dumps(ids, indent=2))
        return
    for name, v in ids.items():
        typer.echo(f"{name:<12} {v['did']}")


@keys_app.command("register")
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
        ks = _keystore(data_dir)
        _dao(data_dir, db).register(ks.get(name), did, role, _now(at))
        ks.set_did(name, did)
    typer.echo(f"{name} now signs as {did}")


# -- founding and status ---------------------------------------------------------------------


@app.command("init")
def init(
    *,
    founder: Annotated[list[str], typer.Option("--founder", help="Founding member (repeat).")],
    agent: Annotated[list[str] | None, typer.Option("--agent", help="Agent identity.")] = None,
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

    Founders and agents are keystore names; missing identities are created, and so is
    the identity ``ledger``, whose key signs checkpoints (it is written into the
    constitution's ``ledger_keys``).

    Example:

    \b
        plaza dao init --founder alice --founder bob --founder carol --agent ops
    """
    from plaza.dao.constitution import default_constitution, load_constitution
    from plaza.dao.mandate import default_mandate, load_mandate
    from plaza.dao.service import Dao
    from plaza.ledger import SqlEventStore

    with reporting():
        ks = _keystore(data_dir)
        signers = [ks.get(n) if ks.has(n) else ks.create(n) for n in founder]
        agents = [ks.get(n) if ks.has(n) else ks.create(n) for n in agent or []]
        ledger_key = ks.get("ledger") if ks.has("ledger") else ks.create("ledger")
        c = load_constitution(constitution) if constitution else default_constitution()
        update: dict[str, Any] = {
            "agents": tuple(dict.fromkeys([*c.agents, *(a.did for a in agents)])),
            "ledger_keys": tuple(dict.fromkeys([*c.ledger_keys, ledger_key.did_key])),
        }
        if name:
            update["name"] = name
        c = c.model_copy(update=update)
        m = load_mandate(mandate) if mandate else default_mandate()
        digits = Decimal(10) ** c.minor_digits
        opening_minor = int(Decimal(opening) * digits)
        dao = Dao.init(
            SqlEventStore.open(resolve_db(data_dir, db)),
            signers[0],
            constitution=c,
            mandate=m,
            now=_now(at),
            cofounders=tuple(signers[1:]),
            opening=opening_minor,
        )
    typer.echo(
        f"founded {c.name!r}: ledger {dao.state.ledger_id[:16]}..., "
        f"{len(signers)} founders, agents {len(agents)}"
    )


@app.command("status")
def status(data_dir: DataDir = DATA_DIR, db: Db = None, as_json: AsJson = False) -> None:
    """Summarize the DAO: members, proposals, treasury, mandate version, ledger head.

    Example:

    \b
        plaza dao status
    """
    with reporting():
        dao = _dao(data_dir, db)
        st = dao.state
        out = {
            "name": st.constitution.name,
            "ledger_id": st.ledger_id,
            "events": len(dao.ledger),
            "members": len(st.active_members()),
            "proposals": len(st.proposals),
            "open_motions": sum(1 for m in st.motions.values() if m.status == "open"),
            "treasury": st.books.format(st.books.balance("Assets:Treasury")),
            "mandate_version": st.mandate.version,
        }
    if as_json:
        typer.echo(json.dumps(out, indent=2))
        return
    for k, v in out.items():
        typer.echo(f"{k:<16} {v}")


# -- members --------------------------------------------------------------------------------


@member_app.command("vouch")
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
        did = _did(data_dir, member)
        _dao(data_dir, db).vouch(_keystore(data_dir).get(signer), did, _now(at))
    typer.echo(f"{signer} vouched for {did}")


@member_app.command("admit")
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
        did = _did(data_dir, member)
        _dao(data_dir, db).admit(_keystore(data_dir).get(signer), did, _now(at))
    typer.echo(f"admitted {did}")


@member_app.command("remove")
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
        dao = _dao(data_dir, db)
        did = _did(data_dir, member)
        title = f"Remove {did}" + (" as a fake" if fake else "")
        pid = dao.propose(
            _keystore(data_dir).get(signer),
            "removal",
            title,
            _now(at),
            effect={"member": did, "fake": fake},
        )
        end = dao.state.proposals[pid].end_ms
    typer.echo(f"proposal {pid}: {title} (voting until {_iso(end)})")


@member_app.command("list")
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
        st = _dao(data_dir, db).state
        rows = [m.to_map() for _, m in sorted(st.members.items()) if all_ or m.active]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        gone = f" removed {_iso(r['removed'])}" + (" (fake)" if r["fake"] else "")
        typer.echo(
            f"{r['did']}  since {_iso(r['admitted'])} by {r['via']}"
            + (gone if r["removed"] else "")
        )


# -- proposals and votes ----------------------------------------------------------------------


@app.command("propose")
def propose(
    *,
    type_name: Annotated[str, typer.Argument(help="A proposal type from the constitution.")],
    title: Annotated[str, typer.Argument(help="What the proposal is about.")],
    signer: As,
    body: Annotated[str, typer.Option("--body", help="Longer text.")] = "",
    choice: Annotated[
        list[str] | None, typer.Option("--choice", help="An option (repeat).")
    ] = None,
    effect: Annotated[
        str | None, typer.Option("--effect", help="What executes: JSON, or @file.json.")
    ] = None,
    amount: Annotated[str | None, typer.Option("--amount", help="Treasury/budget amount.")] = None,
    payee: Annotated[str | None, typer.Option("--payee", help="Who is paid.")] = None,
    category: Annotated[str, typer.Option("--category", help="Expense category.")] = "grants",
    data_dir: DataDir = DATA_DIR,
    db: Db = None,
    at: At = None,
) -> None:
    """File a proposal of a registered type; prints its id and closing time.

    Treasury and budget proposals may give --amount, --payee and --category instead of
    a JSON --effect.

    Example:

    \b
        plaza dao propose treasury "Pay for the logo" --amount 250.00 --payee "Studio" --as bob
        plaza dao propose election "Name the app" --choice agora --choice plaza --as alice
    """
    with reporting():
        dao = _dao(data_dir, db)
        eff = _json_arg(effect) if effect else None
        if amount is not None:
            eff = {"amount": _amount(dao, amount), "payee": payee or "", "category": category}
        pid = dao.propose(
            _keystore(data_dir).get(signer),
            type_name,
            title,
            _now(at),
            body=body,
            choices=tuple(choice or ()),
            effect=eff,
        )
        end = dao.state.proposals[pid].end_ms
    typer.echo(f"proposal {pid}: {title} (open until {_iso(end)})")


@app.command("vote")
def vote(
    *,
    proposal: Annotated[int, typer.Argument(help="Proposal id.")],
    signer: As,
    choice: Annotated[
        str | None, typer.Option("--choice", help="yes/no/abstain or a choice.")
    ] = None,
    rank: Annotated[str | None, typer.Option("--rank", help="Ranking: a,b,c.")] = None,
    approve: Annotated[str | None, typer.Option("--approve", help="Approvals: a,b.")] = None,
    score: Annotated[str | None, typer.Option("--score", help="Scores: a=5,b=3.")] = None,
    votes: Annotated[str | None, typer.Option("--votes", help="Quadratic votes: a=3,b=1.")] = None,
    points: Annotated[int | None, typer.Option("--points", help="Conviction points.")] = None,
    data_dir: DataDir = DATA_DIR,
    db: Db = None,
    at: At = None,
) -> None:
    """Cast your ballot (once) or, on a budget proposal, set your conviction stake.

    Example:

    \b
        plaza dao vote 4 --choice yes --as alice
        plaza dao vote 5 --rank plaza,agora --as bob
    """
    with reporting():
        dao = _dao(data_dir, db)
        who = _keystore(data_dir).get(signer)
        now = _now(at)
        given = [x is not None for x in (choice, rank, approve, score, votes, points)]
        if sum(given) != 1:
            raise InvalidInputError(
                "give exactly one of --choice/--rank/--approve/--score/--votes/--points"
            )
        if points is not None:
            dao.stake(who, proposal, points, now)
            typer.echo(f"{signer} stakes {points} points on proposal {proposal}")
            return
        ballot: dict[str, Any]
        if choice is not None:
            ballot = {"choice": choice}
        elif rank is not None:
            ballot = {"ranking": [x.strip() for x in rank.split(",") if x.strip()]}
        elif approve is not None:
            ballot = {"approvals": [x.strip() for x in approve.split(",") if x.strip()]}
        elif score is not None:
            ballot = {"scores": _pairs(score)}
        else:
            ballot = {"votes": _pairs(votes or "")}
        dao.vote(who, proposal, ballot, now)
    typer.echo(f"{signer} voted on proposal {proposal}")


@app.command("delegate")
def delegate(
    *,
    to: Annotated[str | None, typer.Argument(help="Delegate's DID (or keystore name).")] = None,
    signer: As = "",
    topic: Annotated[str | None, typer.Option("--topic", help="Only for this topic.")] = None,
    proposal: Annotated[int | None, typer.Option("--proposal", help="Only this proposal.")] = None,
    expires: Annotated[str | None, typer.Option("--expires", help="Lifetime, e.g. 90d.")] = None,
    revoke: Annotated[bool, typer.Option("--revoke", help="Revoke instead.")] = False,
    data_dir: DataDir = DATA_DIR,
    db: Db = None,
    at: At = None,
) -> None:
    """Delegate your vote (globally, per topic, or per proposal), or revoke a delegation.

    Proposal delegations beat topic ones, which beat the global one; your own vote
    beats all of them. Delegation is transitive.

    Example:

    \b
        plaza dao delegate bob --as alice
        plaza dao delegate carol --topic treasury --expires 90d --as alice
        plaza dao delegate --revoke --as alice
    """
    from plaza.dao.mandate import parse_duration

    with reporting():
        if topic is not None and proposal is not None:
            raise InvalidInputError("give --topic or --proposal, not both")
        scope, key = (
            ("topic", topic)
            if topic
            else (("proposal", str(proposal)) if proposal is not None else ("global", ""))
        )
        dao = _dao(data_dir, db)
        who = _keystore(data_dir).get(signer)
        now = _now(at)
        if revoke:
            dao.revoke(who, now, scope=scope, key=key)
            typer.echo(f"{signer} revoked the {scope} delegation")
            return
        if to is None:
            raise InvalidInputError("name the delegate (or use --revoke)")
        until = now + parse_duration(expires) * 1000 if expires else 0
        did = _did(data_dir, to)
        dao.delegate(who, did, now, scope=scope, key=key, expires=until)
    typer.echo(f"{signer} delegates ({scope}{' ' + key if key else ''}) to {did}")


@app.command("tally")
def tally(
    *,
    proposal: Annotated[
        int | None, typer.Argument(help="Proposal id (omit with --ballots).")
    ] = None,
    ballots: Annotated[
        Path | None, typer.Option("--ballots", help="Tally a ballot file; no DAO needed.")
    ] = None,
    as_json: AsJson = False,
    data_dir: DataDir = DATA_DIR,
    db: Db = None,
    at: At = None,
) -> None:
    """Tally a proposal, or a ballot file without any DAO (for audits and other groups).

    A ballot file is {"method": "irv"|"approval"|"score"|"single"|"quadratic",
    "candidates": [...], "ballots": [...], "credits": n}; see docs/governance.md.
    Invalid ballots are listed with their index and not counted. Exits 1 if the file
    itself is malformed.

    Example:

    \b
        plaza dao tally --ballots ballots.json --json
        plaza dao tally 7
    """
    with reporting():
        if ballots is not None:
            from plaza.dao.tally import tally_file

            try:
                data = json.loads(ballots.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                from plaza.dao.errors import BallotFileError

                raise BallotFileError(f"cannot read {ballots}: {exc}") from exc
            out = tally_file(data).to_dict()
        elif proposal is not None:
            out = _dao(data_dir, db).outcome(proposal, _now(at)).to_dict()
        else:
            raise InvalidInputError("give a proposal id or --ballots FILE")
    if as_json:
        typer.echo(json.dumps(out, indent=2))
        return
    _print_tally(out)


def _print_tally(out: dict[str, Any]) -> None:
    if "status" in out:
        typer.echo(
            f"proposal {out['id']}: {out['status']} ({out['counted']} of "
            f"{out['eligible']} eligible counted)"
        )
        out = out["detail"]
    if "winner" in out:
        typer.echo(f"winner: {out['winner'] if out['winner'] is not None else '(none)'}")
    if out.get("tied"):
        typer.echo(f"tied: {', '.join(out['tied'])}")
    for name, n in (out.get("totals") or {}).items():
        typer.echo(f"  {name}: {n}")
    for i, r in enumerate(out.get("rounds") or [], 1):
        tallies = ", ".join(f"{k} {v}" for k, v in r["tallies"].items())
        typer.echo(
            f"round {i}: {tallies}; exhausted {r['exhausted']}"
            + (f"; eliminated {r['eliminated']}" if r["eliminated"] else "")
        )
    for k in ("yes", "no", "abstain", "conviction", "threshold"):
        if k in out:
            typer.echo(f"  {k}: {out[k]}")
    for b in out.get("invalid") or []:
        typer.echo(f"invalid ballot {b['index']}: {b['reason']}")


@app.command("execute")
def execute(
    *,
    target: Annotated[int, typer.Argument(help="Proposal id (or motion id with --motion).")],
    signer: As,
    motion: Annotated[bool, typer.Option("--motion", help="Execute an optimistic motion.")] = False,
    action: Annotated[
        str | None, typer.Option("--action", help="The motion's action (JSON or @file).")
    ] = None,
    data_dir: DataDir = DATA_DIR,
    db: Db = None,
    at: At = None,
) -> None:
    """Execute a passed proposal, or a motion whose veto window passed without a veto.

    A motion executes only with an action that hashes to what was proposed (by
    default the motion's own stored action).

    Example:

    \b
        plaza dao execute 4 --as alice
        plaza dao execute 9 --motion --as alice
    """
    from plaza.dao.action import Action

    with reporting():
        dao = _dao(data_dir, db)
        who = _keystore(data_dir).get(signer)
        if motion:
            m = dao.state.motions.get(target)
            if m is None:
                raise InvalidInputError(f"no motion {target}")
            act = Action.from_map(_json_arg(action)) if action else m.action
            dao.execute_motion(who, target, act, _now(at))
            typer.echo(f"motion {target} executed: {act.kind}")
            return
        dao.execute(who, target, _now(at))
    typer.echo(f"proposal {target} executed")


@app.command("veto")
def veto(
    motion: Annotated[int, typer.Argument(help="Motion id.")],
    signer: As,
    data_dir: DataDir = DATA_DIR,
    db: Db = None,
    at: At = None,
) -> None:
    """Veto an agent's optimistic motion; enough vetoes turn it into a binding vote.

    Example:

    \b
        plaza dao veto 9 --as carol
    """
    with reporting():
        dao = _dao(data_dir, db)
        dao.veto(_keystore(data_dir).get(signer), motion, _now(at))
        m = dao.state.motions[motion]
    note = f"; now proposal {m.proposal}" if m.status == "escalated" else ""
    typer.echo(f"vetoes {len(m.vetoes)}/{m.threshold} on motion {motion}{note}")


@app.command("act")
def act(
    *,
    action: Annotated[str, typer.Argument(help="The action as JSON, or @file.json.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded with the action).")],
    signer: As,
    data_dir: DataDir = DATA_DIR,
    db: Db = None,
    at: At = None,
) -> None:
    """Submit an agent action; the mandate guard decides what happens to it.

    Allowed actions execute; optimistic ones open a motion with a veto window; those
    needing a vote become proposals; denied ones are recorded with the reason.

    Example:

    \b
        plaza dao act '{"kind": "rfb.create", "params": {"service": "relay"}}' \\
            --reason "relay capacity at 85%" --as ops
    """
    from plaza.dao.action import Action

    with reporting():
        out = _dao(data_dir, db).act(
            _keystore(data_dir).get(signer),
            Action.from_map(_json_arg(action)),
            reason,
            _now(at),
        )
    v = out.verdict
    detail = {
        "allow": "executed",
        "optimistic": f"motion {out.motion} opened",
        "vote": f"proposal {out.proposal} filed",
        "deny": "denied",
    }[v.verdict]
    typer.echo(f"{v.verdict}: {detail}" + (f" ({v.reason})" if hasattr(v, "reason") else ""))
    if v.verdict == "deny":
        raise typer.Exit(1)


# -- treasury and documents ---------------------------------------------------------------------


@app.command("receive")
def receive(
    *,
    kind: Annotated[str, typer.Argument(help="dues, donation or grant.")],
    amount: Annotated[str, typer.Argument(help="Amount, e.g. 12.50.")],
    source: Annotated[str, typer.Option("--from", help="Who paid.")],
    signer: As,
    memo: Annotated[str, typer.Option("--memo", help="A note.")] = "",
    data_dir: DataDir = DATA_DIR,
    db: Db = None,
    at: At = None,
) -> None:
    """Record income into the treasury (dues, a donation or a grant).

    Example:

    \b
        plaza dao receive donation 50.00 --from "a friend" --as alice
    """
    with reporting():
        dao = _dao(data_dir, db)
        minor = _amount(dao, amount)
        dao.receive(
            _keystore(data_dir).get(signer), kind, minor, _now(at), source=source, memo=memo
        )
        balance = dao.state.books.format(dao.state.books.balance("Assets:Treasury"))
    typer.echo(f"received {amount} ({kind}); treasury {balance}")


@app.command("books")
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
        st = _dao(data_dir, db).state
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


@mandate_app.command("show")
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
            st = _dao(data_dir, db).state
            found = [mm for _, mm in st.mandates if version is None or mm.version == version]
            if not found:
                raise InvalidInputError(f"no mandate version {version}")
            m = found[-1]
    typer.echo(m.to_toml(), nl=False)


@mandate_app.command("diff")
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
        st = _dao(data_dir, db).state
        versions = {m.version: m for _, m in st.mandates}

        def pick(ref: str | None, fallback: Any) -> Any:
            if ref is None:
                return fallback
            if ref.isdigit():
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


@mandate_app.command("schema")
def mandate_schema() -> None:
    """Print the mandate document's JSON Schema.

    Example:

    \b
        plaza dao mandate schema
    """
    from plaza.dao.mandate import mandate_json_schema

    typer.echo(json.dumps(mandate_json_schema(), indent=2))


@app.command("legal")
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
        versions = _dao(data_dir, db).state.legal
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
            typer.echo(f"-- changed at event {after.seq} ({_iso(after.time_ms)})")
            for field, x, y in diff_records(before.record, after.record):
                typer.echo(f"   {field}: {x!r} -> {y!r}")


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option("--host", help="Listening address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Listening port.")] = 2590,
    data_dir: DataDir = DATA_DIR,
    db: Db = None,
) -> None:
    """Serve the DAO's HTTP API (OpenAPI at /openapi.json) until Ctrl-C.

    Example:

    \b
        plaza dao serve --port 2590
    """
    from plaza.dao.api import ApiSettings, create_app
    from plaza.services.runner import ServedApp, run

    with reporting():
        app_ = create_app(ApiSettings(db_url=resolve_db(data_dir, db)))
        run(
            [ServedApp("dao", app_, host, port)],
            on_ready=lambda urls: typer.echo(f"DAO API at {urls[0]} (OpenAPI: /openapi.json)"),
        )
