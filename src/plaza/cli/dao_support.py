"""Shared pieces of the ``plaza dao`` commands: options, time, keystore, amounts.

Settings come from flags, then the environment, then defaults (see :mod:`plaza.cli.dao`).
"""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from plaza.cli.ledger import resolve_db
from plaza.errors import InvalidInputError
from plaza.ledger.clock import iso_ms

As = Annotated[str, typer.Option("--as", envvar="PLAZA_AS", help="Keystore identity that signs.")]
At = Annotated[
    str | None,
    typer.Option("--at", envvar="PLAZA_AT", help="Act at this time: ISO 8601, Unix ms, or +7d."),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def now_ms(at: str | None, *, since: int | None = None, option: str = "--at") -> int:
    """Unix ms: now, or ``at`` (ISO 8601, UTC unless it names a zone; Unix ms; or
    ``+DURATION`` from ``since``, by default from now)."""
    from plaza.dao.mandate import parse_duration

    wall = int(time.time() * 1000)
    if not at:
        return wall
    try:
        if at.startswith("+"):
            return (wall if since is None else since) + parse_duration(at[1:]) * 1000
        if at.isdigit():
            return int(at)
        moment = datetime.fromisoformat(at.replace("Z", "+00:00"))
        if moment.tzinfo is None:  # the output prints UTC; a zoneless input is UTC too
            moment = moment.replace(tzinfo=UTC)
        return int(moment.timestamp() * 1000)
    except ValueError as exc:
        raise InvalidInputError(f"{option} {at!r}: use ISO 8601, Unix ms, or +DURATION") from exc


def moment_ms(text: str, at: str | None, option: str) -> int:
    """A time an option gives: ISO 8601, Unix ms, or ``+DURATION`` counted from the
    command's own time (``--at`` when given, else now)."""
    return now_ms(text, since=now_ms(at), option=option)


def iso(ms: int) -> str:
    """Unix ms as ISO 8601 UTC (``YYYY-MM-DDTHH:MM:SSZ``)."""
    return iso_ms(ms)


def keystore(data_dir: Path) -> Any:
    """The keystore ``keys.json`` in the data directory."""
    from plaza.ledger.keystore import Keystore

    return Keystore(data_dir / "keys.json")


def open_dao(data_dir: Path, db: str | None) -> Any:
    """The DAO over the ledger ``--db`` names (default: SQLite in the data directory)."""
    from plaza.dao.service import Dao
    from plaza.ledger import SqlEventStore

    return Dao(SqlEventStore.open(resolve_db(data_dir, db)))


def did_of(data_dir: Path, who: str) -> str:
    """A DID as given, or the DID of a keystore identity of that name."""
    return who if who.startswith("did:") else str(keystore(data_dir).get(who).did)


def dao_currency(dao: Any) -> Any:
    """The DAO's currency (a :class:`plaza.dao.money.Currency`), from its constitution."""
    from plaza.dao.money import Currency

    return Currency.of(dao.state.constitution)


def parse_amount(dao: Any, text: str) -> int:
    """A decimal amount (``12.50``) in the DAO currency's minor units."""
    return int(dao_currency(dao).parse(text))


def duration_ms(text: str) -> int:
    """A duration such as ``90d`` in milliseconds."""
    from plaza.dao.mandate import parse_duration

    try:
        return parse_duration(text) * 1000
    except ValueError as exc:
        raise InvalidInputError(str(exc)) from exc


def json_arg(text: str) -> Any:
    """A JSON argument given inline or as ``@file.json``."""
    try:
        raw = Path(text[1:]).read_text(encoding="utf-8") if text.startswith("@") else text
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"cannot read {text[1:]}: {exc}") from exc
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise InvalidInputError(f"not JSON: {exc}") from exc


_INTEGER = re.compile(r"-?[0-9]{1,18}")


def pairs(text: str) -> dict[str, int]:
    """``name=integer,...`` as a dict (score and quadratic ballots)."""
    out: dict[str, int] = {}
    for part in text.split(","):
        name, sep, n = part.partition("=")
        if not sep or _INTEGER.fullmatch(n.strip()) is None:
            raise InvalidInputError(f"expected name=integer pairs, got {part!r}")
        out[name.strip()] = int(n)
    return out
