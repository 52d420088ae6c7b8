"""``plaza agents ...``: run the reconcilers against a DAO's market and its live services.

A thin shell over :func:`plaza.agents.runner.run_once` (see docs/agents.md): each pass
settles the market's ended epochs, drains offboarded hosting providers and places
waiting sign-ups, and prints every action with the guard's verdict and its reason.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from plaza.cli.assist import AssistOpt
from plaza.cli.assist import backend as assist_backend
from plaza.cli.dao_support import At, iso, keystore, now_ms
from plaza.cli.ledger import DATA_DIR, DataDir, Db, reporting, resolve_db
from plaza.cli.market_support import local_market, market_currency, parse_prices
from plaza.errors import InvalidInputError, PlazaError

app = typer.Typer(
    name="agents",
    help="Run Plaza's agents: settlement, migration and placement, within the mandate.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def _signups(path: Path | None) -> list[Any]:
    from plaza.agents.runner import SignUp

    if path is None or not path.exists():
        return []
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            out.append(
                SignUp(
                    handle=str(row["handle"]),
                    email=str(row["email"]),
                    password=str(row["password"]),
                    region=str(row.get("region", "")),
                    dao_recovery=row.get("dao_recovery", False) is True,
                )
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidInputError(
                f"{path}:{n}: expected {{handle, email, password[, region, dao_recovery]}}"
            ) from exc
    return out


def _keep(path: Path | None, left: list[Any]) -> None:
    """Write back the sign-ups not yet placed (placed ones leave the file)."""
    if path is None or not path.exists():
        return
    rows = [
        {
            "handle": s.handle,
            "email": s.email,
            "password": s.password,
            "region": s.region,
            "dao_recovery": s.dao_recovery,
        }
        for s in left
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def _show(record: Any, as_json: bool) -> str:
    a = record.action
    if as_json:
        return json.dumps(
            {
                "time": iso(record.time_ms),
                "kind": a.kind,
                "outcome": record.outcome,
                "verdict": record.verdict,
                "rule": a.reason.rule,
                "reason": a.reason.text,
                "detail": record.detail,
                "proposal": record.proposal.ref if record.proposal else None,
            }
        )
    ref = f" [{record.proposal.ref}]" if record.proposal and record.proposal.ref else ""
    return (
        f"{iso(record.time_ms)} {a.kind} {record.outcome} ({record.verdict}){ref}\n"
        f"    why: {a.reason.text}\n"
        f"    done: {record.detail}"
    )


@app.command("run")
def run_cmd(
    *,
    data_dir: DataDir = DATA_DIR,
    db: Db = None,
    agent: Annotated[
        str,
        typer.Option("--as", envvar="PLAZA_AS", help="Keystore identity of the agent (operator)."),
    ] = "ops",
    once: Annotated[bool, typer.Option("--once", help="One pass, then exit.")] = False,
    interval: Annotated[
        float | None, typer.Option("--interval", help="Seconds between passes (loop).")
    ] = None,
    passes: Annotated[
        int | None, typer.Option("--passes", help="With --interval: stop after this many.")
    ] = None,
    directory: Annotated[
        str | None,
        typer.Option(
            "--directory", envvar="PLAZA_DIRECTORY", help="DID directory URL (live network)."
        ),
    ] = None,
    migration_key: Annotated[
        str | None,
        typer.Option(
            "--migration-key",
            help="Keystore identity whose key members list to let the agent move them "
            "(default: the agent's own).",
        ),
    ] = None,
    archive: Annotated[
        str | None,
        typer.Option(
            "--archive",
            envvar="PLAZA_ARCHIVE",
            help="Archive URL to restore an unreachable host's accounts from.",
        ),
    ] = None,
    signups: Annotated[
        Path | None,
        typer.Option("--signups", help="JSON lines of sign-ups waiting for an account."),
    ] = None,
    entryway: Annotated[
        str | None,
        typer.Option(
            "--entryway",
            envvar="PLAZA_ENTRYWAY",
            help="Entryway URL: a moved or restored account keeps its escrowed host password.",
        ),
    ] = None,
    grace: Annotated[
        int, typer.Option("--grace", help="Seconds after an epoch ends before settling it.")
    ] = 300,
    capacity: Annotated[
        bool,
        typer.Option(
            "--capacity/--no-capacity",
            help="With --directory: buy hosting capacity when load crosses the plan.",
        ),
    ] = True,
    threshold: Annotated[
        float,
        typer.Option("--capacity-threshold", help="Utilisation (0-1) that triggers a purchase."),
    ] = 0.8,
    headroom: Annotated[
        float,
        typer.Option("--capacity-headroom", help="Utilisation (0-1) a purchase aims at."),
    ] = 0.6,
    bid_window: Annotated[
        int, typer.Option("--bid-window", min=1, help="Seconds a capacity request takes bids.")
    ] = 20,
    floor: Annotated[
        int,
        typer.Option(
            "--capacity-floor",
            min=0,
            help="Hosting accounts kept under contract on live providers whatever the load "
            "(a lost provider's are bought again); 0: capacity follows the load alone.",
        ),
    ] = 0,
    max_price: Annotated[
        str,
        typer.Option(
            "--capacity-max-price",
            help="The most a capacity request offers per account and epoch, in currency "
            "units (account=AMOUNT).",
        ),
    ] = "account=0.10",
    dead_after: Annotated[
        int | None,
        typer.Option(
            "--dead-after",
            min=1,
            help="Seconds a PDS may be unreachable before its accounts are restored from "
            "--archive (default: at once).",
        ),
    ] = None,
    at: At = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per action.")] = False,
    assist: AssistOpt = "auto",
) -> None:
    """Run the agents' reconcilers once, or every --interval seconds.

    Each pass reads the market (under its DAO when the ledger holds one) and, with
    --directory, the hosting providers' PDSs named in the market's registry. It settles
    ended epochs (funding escrow first), asks for the penalties the market's ladder
    calls for, drains providers the market offboarded by moving their accounts with the
    agent's migration key (only accounts whose members listed it), restores the accounts
    of a PDS that does not answer from --archive's copies (same key, same rule; with
    --dead-after, once it has been unreachable that many seconds, counted by this
    process from the first pass that found it down), and creates accounts for waiting
    --signups on the PDSs with free contracted capacity (a sign-up with
    "dao_recovery": true lists the agent's key as the account's recovery key).
    With --entryway, an account moved or restored gets the host password the entryway
    keeps for it (asked for with a token signed by the agent's key), so its member
    logs in through the entryway with the same handle and password as before.
    With --directory it also buys hosting capacity (unless --no-capacity): when accounts
    hosted and waiting, forecast at their recent growth, pass --capacity-threshold of
    the capacity under contract on live providers and coming, or that capacity is under
    --capacity-floor (a dead or leaving provider's contracts stop counting), it opens
    one request for bids on the market for the difference, awards it once bidding
    closes (--bid-window) and signs for the DAO the contracts the providers signed.
    Every action goes through the mandate guard and is recorded in the ledger with its
    verdict and reason; what the mandate leaves to members becomes a DAO motion (members veto with
    'plaza dao veto N') or proposal, carried out by a later pass; a proposal's body is
    drafted from the action's facts by the --assist backend (docs/assist.md: words
    only, never the action). Prints each action:
    its outcome, the guard's verdict, why, and what was done. With --once, exits 1 on
    an error; with --interval, a pass that fails is reported and the next one runs, and
    SIGTERM or Ctrl-C stops the loop after the pass under way ("stopped").

    Example:

    \b
        plaza agents run --data-dir .plaza --as ops --once
        plaza agents run --as ops --interval 3 --directory http://127.0.0.1:2582 \\
            --archive http://127.0.0.1:2586 --dead-after 30 \\
            --entryway http://127.0.0.1:2592 --capacity-floor 150
    """
    from plaza.agents.credentials import EntrywayCredentials
    from plaza.agents.hosting import Hosting
    from plaza.agents.live_capacity import LiveCapacityDesired
    from plaza.agents.runner import LiveAgent, run_once
    from plaza.agents.settlement import SettlementDesired
    from plaza.assist.draft import draft

    if once == (interval is not None):
        typer.echo("error: give exactly one of --once and --interval", err=True)
        raise typer.Exit(2)
    with reporting():
        chosen = assist_backend(assist)

        def drafter(facts: dict[str, Any]) -> str:
            drafted = draft(chosen, facts).value
            return f"{drafted.title}\n\n{drafted.body}"

        keys = keystore(data_dir)
        signer = keys.get(agent)
        market = local_market(data_dir, db, agent)
        waiting = _signups(signups)
        prices = parse_prices(market_currency(market), max_price)
        if set(prices) != {"account"}:
            raise InvalidInputError("--capacity-max-price: expected account=AMOUNT")
        plan = (
            LiveCapacityDesired(
                threshold=threshold,
                headroom=headroom,
                bid_window_s=bid_window,
                floor_accounts=floor,
                max_account_price=prices["account"],
            )
            if capacity and directory
            else None
        )
        live = LiveAgent(
            market=market,
            signer=signer,
            hosting=Hosting(directory) if directory else None,
            migration_key=keys.get(migration_key).key if migration_key else signer.key,
            archive_url=archive,
            signups=waiting,
            settle=SettlementDesired(evidence_grace_s=grace),
            credentials=EntrywayCredentials(entryway, signer) if entryway else None,
            capacity=plan,
            dead_after_s=dead_after,
            drafter=drafter,
        )
        done = 0
        stop = threading.Event()
        if not once:  # SIGTERM or Ctrl-C: finish the pass, then stop
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, lambda signum, frame: stop.set())
        while True:
            try:
                records = run_once(live, now_ms(at) if at or once else int(time.time() * 1000))
            except PlazaError as exc:
                if once:
                    raise
                # A long-running loop outlives one failed pass: the next reads afresh.
                typer.echo(f"error: {exc.code}: {exc.message}", err=True)
                live.market.reload()
                records = []
            else:
                _keep(signups, live.signups)
                for rec in records:
                    typer.echo(_show(rec, as_json))
                if not records and not as_json:
                    typer.echo(f"{iso(now_ms(at))} nothing to do")
            done += 1
            if once:
                return
            if (passes is not None and done >= passes) or stop.wait(max(0.0, interval or 0.0)):
                break
        typer.echo("stopped")


@app.command("log")
def log_cmd(
    *,
    data_dir: DataDir = DATA_DIR,
    db: Db = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per line per action.")
    ] = False,
    assist: Annotated[
        str,
        typer.Option(
            "--assist",
            help="Backend that writes the explanations: none (templates), local, openai, auto.",
        ),
    ] = "none",
) -> None:
    """Print every action the agents recorded in the ledger, oldest first.

    Each entry: the ledger sequence number and time, the kind of action, its subject
    (the provider's DID it concerns, the host accounts leave for a migration), the
    reason in words, the mandate guard's verdict, the outcome, what was done, and an
    explanation in plain words built only from the record and the clause of the mandate
    in force at it (docs/assist.md; by --assist, templates by default). With --json, one
    object per line: {"seq", "time", "kind", "subject", "reason", "rule", "verdict",
    "outcome", "detail", "agent"[, "proposal"], "explanation"}.

    Example:

    \b
        plaza agents log --db .plaza/gov/ledger.db --json
        plaza agents log --data-dir .plaza/gov
    """
    from plaza.agents.journal import entries, line
    from plaza.assist.explain import (
        clause_of,
        explain,
        facts_of_event,
        mandate_at,
        mandate_timeline,
    )
    from plaza.dao.mandate import default_mandate
    from plaza.ledger import SqlEventStore

    with reporting():
        chosen = assist_backend(assist)
        store = SqlEventStore.open(resolve_db(data_dir, _ledger_url(db)))
        try:
            events = list(store.read())
        finally:
            store.close()
        timeline = mandate_timeline(events, default_mandate())
        for ev in events:
            for entry in entries([ev]):
                facts = facts_of_event(ev)
                clause = clause_of(mandate_at(timeline, ev.seq), facts["kind"])
                entry["explanation"] = explain(chosen, facts, clause).value.explanation
                text = f"{line(entry)}\n    explained: {entry['explanation']}"
                typer.echo(json.dumps(entry) if as_json else text)


def _ledger_url(db: str | None) -> str | None:
    """A ``--db`` given as a plain SQLite file path, as a URL."""
    if db is None or "://" in db:
        return db
    path = Path(db)
    if not path.exists():
        raise InvalidInputError(f"no ledger at {db}")
    return f"sqlite://{path}"
