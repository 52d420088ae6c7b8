"""``plaza dao propose|vote|delegate|tally``: proposals, ballots and their counts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from plaza.cli.dao_support import (
    As,
    AsJson,
    At,
    did_of,
    duration_ms,
    iso,
    json_arg,
    keystore,
    now_ms,
    open_dao,
    pairs,
    parse_amount,
)
from plaza.cli.ledger import DATA_DIR, DataDir, Db, reporting
from plaza.errors import InvalidInputError


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
        dao = open_dao(data_dir, db)
        eff = json_arg(effect) if effect else None
        if amount is not None:
            eff = {"amount": parse_amount(dao, amount), "payee": payee or "", "category": category}
        pid = dao.propose(
            keystore(data_dir).get(signer),
            type_name,
            title,
            now_ms(at),
            body=body,
            choices=tuple(choice or ()),
            effect=eff,
        )
        end = dao.state.proposals[pid].end_ms
    typer.echo(f"proposal {pid}: {title} (open until {iso(end)})")


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
        dao = open_dao(data_dir, db)
        who = keystore(data_dir).get(signer)
        now = now_ms(at)
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
            ballot = {"scores": pairs(score)}
        else:
            ballot = {"votes": pairs(votes or "")}
        dao.vote(who, proposal, ballot, now)
    typer.echo(f"{signer} voted on proposal {proposal}")


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
    with reporting():
        if topic is not None and proposal is not None:
            raise InvalidInputError("give --topic or --proposal, not both")
        scope, key = (
            ("topic", topic)
            if topic
            else (("proposal", str(proposal)) if proposal is not None else ("global", ""))
        )
        dao = open_dao(data_dir, db)
        who = keystore(data_dir).get(signer)
        now = now_ms(at)
        if revoke:
            dao.revoke(who, now, scope=scope, key=key)
            typer.echo(f"{signer} revoked the {scope} delegation")
            return
        if to is None:
            raise InvalidInputError("name the delegate (or use --revoke)")
        until = now + duration_ms(expires) if expires else 0
        did = did_of(data_dir, to)
        dao.delegate(who, did, now, scope=scope, key=key, expires=until)
    typer.echo(f"{signer} delegates ({scope}{' ' + key if key else ''}) to {did}")


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
            out = open_dao(data_dir, db).outcome(proposal, now_ms(at)).to_dict()
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
