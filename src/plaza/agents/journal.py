"""The agents' log: every ``agent.action`` ledger record as one plain entry.

:func:`entries` reads the records :class:`~plaza.agents.loop.LedgerRecorder` wrote and
gives, for each, its ledger sequence number and time, the action's kind, its subject
(the DID of the provider it concerns — for a migration the host the accounts leave —
or the accounts it names), the reason in words, the guard's verdict, the outcome and
what was done.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from plaza.agents.loop import EVENT_TYPE
from plaza.ledger import Event
from plaza.ledger.clock import iso_ms


def subject(payload: dict[str, Any]) -> str:
    """Who or what an ``agent.action`` payload is about."""
    action = payload.get("action") or {}
    for key in ("source", "provider"):
        if action.get(key):
            return str(action[key])
    params = action.get("params") or {}
    for key in ("provider", "contract", "rfb", "did"):
        if params.get(key):
            return str(params[key])
    return ""


def entries(events: Iterable[Event]) -> Iterator[dict[str, Any]]:
    """One entry per ``agent.action`` among ``events``, in ledger order."""
    for ev in events:
        if ev.type != EVENT_TYPE:
            continue
        payload = dict(ev.payload)
        reason = payload.get("reason") or {}
        action = payload.get("action") or {}
        entry: dict[str, Any] = {
            "seq": ev.seq,
            "time": iso_ms(ev.time),
            "kind": str(action.get("kind", "")),
            "subject": subject(payload),
            "reason": str(reason.get("text", "")),
            "rule": str(reason.get("rule", "")),
            "verdict": str(payload.get("verdict", "")),
            "outcome": str(payload.get("outcome", "")),
            "detail": str(payload.get("detail", "")),
            "agent": ev.author_did,
        }
        proposal = payload.get("proposal") or {}
        if proposal.get("ref"):
            entry["proposal"] = str(proposal["ref"])
        yield entry


def line(entry: dict[str, Any]) -> str:
    """An entry as people read it: one headline and the reason and detail below."""
    about = f" {entry['subject']}" if entry["subject"] else ""
    return (
        f"#{entry['seq']} {entry['time']} {entry['kind']}{about}: {entry['outcome']} "
        f"({entry['verdict']})\n    why: {entry['reason']}\n    done: {entry['detail']}"
    )
