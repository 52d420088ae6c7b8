"""The records DAO state is made of: immutable values. A change is a new record
(:func:`dataclasses.replace`) put in place of the old by :class:`~plaza.dao.facts.DaoFacts`;
their maps are never changed after construction (they are typed ``Mapping``). A
:class:`Proposal`, which changes with every ballot, is the exception inside the state:
it lives in a :class:`~plaza.dao.proposal_book.ProposalBook` changed in place, and a
:class:`Proposal` record is the book's frozen snapshot, built when asked for."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from plaza.dao.action import Action


@dataclass(frozen=True, slots=True)
class Member:
    did: str
    admitted_ms: int
    via: str  # "genesis" | "vouches" | "vote"
    vouchers: tuple[str, ...] = ()
    removed_ms: int = 0
    fake: bool = False

    @property
    def active(self) -> bool:
        return self.removed_ms == 0

    def to_map(self) -> dict[str, Any]:
        return {
            "did": self.did,
            "admitted": self.admitted_ms,
            "via": self.via,
            "vouchers": list(self.vouchers),
            "removed": self.removed_ms,
            "fake": self.fake,
        }


@dataclass(frozen=True, slots=True)
class Candidate:
    """Someone being vouched for: voucher DID -> time, attestation kind -> issuer."""

    vouches: Mapping[str, int] = field(default_factory=dict)
    attestations: Mapping[str, str] = field(default_factory=dict)

    def to_map(self) -> dict[str, Any]:
        return {
            "vouches": dict(sorted(self.vouches.items())),
            "attestations": dict(sorted(self.attestations.items())),
        }


@dataclass(frozen=True, slots=True)
class Proposal:
    id: int
    type: str
    author: str
    title: str
    body: str
    method: str
    executes: str
    topic: str
    created_ms: int
    end_ms: int
    choices: tuple[str, ...]
    effect: Mapping[str, Any] | None
    effects: Mapping[str, Mapping[str, Any]]
    snapshot: frozenset[str]
    epoch: int
    votes: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    status: str = "open"  # "open" | "executed" | "cancelled"
    executed_ms: int = 0
    stakes: Mapping[str, int] = field(default_factory=dict)
    stake_history: tuple[tuple[int, int], ...] = ()
    motion: int | None = None

    def to_map(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "author": self.author,
            "title": self.title,
            "body": self.body,
            "method": self.method,
            "executes": self.executes,
            "topic": self.topic,
            "created": self.created_ms,
            "end": self.end_ms,
            "choices": list(self.choices),
            "effect": None if self.effect is None else dict(self.effect),
            "effects": {k: dict(v) for k, v in self.effects.items()},
            "snapshot": sorted(self.snapshot),
            "epoch": self.epoch,
            "votes": {k: dict(v) for k, v in sorted(self.votes.items())},
            "status": self.status,
            "executed": self.executed_ms,
            "stakes": dict(sorted(self.stakes.items())),
            "stake_history": [list(x) for x in self.stake_history],
            "motion": self.motion,
        }


@dataclass(frozen=True, slots=True)
class Motion:
    """An optimistic agent action waiting out its veto window."""

    id: int
    agent: str
    action: Action
    digest: bytes
    reason: str
    opened_ms: int
    end_ms: int
    veto_ppm: int
    eligible: frozenset[str]
    threshold: int
    vetoes: frozenset[str] = frozenset()
    status: str = "open"  # "open" | "escalated" | "executed" | "lapsed"
    proposal: int | None = None
    #: Set when the motion lapsed (its window passed and the guard then refused it):
    #: when, by whom, and the guard's reason.
    lapsed_ms: int = 0
    lapsed_by: str = ""
    lapse_reason: str = ""

    def why_closed(self) -> str:
        """Why a motion that is not open can no longer execute, in words."""
        return {
            "escalated": "members objected, so it went to a vote",
            "executed": "it was carried out already",
            "lapsed": f"the guard refused it after its window ({self.lapse_reason})",
        }.get(self.status, "it is open")

    def to_map(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "agent": self.agent,
            "action": self.action.to_map(),
            "digest": self.digest,
            "reason": self.reason,
            "opened": self.opened_ms,
            "end": self.end_ms,
            "veto_ppm": self.veto_ppm,
            "eligible": sorted(self.eligible),
            "threshold": self.threshold,
            "vetoes": sorted(self.vetoes),
            "status": self.status,
            "proposal": self.proposal,
            "lapsed": (
                {"time": self.lapsed_ms, "by": self.lapsed_by, "reason": self.lapse_reason}
                if self.status == "lapsed"
                else None
            ),
        }


@dataclass(frozen=True, slots=True)
class ExecutedAction:
    """An agent action that executed, with its authority and reason."""

    seq: int
    time_ms: int
    agent: str
    action: Action
    reason: str
    authority: str  # "mandate" | "motion:<id>" | "proposal:<id>"

    def to_map(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "time": self.time_ms,
            "agent": self.agent,
            "action": self.action.to_map(),
            "reason": self.reason,
            "authority": self.authority,
        }


@dataclass(frozen=True, slots=True)
class Escrow:
    id: str
    kind: str  # "bond" | "payment"
    party: str
    category: str
    opened_ms: int
    memo: str = ""

    def to_map(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "party": self.party,
            "category": self.category,
            "opened": self.opened_ms,
            "memo": self.memo,
        }
