"""Field types for the market's documents and event payloads, and the one way to
validate them.

Every external map — a signed document, an event payload, market parameters — is
validated by a pydantic model built from these types. Models are strict (an integer is
an ``int``, never a ``bool`` or a numeric string; a string is never bytes) and frozen.
:func:`parse` turns a validation failure into a
:class:`~plaza.market.errors.MarketInputError` naming the document and the first bad
field, so malformed input is refused before any rule runs and changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Final, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
)

from plaza.market.errors import MarketInputError

MAX_INT: Final = 2**63 - 1
DID_PATTERN: Final = r"^did:[a-z]+:[A-Za-z0-9._:%-]*[A-Za-z0-9._-]$"
ID_PATTERN: Final = r"^[a-z][a-z0-9-]{0,63}$"
TOKEN_PATTERN: Final = r"^[a-z][a-z0-9_-]{0,31}$"


def _as_list(value: Any) -> Any:
    """Sequences arrive as lists (JSON, DAG-CBOR) or tuples (library callers)."""
    return list(value) if isinstance(value, tuple) else value


def _as_tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _unique_sorted(value: tuple[str, ...]) -> tuple[str, ...]:
    if len(set(value)) != len(value):
        raise ValueError("lists a name twice")
    return tuple(sorted(value))


Seq = BeforeValidator(_as_list)
"""Put before a ``list[...]`` type: accept a tuple as well."""

Did = Annotated[str, StringConstraints(max_length=2048, pattern=DID_PATTERN)]
"""A DID."""
MarketId = Annotated[str, StringConstraints(max_length=64, pattern=ID_PATTERN)]
"""A market id (``rfb-1``, ``c-3``, ``inv-c-3-0``)."""
Token = Annotated[str, StringConstraints(pattern=TOKEN_PATTERN)]
"""A short lower-case name (a region, a unit, a service)."""
Names = Annotated[
    tuple[Token, ...],
    BeforeValidator(_as_tuple),
    Field(min_length=1, max_length=64),
    AfterValidator(_unique_sorted),
]
"""A non-empty list of distinct names, kept sorted."""
Count = Annotated[int, Field(ge=0, le=MAX_INT)]
Amount = Annotated[int, Field(ge=1, le=MAX_INT)]
Epoch = Annotated[int, Field(ge=0, le=10**9)]
Ppm = Annotated[int, Field(ge=0, le=1_000_000)]
Counts = dict[Token, Count]
"""Non-negative integers by name (capacity, prices, usage)."""
Name = Annotated[str, StringConstraints(max_length=16)]
Text24 = Annotated[str, StringConstraints(max_length=24)]
Text32 = Annotated[str, StringConstraints(max_length=32)]
Text40 = Annotated[str, StringConstraints(max_length=40)]
Text64 = Annotated[str, StringConstraints(max_length=64)]
Text200 = Annotated[str, StringConstraints(max_length=200)]
Text256 = Annotated[str, StringConstraints(max_length=256)]
Text500 = Annotated[str, StringConstraints(max_length=500)]
Text512 = Annotated[str, StringConstraints(max_length=512)]
Reason = Annotated[str, StringConstraints(max_length=1000)]
Text2000 = Annotated[str, StringConstraints(max_length=2000)]
Text2048 = Annotated[str, StringConstraints(max_length=2048)]


class Model(BaseModel):
    """Base of every document and payload model: strict, frozen, and ignoring fields
    it does not name (a model that must refuse them says ``extra="forbid"``)."""

    model_config = ConfigDict(strict=True, frozen=True, extra="ignore")


M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")


def parse(model: type[M], value: Any, what: str) -> M:
    """Validate ``value`` as ``model``; raise :class:`MarketInputError` naming ``what``
    and the first bad field."""
    if not isinstance(value, Mapping):
        raise MarketInputError(f"{what} must be a map")
    try:
        return model.model_validate(dict(value))
    except ValidationError as exc:
        raise MarketInputError(describe(exc, what)) from None


def parse_value(adapter: TypeAdapter[T], value: Any, what: str) -> T:
    """Validate a value that is not a map (a list, a ladder) with ``adapter``; raise
    :class:`MarketInputError` naming ``what``."""
    try:
        return adapter.validate_python(value, strict=True)
    except ValidationError as exc:
        raise MarketInputError(describe(exc, what)) from None


def describe(exc: ValidationError, what: str) -> str:
    """One line for the first error of ``exc``: ``what.field: reason``."""
    err = exc.errors(include_url=False)[0]
    loc = ".".join(str(x) for x in err["loc"])
    where = f"{what}.{loc}" if loc else what
    if err["type"] == "missing":
        return f"{what} is missing {loc!r}"
    if err["type"] == "extra_forbidden":
        return f"{what} has an unknown field {loc!r}"
    msg = str(err["msg"])
    msg = msg.removeprefix("Value error, ")
    msg = msg[0].lower() + msg[1:] if msg else msg
    return f"{where}: {msg}, got {repr(err.get('input'))[:80]}"


def only(names: Iterable[str], known: Iterable[str], what: str) -> None:
    """Raise :class:`MarketInputError` if ``names`` holds one not in ``known``."""
    allowed = set(known)
    for name in sorted(names):
        if name not in allowed:
            raise MarketInputError(f"{what} has an unknown key {name!r} (known: {sorted(allowed)})")
