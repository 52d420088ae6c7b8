"""``plaza market ...``: join, bid, report and get paid (docs/market.md walks through it).

Settings come from flags, then the environment, then defaults, as for ``plaza dao``:
``--data-dir`` (``PLAZA_DATA``, default ``./.plaza``) holds the keystore ``keys.json``
and the SQLite ledger; ``--db`` (``PLAZA_DB``) points elsewhere; ``--at``
(``PLAZA_AT``) acts at another time (ISO 8601, Unix ms, or ``+7d``).

Two kinds of command. A provider's commands (``provider register``, ``bid``,
``contract sign``, ``usage report``, ``probe report``, ``dispute open``) build a
document and sign it with the keystore identity ``--as``; with ``--url`` they post it
to a market's HTTP API, otherwise the local operator ``--operator`` records it in the
local ledger. The operator's commands (``open``, ``rfb create``, ``award``, ``contract
approve``, ``escrow fund``, ``settle``, ``dispute resolve``) run on the local ledger and
sign as ``--operator`` (``PLAZA_MARKET_OPERATOR``). When the ledger holds a DAO, the
market runs under it: the operator must be one of its agents, the mandate is the DAO's
and money moves through the DAO's treasury.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from plaza.cli import market_pay
from plaza.cli.dao import _iso, _now, _pairs
from plaza.cli.dao_keys import DEFAULT_DIRECTORY, Directory
from plaza.cli.dao_support import did_of, moment_ms
from plaza.cli.ledger import DATA_DIR, DataDir, Db, reporting
from plaza.cli.market_support import (
    MANDATE_FILE,
    As,
    AsJson,
    At,
    LocalOperator,
    MandateFile,
    MarketDid,
    Operator,
    OwnDid,
    ProviderDid,
    Url,
    check_url_at,
    currency_of,
    emit,
    local_market,
    market_currency,
    market_did,
    parse_prices,
    parse_seconds,
    parse_sla,
    signer_of,
    submit,
)

app = typer.Typer(
    name="market",
    help="The market: providers, requests for bids, awards, contracts, usage, probes, pay.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
provider_app = typer.Typer(help="Register, list and show providers.", no_args_is_help=True)
rfb_app = typer.Typer(help="Create, list and show requests for bids.", no_args_is_help=True)
contract_app = typer.Typer(help="Show, sign and approve contracts.", no_args_is_help=True)
usage_app = typer.Typer(help="Report signed usage (or observe it).", no_args_is_help=True)
probe_app = typer.Typer(help="Report signed probe samples.", no_args_is_help=True)
dispute_app = typer.Typer(help="Open and resolve invoice disputes.", no_args_is_help=True)
invoice_app = typer.Typer(help="Show invoices.", no_args_is_help=True)
escrow_app = typer.Typer(help="Fund the market's settlement escrow.", no_args_is_help=True)
for sub, name in (
    (provider_app, "provider"),
    (rfb_app, "rfb"),
    (contract_app, "contract"),
    (usage_app, "usage"),
    (probe_app, "probe"),
    (dispute_app, "dispute"),
    (invoice_app, "invoice"),
    (escrow_app, "escrow"),
):
    app.add_typer(sub, name=name)

# -- the market itself ---------------------------------------------------------------------


@app.command("open")
def open_market(
    *,
    operator: Operator,
    epoch: Annotated[str, typer.Option("--epoch", help="Epoch length (e.g. 1d).")] = "1d",
    window: Annotated[str, typer.Option("--window", help="Probe window (e.g. 5m).")] = "5m",
    genesis: Annotated[str | None, typer.Option("--genesis", help="Epoch 0 starts (ISO).")] = None,
    min_probers: Annotated[int, typer.Option("--min-probers", help="Quorum size.")] = 3,
    fault_f: Annotated[int, typer.Option("--faulty", help="Probers that may lie (f).")] = 1,
    mandate: MandateFile = None,
    data_dir: DataDir = DATA_DIR,
    db: Db = None,
    at: At = None,
) -> None:
    """Open the market on the local ledger, with its epoch, window and probe quorum.

    Under a DAO the mandate is the DAO's; a market without one keeps the --mandate it
    was opened with in DATA/market-mandate.toml.

    Example:

    \b
        plaza market open --operator ops --epoch 1d --window 5m --genesis 2025-01-01
    """
    from plaza.market import MarketParams

    with reporting():
        now = _now(at)
        start = moment_ms(genesis, at, "--genesis") if genesis else now
        params = MarketParams(
            genesis_ms=start,
            epoch_s=parse_seconds(epoch),
            window_s=parse_seconds(window),
            min_probers=min_probers,
            fault_f=fault_f,
        )
        market = local_market(data_dir, db, operator, mandate)
        market.open(params, now)
        if mandate is not None and market.dao is None:
            (data_dir / MANDATE_FILE).write_text(mandate.read_text(encoding="utf-8"), "utf-8")
    typer.echo(f"market open: epoch {epoch}, window {window}, epoch 0 starts {_iso(start)}")


# -- providers -----------------------------------------------------------------------------


@provider_app.command("register")
def provider_register(
    *,
    signer: As,
    services: Annotated[str, typer.Option("--services", help="Comma list: hosting,relay,...")],
    regions: Annotated[str, typer.Option("--regions", help="Comma list of regions.")],
    endpoint: Annotated[str, typer.Option("--endpoint", help="Where probers reach you.")],
    capacity: Annotated[
        list[str] | None,
        typer.Option("--capacity", help="SERVICE:accounts=N,gb=N,rps=N (repeat per service)."),
    ] = None,
    price: Annotated[
        list[str] | None, typer.Option("--price", help="SERVICE:account=0.02,... (repeat).")
    ] = None,
    bond: Annotated[str, typer.Option("--bond", help="Bond held in escrow, e.g. 1000.00.")] = "0",
    did: OwnDid = None,
    for_market: MarketDid = None,
    directory: Directory = DEFAULT_DIRECTORY,
    url: Url = None,
    operator: LocalOperator = None,
    data_dir: DataDir = DATA_DIR,
    db: Db = None,
    at: At = None,
) -> None:
    """Join the market: sign a registration with your key and submit it.

    A did:key registers as itself. A did:plc must list your key under #plaza (see 'plaza
    dao keys publish') or #atproto: its operations are read from --directory and carried
    in the registration as the proof the market checks. The registration names the
    market it is for (its operator's DID, read from --url's GET /market or the local
    ledger, or given with --market); another market refuses it.

    Example:

    \b
        plaza market provider register --as acme --services hosting --regions eu \\
            --capacity hosting:accounts=5000,gb=500,rps=200 \\
            --price hosting:account=0.04,gb_hour=0.01 --bond 1000.00 \\
            --endpoint https://pds.acme.example --url https://market.plaza.example
    """
    from plaza.market import sign_doc

    with reporting():
        check_url_at(url, at)
        s = signer_of(data_dir, signer)
        money = currency_of(url=url, data_dir=data_dir, db=db)
        cap = {k: _pairs(v) for k, _, v in (c.partition(":") for c in capacity or [])}
        prices = {k: parse_prices(money, v) for k, _, v in (p.partition(":") for p in price or [])}
        provider = did or s.did
        extra: dict[str, Any] = {}
        if provider.startswith("did:plc:"):
            from plaza.atproto.plc import proof_value
            from plaza.services.directory.client import active_chain

            extra["proof"] = proof_value(active_chain(directory, provider))
        doc = sign_doc(
            s.key,
            {
                **extra,
                "$type": "registration",
                "provider": provider,
                "market": market_did(for_market, url=url, data_dir=data_dir, db=db),
                "key": s.key.did_key(),
                "signed_ms": _now(at),
                "services": services.split(","),
                "regions": regions.split(","),
                "capacity": cap,
                "prices": prices,
                "bond": money.parse(bond),
                "endpoint": endpoint,
            },
        )
        submit("register_provider", doc, url=url, data_dir=data_dir, db=db,
                operator=operator, at=at, path="/market/providers")  # fmt: skip
    typer.echo(f"registered {doc['provider']} (on probation until its first clean epoch)")


@provider_app.command("list")
def provider_list(
    *,
    status: Annotated[str | None, typer.Option("--status", help="Only this status.")] = None,
    as_json: AsJson = False,
    data_dir: DataDir = DATA_DIR,
    db: Db = None,
) -> None:
    """List registered providers with their status and the reason for it.

    Example:

    \b
        plaza market provider list --status active
    """
    with reporting():
        ps = [p for _, p in sorted(local_market(data_dir, db, None).state.providers.items())]
        ps = [p for p in ps if status is None or p.status == status]
    emit(
        [p.to_json() for p in ps],
        as_json,
        "\n".join(f"{p.did}  {p.status:<10} {','.join(p.services):<16} {p.reason}" for p in ps),
    )


@provider_app.command("show")
def provider_show(
    *,
    did: ProviderDid,
    data_dir: DataDir = DATA_DIR,
    db: Db = None,
) -> None:
    """Show one provider: services, capacity, prices, bond, status history.

    Example:

    \b
        plaza market provider show did:plc:ewvi7nxzyoun6zhxrhs64oiz
    """
    from plaza.market import NotFoundInMarketError

    with reporting():
        did = did_of(data_dir, did)
        p = local_market(data_dir, db, None).state.providers.get(did)
        if p is None:
            raise NotFoundInMarketError(f"no provider {did}")
    typer.echo(json.dumps(p.to_json(), indent=2))


@provider_app.command("bond-received")
def provider_bond_received(
    *,
    did: ProviderDid,
    amount: Annotated[str, typer.Option("--amount", help="Amount received, e.g. 1000.00.")],
    reference: Annotated[
        str, typer.Option("--reference", help="The payment's reference (a transfer id).")
    ],
    operator: Operator,
    data_dir: DataDir = DATA_DIR,
    db: Db = None,
    at: At = None,
) -> None:
    """Record that a provider's bond payment arrived (the operator's receipt).

    A declared bond counts, and can be pledged to bids, only once received; each payment
    reference is receipted once.

    Example:

    \b
        plaza market provider bond-received did:plc:ewvi7nxzyoun6zhxrhs64oiz \\
            --amount 1000.00 --reference SEPA-2025-0042 --operator ops
    """
    with reporting():
        did = did_of(data_dir, did)
        m = local_market(data_dir, db, operator)
        money = market_currency(m)
        p = m.receive_bond(did, money.parse(amount), reference, _now(at))
    typer.echo(
        f"{did} bond held: {money.format(p.bond)} of {money.format(p.bond_declared)} declared"
    )


# -- requests for bids ---------------------------------------------------------------------


@rfb_app.command("create")
def rfb_create(
    *,
    operator: Operator,
    service: Annotated[str, typer.Option("--service", help="hosting, relay, appview, ...")],
    quantity: Annotated[int, typer.Option("--quantity", help="Accounts to serve.")],
    region: Annotated[str, typer.Option("--region", help="Region.")],
    max_price: Annotated[str, typer.Option("--max-price", help="account=0.05,gb_hour=0.01,...")],
    start: Annotated[
        str, typer.Option("--start", help="Service starts (ISO, ms, or +1d from --at/now).")
    ],
    term: Annotated[str, typer.Option("--term", help="How long (e.g. 30d).")],
    deadline: Annotated[
        str, typer.Option("--deadline", help="Bids close (ISO, ms, or +1d from --at/now).")
    ],
    sla: Annotated[
        str | None, typer.Option("--sla", help="availability=999000,latency=800,durability=...")
    ] = None,
    profile: Annotated[
        str | None, typer.Option("--profile", help="Use per account-epoch: gb_hour=2,request=500")
    ] = None,
    min_bond: Annotated[str, typer.Option("--min-bond", help="Bond each bid pledges.")] = "0",
    max_bids: Annotated[int, typer.Option("--max-bids", help="Bids taken at most.")] = 20,
    data_dir: DataDir = DATA_DIR,
    db: Db = None,
    at: At = None,
) -> None:
    """Publish a request for bids (the mandate must allow rfb.create).

    Example:

    \b
        plaza market rfb create --operator ops --service hosting --quantity 10000 \\
            --region eu --max-price account=0.05,gb_hour=0.01 --start +7d --term 30d \\
            --deadline +3d --sla availability=999000,latency=800
    """
    with reporting():
        m = local_market(data_dir, db, operator)
        money = market_currency(m)
        spec: dict[str, Any] = {
            "service": service,
            "quantity": quantity,
            "region": region,
            "start_ms": moment_ms(start, at, "--start"),
            "term_s": parse_seconds(term),
            "max_prices": parse_prices(money, max_price),
            "sla": parse_sla(sla),
            "deadline_ms": moment_ms(deadline, at, "--deadline"),
            "min_bond": money.parse(min_bond),
            "max_bids": max_bids,
            "profile": _pairs(profile) if profile else {},
        }
        rfb = m.create_rfb(spec, _now(at))
    typer.echo(
        f"{rfb.id}: {quantity} {service} accounts in {region}; bids until {_iso(rfb.deadline_ms)}"
    )


@rfb_app.command("list")
def rfb_list(as_json: AsJson = False, data_dir: DataDir = DATA_DIR, db: Db = None) -> None:
    """List requests for bids.

    Example:

    \b
        plaza market rfb list
    """
    with reporting():
        rs = [r for _, r in sorted(local_market(data_dir, db, None).state.rfbs.items())]
    emit(
        [r.to_json() for r in rs],
        as_json,
        "\n".join(
            f"{r.id}  {r.service:<8} {r.quantity:>8} {r.region:<6} "
            f"{'awarded' if r.awarded else 'open':<8} {len(r.bids)} bids"
            for r in rs
        ),
    )


@rfb_app.command("show")
def rfb_show(
    *,
    rfb_id: Annotated[str, typer.Argument(help="e.g. rfb-1")],
    data_dir: DataDir = DATA_DIR,
    db: Db = None,
) -> None:
    """Show a request for bids, its bids and, once awarded, the score breakdown.

    Example:

    \b
        plaza market rfb show rfb-1
    """
    from plaza.market import NotFoundInMarketError

    with reporting():
        st = local_market(data_dir, db, None).state
        r = st.rfbs.get(rfb_id)
        if r is None:
            raise NotFoundInMarketError(f"no request for bids {rfb_id}")
        out = r.to_json()
        out["bids"] = [st.bids[b].to_json() for b in r.bids]
        out["award"] = st.awards.get(rfb_id)
    typer.echo(json.dumps(out, indent=2))


# -- bids and awards -------------------------------------------------------------------------


@app.command("bid")
def bid(
    *,
    signer: As,
    rfb_id: Annotated[str, typer.Option("--rfb", help="The request you bid on.")],
    quantity: Annotated[int, typer.Option("--quantity", help="Accounts you offer.")],
    price: Annotated[str, typer.Option("--price", help="account=0.04,gb_hour=0.01,...")],
    expires: Annotated[
        str, typer.Option("--expires", help="Bid expiry (ISO, ms, or +2d from --at/now).")
    ],
    sla: Annotated[str | None, typer.Option("--sla", help="availability=...,latency=...")] = None,
    bond: Annotated[
        str, typer.Option("--bond", help="Bond pledged (from your escrowed bond).")
    ] = "0",
    did: OwnDid = None,
    for_market: MarketDid = None,
    directory: Directory = DEFAULT_DIRECTORY,
    url: Url = None,
    operator: LocalOperator = None,
    data_dir: DataDir = DATA_DIR,
    db: Db = None,
    at: At = None,
) -> None:
    """Sign a bid and submit it; a rejected bid prints its reason and changes nothing.

    Example:

    \b
        plaza market bid --as acme --rfb rfb-1 --quantity 2500 \\
            --price account=0.04,gb_hour=0.01 --sla availability=999500,latency=500 \\
            --bond 200.00 --expires +2d --url https://market.plaza.example
    """
    from plaza.market import sign_doc

    with reporting():
        check_url_at(url, at)
        s = signer_of(data_dir, signer)
        money = currency_of(url=url, data_dir=data_dir, db=db)
        doc = sign_doc(
            s.key,
            {
                "$type": "bid",
                "provider": did or s.did,
                "market": market_did(for_market, url=url, data_dir=data_dir, db=db),
                "rfb": rfb_id,
                "quantity": quantity,
                "prices": parse_prices(money, price),
                "sla": parse_sla(sla) or {},
                "bond": money.parse(bond),
                "expires_ms": moment_ms(expires, at, "--expires"),
            },
        )
        out = submit("submit_bid", doc, url=url, data_dir=data_dir, db=db, operator=operator,
                      at=at, path="/market/bids")  # fmt: skip
    typer.echo(f"bid {out.get('id', '')} accepted on {rfb_id}")


@app.command("award")
def award(
    *,
    rfb_id: Annotated[str, typer.Argument(help="The request to award.")],
    operator: Operator,
    as_json: AsJson = False,
    data_dir: DataDir = DATA_DIR,
    db: Db = None,
    at: At = None,
) -> None:
    """Award a request: score its bids, allocate within the mandate, record the reasons.

    Example:

    \b
        plaza market award rfb-1 --operator ops
    """
    with reporting():
        plan, contracts = local_market(data_dir, db, operator).award(rfb_id, _now(at))
    lines = [
        f"{ln.score.provider}  score {ln.score.score_ppm:>7} ppm  {ln.allocated:>7}/{ln.wanted:<7} "
        f"{ln.verdict:<10} {ln.reason}"
        for ln in plan.lines
    ]
    lines += [f"contract {c.id}: {c.quantity} accounts with {c.provider}" for c in contracts]
    emit({**plan.to_payload(), "contracts": [c.id for c in contracts]}, as_json, "\n".join(lines))


# -- contracts ---------------------------------------------------------------------------------


@contract_app.command("show")
def contract_show(
    *,
    contract_id: Annotated[str, typer.Argument(help="e.g. c-1")],
    digest: Annotated[
        bool, typer.Option("--digest", help="Print only the terms digest (to sign).")
    ] = False,
    data_dir: DataDir = DATA_DIR,
    db: Db = None,
) -> None:
    """Show a contract's machine-readable terms, digest and status.

    Example:

    \b
        plaza market contract show c-1
        DIGEST=$(plaza market contract show c-1 --digest)
    """
    from plaza.market import NotFoundInMarketError

    with reporting():
        c = local_market(data_dir, db, None).state.contracts.get(contract_id)
        if c is None:
            raise NotFoundInMarketError(f"no contract {contract_id}")
    terms = c.to_json()
    typer.echo(terms["terms_digest"] if digest else json.dumps(terms, indent=2))


@contract_app.command("sign")
def contract_sign(
    *,
    contract_id: Annotated[str, typer.Argument(help="e.g. c-1")],
    signer: As,
    digest: Annotated[str, typer.Option("--digest", help="The terms digest you agree to.")],
    did: OwnDid = None,
    for_market: MarketDid = None,
    directory: Directory = DEFAULT_DIRECTORY,
    url: Url = None,
    operator: LocalOperator = None,
    data_dir: DataDir = DATA_DIR,
    db: Db = None,
    at: At = None,
) -> None:
    """Sign a contract's terms (by their digest, from 'contract show').

    Example:

    \b
        plaza market contract sign c-1 --as acme --digest 3f2a... --url https://market.plaza.example
    """
    from plaza.market import sign_doc

    with reporting():
        check_url_at(url, at)
        s = signer_of(data_dir, signer)
        doc = sign_doc(s.key, {"$type": "terms", "provider": did or s.did,
                               "market": market_did(for_market, url=url, data_dir=data_dir,
                                                    db=db),
                               "contract": contract_id, "terms_digest": digest})  # fmt: skip
        submit("sign_contract", doc, url=url, data_dir=data_dir, db=db, operator=operator,
                at=at, path=f"/market/contracts/{contract_id}/sign")  # fmt: skip
    typer.echo(f"signed {contract_id}")


@contract_app.command("approve")
def contract_approve(
    *,
    contract_id: Annotated[str, typer.Argument(help="e.g. c-1")],
    operator: Operator,
    proposal: Annotated[int, typer.Option("--proposal", help="A passed proposal to cite.")] = 0,
    data_dir: DataDir = DATA_DIR,
    db: Db = None,
    at: At = None,
) -> None:
    """Sign a contract for the DAO: within the mandate, or citing a passed proposal.

    Example:

    \b
        plaza market contract approve c-1 --operator ops
    """
    with reporting():
        c = local_market(data_dir, db, operator).approve_contract(
            contract_id, _now(at), proposal=proposal
        )
    typer.echo(f"{contract_id} is {c.status}")


# -- evidence and money (plaza.cli.market_pay) ----------------------------------------------

usage_app.command("report")(market_pay.usage_report)
probe_app.command("report")(market_pay.probe_report)
escrow_app.command("fund")(market_pay.escrow_fund)
app.command("settle")(market_pay.settle)
invoice_app.command("show")(market_pay.invoice_show)
dispute_app.command("open")(market_pay.dispute_open)
dispute_app.command("resolve")(market_pay.dispute_resolve)
app.command("books")(market_pay.books)
