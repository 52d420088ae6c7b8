"""Projections: state derived by replaying events, and nothing else.

A projection is the *evolve* half of an event-sourced model. ``check(event)`` raises
:class:`~plaza.ledger.errors.EventRejectedError` if the event is not legal in the current
state and changes nothing; ``apply(event)`` checks and then changes the state. Commands
(in ``plaza.dao`` and above) decide on an event, ``check`` it, append it to the ledger,
and only then ``apply`` it, so a lost append race leaves the state untouched. Replaying
the same events into a fresh projection always rebuilds the same state, which
``fingerprint()`` makes comparable.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, TypeVar, runtime_checkable

from plaza.ledger.event import Event


@runtime_checkable
class Projection(Protocol):
    """State that evolves by applying ledger events."""

    def check(self, event: Event) -> None:
        """Raise ``EventRejectedError`` if ``event`` may not be applied now; change nothing."""
        ...

    def apply(self, event: Event) -> None:
        """Check, then apply ``event``."""
        ...

    def fingerprint(self) -> bytes:
        """A digest of the whole state: equal states have equal fingerprints."""
        ...


P = TypeVar("P", bound=Projection)


def replay(events: Iterable[Event], projection: P) -> P:
    """Apply ``events`` in order to ``projection`` and return it."""
    for ev in events:
        projection.apply(ev)
    return projection
