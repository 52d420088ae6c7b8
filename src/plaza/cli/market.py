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

import hashlib
import json
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any

import typer

from plaza.cli.dao import _iso, _keystore, _now, _pairs
from plaza.cli.ledger import DATA_DIR, DataDir, Db, reporting, resolve_db
from plaza.errors import InvalidInputError

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

As = Annotated[str, typer.Option("--as", envvar="PLAZA_AS", help="Keystore identity that signs.")]
Operator = Annotated[
    str,
    typer.Option(
        "--operator", envvar="PLAZA_MARKET_OPERATOR", help="Keystore identity of the operator."
    ),
]
At = Annotated[
    str | None,
    typer.Option("--at", envvar="PLAZA_AT", help="Act at this time: ISO 8601, Unix ms, or +7d."),
]
Url = Annotated[
    str | None,
    typer.Option("--url", envvar="PLAZA_MARKET_URL", help="Post to this market's HTTP API."),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]
MandateFile = Annotated[
    Path | None,
    typer.Option("--mandate", help="Mandate TOML for a market without a DAO (default: Plaza's)."),
]


MANDATE_FILE = "market-mandate.toml"
"""Where a market without a DAO keeps the mandate ``open --mandate`` gave it."""

# -- helpers ------------------------------------------------------------------------------


def _market(
    data_dir: Path, db: str | None, operator: str | None, mandate: Path | None = None
) -> Any:
    """The market on the local ledger, under its DAO if the ledger holds one."""
    from plaza.dao.mandate import default_mandate, load_mandate
    from plaza.dao.service import Dao
    from plaza.ledger import Ledger, SqlEventStore
    from plaza.market import Market
    from plaza.market.dao_port import DaoLink

    store = SqlEventStore.open(resolve_db(data_dir, db))
    signer = _keystore(data_dir).get(operator) if operator else None
    did = signer.did if signer else "did:web:reader.invalid"
    key = signer.key if signer else None
    dao = Dao(store)
    if dao.state.initialized:
        return Market(dao.ledger, operator_did=did, operator_key=key, dao=DaoLink(dao, signer))
    kept = data_dir / MANDATE_FILE
    if mandate is None and kept.exists():
        mandate = kept
    m = load_mandate(mandate) if mandate else default_mandate()
    return Market(Ledger(store), operator_did=did, operator_key=key, mandate=m)


def _minor(text: str) -> int:
    """``"12.50"`` -> 1250 (two decimals)."""
    try:
        value = Decimal(text) * 100
    except InvalidOperation as exc:
        raise InvalidInputError(f"{text!r} is not an amount") from exc
    if value != value.to_integral_value() or value < 0:
        raise InvalidInputError(f"{text!r} has more than 2 decimals or is negative")
    return int(value)


def _prices(text: str) -> dict[str, int]:
    """``account=0.02,gb_hour=0.001`` (currency units per unit) -> price-scale integers."""
    from plaza.market import PRICE_SCALE

    out: dict[str, int] = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        try:
            scaled = Decimal(value) * 100 * PRICE_SCALE
        except InvalidOperation as exc:
            raise InvalidInputError(f"price {part!r}: expected unit=amount") from exc
        if not sep or scaled != scaled.to_integral_value() or scaled < 0:
            raise InvalidInputError(f"price {part!r}: expected unit=amount, at most 8 decimals")
        out[name.strip()] = int(scaled)
    return out


def _sla(text: str | None) -> dict[str, int]:
    if not text:
        return {}
    raw = _pairs(text)
    names = {"availability": "availability_ppm", "latency": "latency_p95_ms",
             "durability": "durability_ppm"}  # fmt: skip
    unknown = set(raw) - set(names)
    if unknown:
        raise InvalidInputError(f"--sla takes {', '.join(names)}; not {', '.join(unknown)}")
    return {names[k]: v for k, v in raw.items()}


def _duration(text: str) -> int:
    from plaza.dao.mandate import parse_duration

    try:
        return parse_duration(text if not text.isdigit() else int(text))
    except ValueError as exc:
        raise InvalidInputError(str(exc)) from exc


def _submit(
    kind: str, doc: dict[str, Any], *, url: str | None, data_dir: Path, db: str | None,
    operator: str | None, at: str | None, path: str = "",
) -> dict[str, Any]:  # fmt: skip
    """Post a signed document to ``url``, or record it locally as ``operator``."""
    if url:
        import httpx

        from plaza.atproto import datamodel
        from plaza.market.errors import MarketRejectedError

        r = httpx.post(f"{url.rstrip('/')}{path}", json=datamodel.to_json(doc), timeout=30)
        body: dict[str, Any] = r.json() if r.content else {}
        if r.status_code != 200:
            raise MarketRejectedError(
                body.get("message", r.text), code=body.get("error"), status=r.status_code
            )
        return body
    if not operator:
        raise InvalidInputError("give --url to post to a market, or --operator to record locally")
    m = _market(data_dir, db, operator)
    now = _now(at)
    result = getattr(m, kind)(doc, now)
    return result.to_json() if hasattr(result, "to_json") else {"result": result}


def _signer(data_dir: Path, who: str) -> Any:
    return _keystore(data_dir).get(who)


def _emit(value: Any, as_json: bool, text: str) -> None:
    typer.echo(json.dumps(value, indent=2, default=str) if as_json else text)


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
        start = _now(genesis) if genesis else now
        params = MarketParams(
            genesis_ms=start,
            epoch_s=_duration(epoch),
            window_s=_duration(window),
            min_probers=min_probers,
            fault_f=fault_f,
        )
        market = _market(data_dir, db, operator, mandate)
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
    did: Annotated[str | None, typer.Option("--did", help="Your DID (default: the key's).")] = None,
    url: Url = None,
    operator: Annotated[
        str | None, typer.Option("--operator", envvar="PLAZA_MARKET_OPERATOR")
    ] = None,
    data_dir: DataDir = DATA_DIR,
    db: Db = None,
    at: At = None,
) -> None:
    """Join the market: sign a registration with your key and submit it.

    Example:

    \b
        plaza market provider register --as acme --services hosting --regions eu \\
            --capacity hosting:accounts=5000,gb=500,rps=200 \\
            --price hosting:account=0.04,gb_hour=0.01 --bond 1000.00 \\
            --endpoint https://pds.acme.example --url https://market.plaza.example
    """
    from plaza.market import sign_doc

    with reporting():
        s = _signer(data_dir, signer)
        cap = {k: _pairs(v) for k, _, v in (c.partition(":") for c in capacity or [])}
        prices = {k: _prices(v) for k, _, v in (p.partition(":") for p in price or [])}
        doc = sign_doc(
            s.key,
            {
                "$type": "registration",
                "provider": did or s.did,
                "key": s.key.did_key(),
                "services": services.split(","),
                "regions": regions.split(","),
                "capacity": cap,
                "prices": prices,
                "bond": _minor(bond),
                "endpoint": endpoint,
            },
        )
        _submit("register_provider", doc, url=url, data_dir=data_dir, db=db,
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
        ps = [p for _, p in sorted(_market(data_dir, db, None).state.providers.items())]
        ps = [p for p in ps if status is None or p.status == status]
    _emit(
        [p.to_json() for p in ps],
        as_json,
        "\n".join(f"{p.did}  {p.status:<10} {','.join(p.services):<16} {p.reason}" for p in ps),
    )


@provider_app.command("show")
def provider_show(
    *,
    did: Annotated[str, typer.Argument(help="The provider's DID.")],
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
        p = _market(data_dir, db, None).state.providers.get(did)
        if p is None:
            raise NotFoundInMarketError(f"no provider {did}")
    typer.echo(json.dumps(p.to_json(), indent=2))


# -- requests for bids ---------------------------------------------------------------------


@rfb_app.command("create")
def rfb_create(
    *,
    operator: Operator,
    service: Annotated[str, typer.Option("--service", help="hosting, relay, appview, ...")],
    quantity: Annotated[int, typer.Option("--quantity", help="Accounts to serve.")],
    region: Annotated[str, typer.Option("--region", help="Region.")],
    max_price: Annotated[str, typer.Option("--max-price", help="account=0.05,gb_hour=0.01,...")],
    start: Annotated[str, typer.Option("--start", help="Service starts (ISO, ms or +1d).")],
    term: Annotated[str, typer.Option("--term", help="How long (e.g. 30d).")],
    deadline: Annotated[str, typer.Option("--deadline", help="Bids close (ISO, ms or +1d).")],
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
        spec: dict[str, Any] = {
            "service": service,
            "quantity": quantity,
            "region": region,
            "start_ms": _now(start),
            "term_s": _duration(term),
            "max_prices": _prices(max_price),
            "sla": _sla(sla),
            "deadline_ms": _now(deadline),
            "min_bond": _minor(min_bond),
            "max_bids": max_bids,
            "profile": _pairs(profile) if profile else {},
        }
        rfb = _market(data_dir, db, operator).create_rfb(spec, _now(at))
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
        rs = [r for _, r in sorted(_market(data_dir, db, None).state.rfbs.items())]
    _emit(
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
        st = _market(data_dir, db, None).state
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
    expires: Annotated[str, typer.Option("--expires", help="Bid expiry (ISO, ms or +2d).")],
    sla: Annotated[str | None, typer.Option("--sla", help="availability=...,latency=...")] = None,
    bond: Annotated[
        str, typer.Option("--bond", help="Bond pledged (from your escrowed bond).")
    ] = "0",
    did: Annotated[str | None, typer.Option("--did", help="Your DID (default: the key's).")] = None,
    url: Url = None,
    operator: Annotated[
        str | None, typer.Option("--operator", envvar="PLAZA_MARKET_OPERATOR")
    ] = None,
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
        s = _signer(data_dir, signer)
        doc = sign_doc(
            s.key,
            {
                "$type": "bid",
                "provider": did or s.did,
                "rfb": rfb_id,
                "quantity": quantity,
                "prices": _prices(price),
                "sla": _sla(sla) or {},
                "bond": _minor(bond),
                "expires_ms": _now(expires),
            },
        )
        out = _submit("submit_bid", doc, url=url, data_dir=data_dir, db=db, operator=operator,
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
        plan, contracts = _market(data_dir, db, operator).award(rfb_id, _now(at))
    lines = [
        f"{ln.score.provider}  score {ln.score.score_ppm:>7} ppm  {ln.allocated:>7}/{ln.wanted:<7} "
        f"{ln.verdict:<10} {ln.reason}"
        for ln in plan.lines
    ]
    lines += [f"contract {c.id}: {c.quantity} accounts with {c.provider}" for c in contracts]
    _emit({**plan.to_payload(), "contracts": [c.id for c in contracts]}, as_json, "\n".join(lines))


# -- contracts ---------------------------------------------------------------------------------


@contract_app.command("show")
def contract_show(
    *,
    contract_id: Annotated[str, typer.Argument(help="e.g. c-1")],
    data_dir: DataDir = DATA_DIR,
    db: Db = None,
) -> None:
    """Show a contract's machine-readable terms, digest and status.

    Example:

    \b
        plaza market contract show c-1
    """
    from plaza.market import NotFoundInMarketError

    with reporting():
        c = _market(data_dir, db, None).state.contracts.get(contract_id)
        if c is None:
            raise NotFoundInMarketError(f"no contract {contract_id}")
    typer.echo(json.dumps(c.to_json(), indent=2))


@contract_app.command("sign")
def contract_sign(
    *,
    contract_id: Annotated[str, typer.Argument(help="e.g. c-1")],
    signer: As,
    digest: Annotated[str, typer.Option("--digest", help="The terms digest you agree to.")],
    did: Annotated[str | None, typer.Option("--did", help="Your DID (default: the key's).")] = None,
    url: Url = None,
    operator: Annotated[
        str | None, typer.Option("--operator", envvar="PLAZA_MARKET_OPERATOR")
    ] = None,
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
        s = _signer(data_dir, signer)
        doc = sign_doc(s.key, {"$type": "terms", "provider": did or s.did,
                               "contract": contract_id, "terms_digest": digest})  # fmt: skip
        _submit("sign_contract", doc, url=url, data_dir=data_dir, db=db, operator=operator,
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
        c = _market(data_dir, db, operator).approve_contract(
            contract_id, _now(at), proposal=proposal
        )
    typer.echo(f"{contract_id} is {c.status}")


# -- evidence --------------------------------------------------------------------------------


@usage_app.command("report")
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
    did: Annotated[str | None, typer.Option("--did", help="Your DID (default: the key's).")] = None,
    url: Url = None,
    operator: Annotated[
        str | None, typer.Option("--operator", envvar="PLAZA_MARKET_OPERATOR")
    ] = None,
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
        s = _signer(data_dir, signer)
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
                "contract": contract_id,
                "epoch": epoch,
                "usage": {k: v for k, v in usage.items() if v},
            },
        )
        kind, path = (
            ("report_observation", "/market/observations") if observer
            else ("report_usage", "/market/usage")
        )  # fmt: skip
        _submit(kind, doc, url=url, data_dir=data_dir, db=db, operator=operator, at=at, path=path)
    typer.echo(
        f"{'observation' if observer else 'usage'} of {contract_id} for epoch {epoch} recorded"
    )


@probe_app.command("report")
def probe_report(
    *,
    signer: As,
    provider: Annotated[str, typer.Option("--provider", help="The probed provider's DID.")],
    window: Annotated[int, typer.Option("--window", help="First probe window of the series.")],
    up: Annotated[str, typer.Option("--up", help="One 1/0 per window, e.g. 1101.")],
    latency: Annotated[str, typer.Option("--latency", help="Comma list of ms per window.")],
    did: Annotated[str | None, typer.Option("--did", help="Your DID (default: the key's).")] = None,
    url: Url = None,
    operator: Annotated[
        str | None, typer.Option("--operator", envvar="PLAZA_MARKET_OPERATOR")
    ] = None,
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
        s = _signer(data_dir, signer)
        series = [encode_series(provider, window, flags, lat)]
        doc = sign_doc(s.key, {"$type": "probe", "prober": did or s.did, "series": series})
        _submit("report_probes", doc, url=url, data_dir=data_dir, db=db, operator=operator,
                at=at, path="/market/probes")  # fmt: skip
    typer.echo(f"{len(flags)} samples of {provider} from window {window} recorded")


# -- money -------------------------------------------------------------------------------------


@escrow_app.command("fund")
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
        plaza market escrow fund 5000.00 --operator ops
    """
    with reporting():
        m = _market(data_dir, db, operator)
        m.fund_escrow(_minor(amount), _now(at), memo)
        left = m.state.journal.balance("Assets:Escrow:Market")
    typer.echo(f"escrow holds {left / 100:.2f} {m.state.currency}")


@app.command("settle")
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
        r = _market(data_dir, db, operator).settle(epoch, _now(at))
    text = [f"settled epochs {r.epochs}: owed {r.owed}, paid {r.paid}, short {r.shortfall}"]
    text += [f"  {i.id}: {i.amount} (availability {i.availability_ppm} ppm)" for i in r.invoices]
    text += [f"  {p} -> {s}: {why}" for p, s, why in r.status_changes]
    text += [f"  need {n.id}: {n.kind} {n.accounts} accounts ({n.reason})" for n in r.needs]
    text += [f"  pending {p.kind} {p.subject}: {p.verdict} ({p.reason})" for p in r.pending]
    _emit(r.to_json(), as_json, "\n".join(text))


@invoice_app.command("show")
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
    from plaza.market.state_money import outstanding

    with reporting():
        st = _market(data_dir, db, None).state
        inv = st.invoices.get(invoice_id)
        if inv is None:
            raise NotFoundInMarketError(f"no invoice {invoice_id}")
        out = inv.to_map()
        out["paid"] = st.invoice_paid.get(invoice_id, 0)
        out["outstanding"] = outstanding(st, invoice_id)
    typer.echo(json.dumps(out, indent=2))


# -- disputes ----------------------------------------------------------------------------------


@dispute_app.command("open")
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
    did: Annotated[str | None, typer.Option("--did", help="Your DID (default: the key's).")] = None,
    url: Url = None,
    operator: Annotated[
        str | None, typer.Option("--operator", envvar="PLAZA_MARKET_OPERATOR")
    ] = None,
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
        s = _signer(data_dir, signer)
        doc = sign_doc(
            s.key,
            {
                "$type": "dispute",
                "provider": did or s.did,
                "invoice": invoice,
                "claim": _minor(claim),
                "reason": reason,
                "evidence": items,
            },
        )
        out = _submit("open_dispute", doc, url=url, data_dir=data_dir, db=db,
                      operator=operator, at=at, path="/market/disputes")  # fmt: skip
    typer.echo(f"dispute {out.get('id', '')} opened (proposal {out.get('proposal', 0)})")


@dispute_app.command("resolve")
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
        d = _market(data_dir, db, operator).resolve_dispute(
            dispute_id, _now(at), outcome=outcome, amount=_minor(amount) if amount else None
        )
    typer.echo(f"{dispute_id}: {d.status}, {d.amount} awarded")


@app.command("books")
def books(
    *,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write to a file.")] = None,
    data_dir: DataDir = DATA_DIR,
    db: Db = None,
) -> None:
    """Export the market's own journal as Beancount (under a DAO, see 'plaza dao books').

    Example:

    \b
        plaza market books -o market.beancount
    """
    from plaza.market.books import to_beancount

    with reporting():
        text = to_beancount(_market(data_dir, db, None).state)
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
