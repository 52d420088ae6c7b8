"""The relay's in-memory view of its hosts and its counters.

A :class:`HostState` is one followed host: where it is, the last of its events the
relay dealt with (``cursor``), its status (the lexicon's ``hostStatus``: ``active``,
``idle``, ``offline``, ``throttled``, ``banned``) and what it sent: every event counted,
every refusal counted by reason. :class:`Counters` adds the relay-wide totals, and
:meth:`Counters.to_json` is the body of ``GET /_metrics``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Final

ACTIVE: Final = "active"
IDLE: Final = "idle"
OFFLINE: Final = "offline"
THROTTLED: Final = "throttled"
BANNED: Final = "banned"

DESYNCHRONIZED: Final = "desynchronized"


@dataclass
class HostState:
    """One host the relay follows (see the module docstring)."""

    hostname: str
    url: str
    cursor: int = 0
    status: str = IDLE
    source: str = "seed"
    added_s: int = 0
    events: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    connects: int = 0
    throttled: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "dropped": dict(self.dropped),
            "status": self.status,
            "cursor": self.cursor,
            "connects": self.connects,
            "throttled": self.throttled,
        }


@dataclass
class Counters:
    """Relay-wide counts: commits verified and passed on, refusals by reason."""

    verified: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    desyncs: int = 0
    resyncs: int = 0
    resync_failures: int = 0

    def drop(self, host: HostState, why: str) -> None:
        self.dropped[why] += 1
        host.dropped[why] += 1

    def to_json(self, hosts: dict[str, HostState], **extra: Any) -> dict[str, Any]:
        return {
            "verified": self.verified,
            "dropped": dict(self.dropped),
            "desyncs": self.desyncs,
            "resyncs": self.resyncs,
            "resync_failures": self.resync_failures,
            "hosts": {name: h.to_json() for name, h in hosts.items()},
            **extra,
        }
