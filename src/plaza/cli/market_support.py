"""Shared pieces of ``plaza market``: option types, the local market, value parsers."""

from __future__ import annotations

import json
import re
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from plaza.cli import params
from plaza.cli.dao import _keystore, _now, _pairs
from plaza.cli.ledger import resolve_db
from plaza.errors import InvalidInputError, PlazaError

if TYPE_CHECKING:
    from plaza.dao.money import Currency

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
OwnDid = Annotated[
    str | None, typer.Option("--did", callback=params.did, help="Your DID (default: the key's).")
]
ProviderDid = Annotated[
    str,
    typer.Argument(
        callback=params.did_or_name, help="The provider's DID, or its keystore name here."
    ),
]
LocalOperator = Annotated[
    str | None,
    typer.Option(
        "--operator",
        envvar="PLAZA_MARKET_OPERATOR",
        help="Keystore identity of the operator, to record locally (without --url).",
    ),
]
MarketDid = Annotated[
    str | None,
    typer.Option(
        "--market",
        envvar="PLAZA_MARKET_DID",
        callback=params.did,
        help="DID of the operator of the market you sign for (default: read from --url's "
        "GET /market, or from the local ledger).",
    ),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]
MandateFile = Annotated[
    Path | None,
    typer.Option("--mandate", help="Mandate TOML for a market without a DAO (default: Plaza's)."),
]


MANDATE_FILE = "market-mandate.toml"
"""Where a market without a DAO keeps the mandate ``open --mandate`` gave it."""


def local_market(
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


def _summary(url: str, wanted: str) -> dict[str, Any]:
    """The market's ``GET /market`` at ``url``; ``wanted`` says what for, in the error."""
    import httpx

    try:
        r = httpx.get(f"{url.rstrip('/')}/market", timeout=30)
        body = r.json() if r.status_code == 200 else None
    except (httpx.HTTPError, ValueError) as exc:
        raise PlazaError(
            f"cannot ask {url} for {wanted} ({exc})", code="MarketUnreachable", status=502
        ) from exc
    if not isinstance(body, dict):
        raise InvalidInputError(f"{url}/market does not say {wanted} (HTTP {r.status_code})")
    return body


def market_did(given: str | None, *, url: str | None, data_dir: Path, db: str | None) -> str:
    """The DID of the market a document is signed for (its operator's): ``given``, else
    what the market at ``url`` says (``GET /market``), else the local market's."""
    if given:
        return given
    if url:
        operator = _summary(url, "its operator's DID; give --market").get("operator")
        if not isinstance(operator, str) or not operator:
            raise InvalidInputError(f"{url}/market names no operator; give --market")
        return operator
    operator = local_market(data_dir, db, None).state.operator
    if not operator:
        raise InvalidInputError("the local market is not open: give --market or --url")
    return str(operator)


def market_currency(market: Any) -> Currency:
    """The currency of a local market: its DAO's constitution says the minor digits."""
    from plaza.agents.runner import market_currency as currency

    return currency(market)


def currency_of(*, url: str | None, data_dir: Path, db: str | None) -> Currency:
    """The currency amounts are typed in: the market's at ``url`` (``GET /market``), else
    the local market's."""
    if url:
        body = _summary(url, "its currency")
        code, digits = body.get("currency"), body.get("minorDigits")
        if not isinstance(code, str) or type(digits) is not int:
            raise InvalidInputError(f"{url}/market names no currency and minor digits")
        from plaza.dao.money import Currency

        return Currency(code, digits)
    return market_currency(local_market(data_dir, db, None))


def parse_prices(currency: Currency, text: str) -> dict[str, int]:
    """``account=0.02,gb_hour=0.001`` (currency units per unit) -> integer millionths of
    a minor unit per unit (the market's price scale)."""
    from plaza.market import PRICE_SCALE

    places = currency.minor_digits + len(str(PRICE_SCALE)) - 1
    out: dict[str, int] = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        try:
            scaled = Decimal(value) * currency.per_unit * PRICE_SCALE
        except InvalidOperation as exc:
            raise InvalidInputError(f"price {part!r}: expected unit=amount") from exc
        if not sep or not scaled.is_finite():
            raise InvalidInputError(f"price {part!r}: expected unit=amount")
        if scaled != scaled.to_integral_value() or scaled < 0:
            raise InvalidInputError(
                f"price {part!r}: expected unit=amount, at most {places} decimals ({currency.code})"
            )
        out[name.strip()] = int(scaled)
    return out


def parse_sla(text: str | None) -> dict[str, int]:
    if not text:
        return {}
    raw = _pairs(text)
    names = {"availability": "availability_ppm", "latency": "latency_p95_ms",
             "durability": "durability_ppm"}  # fmt: skip
    unknown = set(raw) - set(names)
    if unknown:
        raise InvalidInputError(f"--sla takes {', '.join(names)}; not {', '.join(unknown)}")
    return {names[k]: v for k, v in raw.items()}


_SECONDS_RE = re.compile(r"([0-9]{1,12})\s?([smhdw]?)", re.ASCII)


def parse_seconds(text: str) -> int:
    """``"90"`` or ``"90s"``, ``"5m"``, ``"48h"``, ``"30d"``, ``"2w"`` -> seconds (ASCII
    digits only: ``str.isdigit`` also takes '²' and '٥')."""
    from plaza.dao.mandate import parse_duration

    m = _SECONDS_RE.fullmatch(text.strip())
    if m is None:
        raise InvalidInputError(
            f"invalid duration {text[:40]!r}: up to 12 digits 0-9, optionally followed by "
            "s, m, h, d or w (e.g. 300, 5m, 1d)"
        )
    number, unit = m.groups()
    return parse_duration(int(number) if not unit else f"{number}{unit}")


def check_url_at(url: str | None, at: str | None) -> None:
    """``--at`` is the local ledger's time; a market at ``url`` acts at its own, so the
    two together are a usage error rather than a time silently dropped."""
    if url and at:
        raise typer.BadParameter(
            "the market at --url records at its own time; --at (PLAZA_AT) sets the time of "
            "the local ledger only: drop --at, or leave out --url and give --operator",
            param_hint="'--at'",
        )


def submit(
    kind: str, doc: dict[str, Any], *, url: str | None, data_dir: Path, db: str | None,
    operator: str | None, at: str | None, path: str = "",
) -> dict[str, Any]:  # fmt: skip
    """Post a signed document to ``url``, or record it locally as ``operator``."""
    check_url_at(url, at)
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
    m = local_market(data_dir, db, operator)
    now = _now(at)
    result = getattr(m, kind)(doc, now)
    return result.to_json() if hasattr(result, "to_json") else {"result": result}


def signer_of(data_dir: Path, who: str) -> Any:
    return _keystore(data_dir).get(who)


def emit(value: Any, as_json: bool, text: str) -> None:
    typer.echo(json.dumps(value, indent=2, default=str) if as_json else text)
