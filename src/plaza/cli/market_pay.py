"""``plaza market`` commands for evidence and money: usage and probe reports, escrow,
settlement, invoices, disputes, books. Registered in :mod:`plaza.cli.market`."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated

import typer

from plaza.cli import params
from plaza.cli.dao import _now
from plaza.cli.dao_support import did_of
from plaza.cli.ledger import DATA_DIR, DataDir, Db, reporting
from plaza.cli.market_support import (
    As,
    AsJson,
    At,
    LocalOperator,
    MarketDid,
    Operator,
    OwnDid,
    Url,
    check_url_at,
    currency_of,
    emit,
    local_market,
    market_currency,
    market_did,
    signer_of,
    submit,
)
from plaza.errors import InvalidInputError

# -- evidence --------------------------------------------------------------------------------


def usage_report(
    *,
    signer: As,
    contract_id: Annotated[str, typer.Option("--contract", help="e.g. c-1")],
    epoch: Annotated[int, typer.Option("--epoch", help="The epoch reported.")],
    accounts: Annotated[int, typer.Option("--accounts", help="Accounts hosted.")] = 0,
    gb_hours: Annotated[int, typer.Option("--gb-hours", help="GB-hours stored.")] = 0,
    requests: Annotated[int, typer.Option("--requests", help="Requests served.")] = 0,
    egress_gb: Annotated[int, typer.Option("--egress-gb", help="GB sent.")] = 0,
    observer: Annotated[bool, typer.Option("--observer", help="Report as an observer.")] = False,
    did: OwnDid = None,
    for_market: MarketDid = None,
    url: Url = None,
    operator: LocalOperator = None,
    data_dir: DataDir = DATA_DIR,
    db: Db = None,
    at: At = None,
) -> None:
    """Sign and submit the usage of a contract in an ended epoch (or observe another's).

    Example:

    \b
        plaza market usage report --as acme --contract c-1 --epoch 12 --accounts 2500 \\
            --gb-hours 60000 --requests 9000000 --egress-gb 300 --url https://market.plaza.example
    """
    from plaza.market import sign_doc

    with reporting():
        check_url_at(url, at)
        s = signer_of(data_dir, signer)
        usage = {
            "account": accounts,
            "gb_hour": gb_hours,
            "request": requests,
            "egress_gb": egress_gb,
        }
        doc = sign_doc(
            s.key,
            {
                "$type": "observation" if observer else "usage",
                "observer" if observer else "provider": did or s.did,
                "market": market_did(for_market, url=url, data_dir=data_dir, db=db),
                "contract": contract_id,
                "epoch": epoch,
                "usage": {k: v for k, v in usage.items() if v},
            },
        )
        kind, path = (
            ("report_observation", "/market/observations") if observer
            else ("report_usage", "/market/usage")
        )  # fmt: skip
        submit(kind, doc, url=url, data_dir=data_dir, db=db, operator=operator, at=at, path=path)
    typer.echo(
        f"{'observation' if observer else 'usage'} of {contract_id} for epoch {epoch} recorded"
    )


def probe_report(
    *,
    signer: As,
    provider: Annotated[
        str,
        typer.Option(
            "--provider",
            callback=params.did_or_name,
            help="The probed provider's DID, or its keystore name here.",
        ),
    ],
    window: Annotated[int, typer.Option("--window", help="First probe window of the series.")],
    up: Annotated[str, typer.Option("--up", help="One 1/0 per window, e.g. 1101.")],
    latency: Annotated[str, typer.Option("--latency", help="Comma list of ms per window.")],
    did: OwnDid = None,
    for_market: MarketDid = None,
    url: Url = None,
    operator: LocalOperator = None,
    data_dir: DataDir = DATA_DIR,
    db: Db = None,
    at: At = None,
) -> None:
    """Sign and submit probe samples of one provider over consecutive closed windows.

    Example:

    \b
        plaza market probe report --as prober1 --provider did:plc:ewvi7nxzyoun6zhxrhs64oiz \\
            --window 288 --up 1101 --latency 80,95,0,88 --url https://market.plaza.example
    """
    from plaza.market import encode_series, sign_doc

    with reporting():
        flags = [int(c) for c in up if c in "01"]
        if len(flags) != len(up):
            raise InvalidInputError("--up is a string of 1 (up) and 0 (down), one per window")
        lat = [int(x) for x in latency.split(",")] if latency else []
        check_url_at(url, at)
        s = signer_of(data_dir, signer)
        provider = did_of(data_dir, provider)
        series = [encode_series(provider, window, flags, lat)]
        audience = market_did(for_market, url=url, data_dir=data_dir, db=db)
        doc = sign_doc(
            s.key,
            {"$type": "probe", "prober": did or s.did, "market": audience, "series": series},
        )
        submit("report_probes", doc, url=url, data_dir=data_dir, db=db, operator=operator,
                at=at, path="/market/probes")  # fmt: skip
    typer.echo(f"{len(flags)} samples of {provider} from window {window} recorded")


# -- money -------------------------------------------------------------------------------------


def escrow_fund(
    *,
    amount: Annotated[str, typer.Argument(help="e.g. 5000.00")],
    operator: Operator,
    memo: Annotated[str, typer.Option("--memo", help="A note.")] = "",
    data_dir: DataDir = DATA_DIR,
    db: Db = None,
    at: At = None,
) -> None:
    """Move money from the treasury into the market's settlement escrow.

    Example:

    \b
        plaza market escrow fund 1500.00 --operator ops
    """
    with reporting():
        m = local_market(data_dir, db, operator)
        money = market_currency(m)
        m.fund_escrow(money.parse(amount), _now(at), memo)
        left = m.state.journal.balance("Assets:Escrow:Market")
    typer.echo(f"escrow holds {money.format(left)}")


def settle(
    *,
    epoch: Annotated[int, typer.Option("--epoch", help="Settle every epoch up to this one.")],
    operator: Operator,
    as_json: AsJson = False,
    data_dir: DataDir = DATA_DIR,
    db: Db = None,
    at: At = None,
) -> None:
    """Invoice ended epochs, apply penalties, and pay what is owed from escrow.

    Example:

    \b
        plaza market settle --epoch 12 --operator ops
    """
    with reporting():
        m = local_market(data_dir, db, operator)
        money = market_currency(m)
        r = m.settle(epoch, _now(at))
    text = [
        f"settled epochs {r.epochs}: owed {money.format(r.owed)}, paid {money.format(r.paid)}, "
        f"short {money.format(r.shortfall)}"
    ]
    text += [
        f"  {i.id}: {money.format(i.amount)} (availability {i.availability_ppm} ppm)"
        for i in r.invoices
    ]
    text += [f"  {p} -> {s}: {why}" for p, s, why in r.status_changes]
    text += [f"  need {n.id}: {n.kind} {n.accounts} accounts ({n.reason})" for n in r.needs]
    text += [f"  pending {p.kind} {p.subject}: {p.verdict} ({p.reason})" for p in r.pending]
    emit(r.to_json(), as_json, "\n".join(text))


def invoice_show(
    *,
    invoice_id: Annotated[str, typer.Argument(help="e.g. inv-c-1-12")],
    data_dir: DataDir = DATA_DIR,
    db: Db = None,
) -> None:
    """Show an invoice: verified usage, windows down, credits, amount, paid, outstanding.

    Example:

    \b
        plaza market invoice show inv-c-1-12
    """
    from plaza.market import NotFoundInMarketError
    from plaza.market.invoicing import outstanding

    with reporting():
        st = local_market(data_dir, db, None).state
        inv = st.invoices.get(invoice_id)
        if inv is None:
            raise NotFoundInMarketError(f"no invoice {invoice_id}")
        out = inv.to_map()
        out["paid"] = st.invoice_paid.get(invoice_id, 0)
        out["outstanding"] = outstanding(st, invoice_id)
    typer.echo(json.dumps(out, indent=2))


# -- disputes ----------------------------------------------------------------------------------


def dispute_open(
    *,
    signer: As,
    invoice: Annotated[str, typer.Option("--invoice", help="The invoice you dispute.")],
    claim: Annotated[str, typer.Option("--claim", help="Extra amount claimed, e.g. 5.87.")],
    reason: Annotated[str, typer.Option("--reason", help="Why.")],
    evidence: Annotated[
        list[Path], typer.Option("--evidence", help="Evidence file (its SHA-256 is recorded).")
    ],
    kind: Annotated[str, typer.Option("--kind", help="probe-log, usage-log, ...")] = "other",
    did: OwnDid = None,
    for_market: MarketDid = None,
    url: Url = None,
    operator: LocalOperator = None,
    data_dir: DataDir = DATA_DIR,
    db: Db = None,
    at: At = None,
) -> None:
    """Dispute one of your invoices within the dispute window, with evidence.

    Example:

    \b
        plaza market dispute open --as acme --invoice inv-c-1-12 --claim 5.87 \\
            --reason "probers were partitioned" --evidence probes.log --kind probe-log
    """
    from plaza.market import sign_doc

    with reporting():
        items = []
        for path in evidence:
            try:
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
            except OSError as exc:
                raise InvalidInputError(f"cannot read evidence {path}: {exc}") from exc
            items.append({"kind": kind, "digest": digest, "note": path.name})
        check_url_at(url, at)
        s = signer_of(data_dir, signer)
        doc = sign_doc(
            s.key,
            {
                "$type": "dispute",
                "provider": did or s.did,
                "market": market_did(for_market, url=url, data_dir=data_dir, db=db),
                "invoice": invoice,
                "claim": currency_of(url=url, data_dir=data_dir, db=db).parse(claim),
                "reason": reason,
                "evidence": items,
            },
        )
        out = submit("open_dispute", doc, url=url, data_dir=data_dir, db=db,
                      operator=operator, at=at, path="/market/disputes")  # fmt: skip
    typer.echo(f"dispute {out.get('id', '')} opened (proposal {out.get('proposal', 0)})")


def dispute_resolve(
    *,
    dispute_id: Annotated[str, typer.Argument(help="e.g. d-1")],
    operator: Operator,
    outcome: Annotated[str, typer.Option("--outcome", help="Without a DAO: upheld/rejected.")] = "",
    amount: Annotated[str | None, typer.Option("--amount", help="Amount awarded.")] = None,
    data_dir: DataDir = DATA_DIR,
    db: Db = None,
    at: At = None,
) -> None:
    """Record a dispute's outcome (with a DAO: the result of its dispute proposal).

    Example:

    \b
        plaza market dispute resolve d-1 --operator ops
    """
    with reporting():
        m = local_market(data_dir, db, operator)
        money = market_currency(m)
        d = m.resolve_dispute(
            dispute_id, _now(at), outcome=outcome, amount=money.parse(amount) if amount else None
        )
    typer.echo(f"{dispute_id}: {d.status}, {money.format(d.amount)} awarded")


def books(
    *,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write to a file.")] = None,
    data_dir: DataDir = DATA_DIR,
    db: Db = None,
) -> None:
    """Export the market's own journal as Beancount, to standard output or --output.

    Amounts are in the market's currency with its minor digits. Says on standard error
    how many entries it wrote and where; under a DAO the market's money moves through
    the DAO's treasury, so its own journal stays empty: see 'plaza dao books'.

    Example:

    \b
        plaza market books -o market.beancount
    """
    from plaza.market.books import entries_to_beancount

    with reporting():
        m = local_market(data_dir, db, None)
        money = market_currency(m)
        entries = m.state.journal.entries
        text = entries_to_beancount(
            entries, currency=money.code, title="Plaza market", digits=money.minor_digits
        )
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
    where = "standard output" if output is None else str(output)
    typer.echo(f"{len(entries)} journal entries in {money.code} to {where}", err=True)
    if not entries and m.dao is not None:
        typer.echo(
            "under a DAO the market's payments are in the DAO's books: plaza dao books", err=True
        )
