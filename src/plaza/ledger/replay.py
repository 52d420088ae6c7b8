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

import hashlib
from collections.abc import Iterable, Sequence
from typing import Protocol, TypeVar, runtime_checkable

from plaza.atproto.crypto import PublicKey
from plaza.ledger.event import Event
from plaza.ledger.keys import KeyRegistry, did_key_keys


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


class Combined:
    """Several projections over one ledger (say the DAO's and the market's) as one.

    ``apply`` checks every part before applying any, so a rejection by one leaves all of
    them unchanged. Keys come from the first part that knows the author; checkpoint
    signers are the union of the parts' (when any part names them).
    """

    def __init__(self, *parts: Projection) -> None:
        self.parts = parts

    def check(self, event: Event) -> None:
        for p in self.parts:
            p.check(event)

    def apply(self, event: Event) -> None:
        self.check(event)
        for p in self.parts:
            p.apply(event)

    def fingerprint(self) -> bytes:
        return hashlib.sha256(b"".join(p.fingerprint() for p in self.parts)).digest()

    def keys_for(self, did: str) -> Sequence[PublicKey]:
        for p in self.parts:
            if isinstance(p, KeyRegistry):
                keys = p.keys_for(did)
                if keys:
                    return keys
        return did_key_keys(did)

    def checkpoint_signers(self) -> frozenset[str] | None:
        found: set[str] = set()
        named = False
        for p in self.parts:
            getter = getattr(p, "checkpoint_signers", None)
            if callable(getter):
                named = True
                found |= set(getter())
        return frozenset(found) if named else None
