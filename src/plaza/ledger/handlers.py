"""One table of typed handlers per package: how each event type changes a state.

A package lists every event type it owns in one :class:`HandlerTable`, one row
(:class:`On`) per type: the pydantic model its payload must parse as, and the handler
that judges the event. A handler is ``handler(state, event, payload) -> Mutation``: it
reads the state, raises the package's error if the event is not legal now, and returns
the mutation (a function of no arguments) that applies it. It never changes the state
itself, so checking an event is running its handler and dropping the mutation, and
applying it is running the mutation too — one function serves both, and a refused
event can change nothing::

    TABLE = HandlerTable(
        "dao.",
        {
            "dao.member.vouched": On(Vouched, vouched),
            "dao.vote.cast": On(VoteCast, vote_cast),
        },
        unknown=UnknownEventError,
        invalid=InvalidPayloadError,
    )

Events outside the table's prefix (another package's, on a shared ledger) pass through;
an unknown type inside it raises ``unknown``; a payload that does not parse raises
``invalid`` with a message naming the event type and the field.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from plaza.ledger.event import Event

__all__ = ["EventPayload", "HandlerTable", "Mutation", "On", "describe_payload_error"]

S = TypeVar("S")
M = TypeVar("M", bound=BaseModel)

Mutation = Callable[[], None]
"""Applies one judged event to the state it was judged against."""


def unchanged() -> None:
    """The mutation of an event that changes nothing but the state's position."""


class EventPayload(BaseModel):
    """Base of payload models: strict types (no coercion: ``"1"`` is not ``1``, ``true``
    is not an integer), no unknown fields, immutable."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


@dataclass(frozen=True, slots=True)
class On(Generic[S, M]):
    """One row of a handler table: the payload model and the handler of one event type."""

    payload: type[M]
    handler: Callable[[S, Event, M], Mutation]


def describe_payload_error(event_type: str, exc: ValidationError) -> str:
    """One line naming what is wrong with a payload: a missing field, unknown fields,
    or the first field of the wrong type or range. A model's own validator raises
    ``ValueError("must be ...")``; its words follow the field's name."""
    errors = exc.errors()
    extra = sorted(str(e["loc"][0]) for e in errors if e["type"] == "extra_forbidden")
    if extra:
        return f"{event_type}: unknown fields {extra}"
    first = errors[0]
    field = ".".join(str(part) for part in first["loc"])
    if first["type"] == "missing":
        return f"{event_type}: missing field {field!r}"
    if first["type"] == "value_error":  # a model's own check: its words, as given
        reason = str(first.get("ctx", {}).get("error", first["msg"]))
        return f"{event_type}: field {field!r} {reason}" if field else f"{event_type}: {reason}"
    if not field:
        return f"{event_type}: payload {first['msg'][0].lower()}{first['msg'][1:]}"
    return f"{event_type}: field {field!r}: {first['msg']}"


class HandlerTable(Generic[S]):
    """Every event type a package owns (``prefix``, such as ``"dao."``), with its payload
    model and handler. See the module docstring."""

    def __init__(
        self,
        prefix: str,
        rows: Mapping[str, On[S, Any]],
        *,
        unknown: Callable[[str], Exception],
        invalid: Callable[[str], Exception],
    ) -> None:
        for type_ in rows:
            if not type_.startswith(prefix):
                raise ValueError(f"{type_!r} is outside the table's prefix {prefix!r}")
        self.prefix = prefix
        self.rows: Mapping[str, On[S, Any]] = dict(rows)
        # Each row with its model's compiled validator: what model_validate runs, minus
        # the per-call wrapper (parsing is on the path of every replayed event).
        self._parsers = {t: (row, row.payload.__pydantic_validator__) for t, row in rows.items()}
        self._unknown = unknown
        self._invalid = invalid

    def parse(self, event: Event) -> tuple[On[S, Any], BaseModel] | None:
        """The row and the parsed payload of ``event``, or None for another package's."""
        if not event.type.startswith(self.prefix):
            return None
        parser = self._parsers.get(event.type)
        if parser is None:
            raise self._unknown(f"unknown event type {event.type!r}")
        row, validator = parser
        try:
            payload = validator.validate_python(event.payload)
        except ValidationError as exc:
            raise self._invalid(describe_payload_error(event.type, exc)) from exc
        return row, payload

    def prepare(self, state: S, event: Event) -> Mutation:
        """Judge ``event`` against ``state`` and return its mutation (raises the
        package's error, changing nothing, if the event is not legal now)."""
        parsed = self.parse(event)
        if parsed is None:
            return unchanged
        row, payload = parsed
        return row.handler(state, event, payload)
