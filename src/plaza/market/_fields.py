"""Small validators for document fields: every external map goes through these."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from plaza.market.errors import MarketInputError

MAX_INT: Final = 2**63 - 1
_DID_RE: Final = re.compile(r"^did:[a-z]+:[A-Za-z0-9._:%-]*[A-Za-z0-9._-]$")
_ID_RE: Final = re.compile(r"^[a-z][a-z0-9-]{0,63}$")
_TOKEN_RE: Final = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


def as_map(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise MarketInputError(f"{what} must be a map")
    return value


def req(m: Mapping[str, Any], key: str, what: str) -> Any:
    if key not in m:
        raise MarketInputError(f"{what} is missing {key!r}")
    return m[key]


def int_field(
    m: Mapping[str, Any],
    key: str,
    what: str,
    *,
    lo: int = 0,
    hi: int = MAX_INT,
    default: int | None = None,
) -> int:
    if key not in m and default is not None:
        return default
    v = req(m, key, what)
    if type(v) is not int or not lo <= v <= hi:
        raise MarketInputError(f"{what}.{key} must be an integer in [{lo}, {hi}], got {v!r}")
    return v


def str_field(
    m: Mapping[str, Any], key: str, what: str, *, max_len: int = 256, default: str | None = None
) -> str:
    if key not in m and default is not None:
        return default
    v = req(m, key, what)
    if type(v) is not str or len(v) > max_len:
        raise MarketInputError(f"{what}.{key} must be a string of at most {max_len} characters")
    return v


def bool_field(m: Mapping[str, Any], key: str, what: str, *, default: bool | None = None) -> bool:
    if key not in m and default is not None:
        return default
    v = req(m, key, what)
    if type(v) is not bool:
        raise MarketInputError(f"{what}.{key} must be true or false")
    return v


def did_field(m: Mapping[str, Any], key: str, what: str) -> str:
    v = str_field(m, key, what, max_len=2048)
    if not _DID_RE.match(v):
        raise MarketInputError(f"{what}.{key} is not a DID: {v[:80]!r}")
    return v


def id_field(m: Mapping[str, Any], key: str, what: str) -> str:
    v = str_field(m, key, what, max_len=64)
    if not _ID_RE.match(v):
        raise MarketInputError(f"{what}.{key} is not a market id: {v[:80]!r}")
    return v


def token(value: Any, what: str) -> str:
    """A short lower-case name (a region, a unit)."""
    if type(value) is not str or not _TOKEN_RE.match(value):
        raise MarketInputError(f"{what} must be a short lower-case name, got {str(value)[:40]!r}")
    return value


def token_list(
    m: Mapping[str, Any], key: str, what: str, *, max_items: int = 64
) -> tuple[str, ...]:
    v = req(m, key, what)
    if not isinstance(v, list | tuple) or not v or len(v) > max_items:
        raise MarketInputError(f"{what}.{key} must be a non-empty list of names")
    out = tuple(token(x, f"{what}.{key}[]") for x in v)
    if len(set(out)) != len(out):
        raise MarketInputError(f"{what}.{key} lists a name twice")
    return tuple(sorted(out))


def int_map(
    value: Any, what: str, *, keys: frozenset[str] | None = None, lo: int = 0
) -> dict[str, int]:
    m = as_map(value, what)
    out: dict[str, int] = {}
    for k in sorted(m):
        if keys is not None and k not in keys:
            raise MarketInputError(f"{what} has an unknown key {k!r} (known: {sorted(keys)})")
        out[token(k, f"{what} key")] = int_field(m, k, what, lo=lo)
    return out
