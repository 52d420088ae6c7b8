"""DAO state, derived only by replaying ledger events.

Theory of operation. :class:`DaoState` is a projection (see
:mod:`plaza.ledger.replay`): ``check(event)`` decides whether a ``dao.*`` event is legal
now and changes nothing; ``apply(event)`` checks and then changes the state. Each event
type has one handler (in :mod:`plaza.dao.members`, :mod:`plaza.dao.proposals`,
:mod:`plaza.dao.agency`) written as *validate everything, then mutate*: it is called with
``commit=False`` by ``check`` and ``commit=True`` by ``apply``, and raises before its
first mutation if anything is wrong. Events of other packages (``market.*``) pass
through untouched, so one ledger can carry every plane's facts.

The state is also the ledger's key registry (:meth:`DaoState.keys_for`): ``did:key``
authors name their own key; a did:plc signs with the key bound to it at genesis or by a
``dao.identity.registered`` event, each carrying the DID's own proof that it lists that
key (:mod:`plaza.ledger.identity`), checked again on every replay. Replaying the same
events always gives the same state; :meth:`DaoState.fingerprint` is the SHA-256 of its
canonical DAG-CBOR form.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Callable, Sequence
from typing import Any

from plaza.atproto import cbor
from plaza.atproto.crypto import PublicKey, parse_did_key
from plaza.atproto.plc.proof import ChainProof
from plaza.dao.constitution import Constitution
from plaza.dao.delegation import Delegation, Scope
from plaza.dao.errors import DaoError, UnknownEventError
from plaza.dao.legal import LegalVersion
from plaza.dao.mandate import GuardState, Mandate, Spend
from plaza.dao.records import Candidate, Escrow, ExecutedAction, Member, Motion, Proposal
from plaza.dao.treasury import Books
from plaza.ledger.event import Event
from plaza.ledger.keys import did_key_keys

Handler = Callable[["DaoState", Event, bool], None]


class DaoState:
    """Everything the DAO knows, as of the last applied event (``seq``, ``now_ms``)."""

    def __init__(self) -> None:
        self.seq = -1
        self.now_ms = 0
        self.genesis_seq: int | None = None
        self.genesis_ms = 0
        self.ledger_id = ""
        self._constitution: Constitution | None = None
        self._mandate: Mandate | None = None
        self.mandates: list[tuple[int, Mandate]] = []
        self.keys: dict[str, list[str]] = {}
        self.proofs: dict[str, ChainProof] = {}  # did:plc -> the proof that bound its key
        self.roles: dict[str, str] = {}
        self.members: dict[str, Member] = {}
        self.candidates: dict[str, Candidate] = {}
        self.vouch_suspended: dict[str, int] = {}
        self.proposals: dict[int, Proposal] = {}
        self.delegations: dict[tuple[str, Scope, str], Delegation] = {}
        self.credits_spent: dict[tuple[str, int], int] = {}
        self.conviction_points: dict[str, int] = {}
        self.motions: dict[int, Motion] = {}
        self.actions: list[ExecutedAction] = []
        self.denied: list[tuple[int, str, str, str]] = []  # (seq, agent, action hash, reason)
        self.spends: dict[str, list[Spend]] = {}
        self.accounts: dict[str, int] = {}
        self._books: Books | None = None
        self.escrows: dict[str, Escrow] = {}
        self.contracts: dict[str, dict[str, Any]] = {}
        self.rulings: dict[int, dict[str, Any]] = {}
        self.legal: list[LegalVersion] = []

    # -- the projection protocol ----------------------------------------------------------
    def check(self, event: Event) -> None:
        """Raise a :class:`~plaza.dao.errors.RuleViolationError` if ``event`` is not legal
        now; change nothing."""
        handler = self._handler(event)
        if handler is not None:
            handler(self, event, False)

    def apply(self, event: Event) -> None:
        """Check ``event`` and apply it."""
        handler = self._handler(event)
        if handler is not None:
            handler(self, event, True)
        self.seq = event.seq
        self.now_ms = event.time

    def _handler(self, event: Event) -> Handler | None:
        if not event.type.startswith("dao."):
            return None
        handler = HANDLERS.get(event.type)
        if handler is None:
            raise UnknownEventError(f"unknown DAO event type {event.type!r}")
        return handler

    def fingerprint(self) -> bytes:
        return hashlib.sha256(cbor.encode(self.to_map())).digest()

    # -- key registry --------------------------------------------------------------------
    def keys_for(self, did: str) -> Sequence[PublicKey]:
        bound = self.keys.get(did)
        if bound:
            return [parse_did_key(k) for k in bound]
        return did_key_keys(did)

    def checkpoint_signers(self) -> frozenset[str]:
        return frozenset(self._constitution.ledger_keys) if self._constitution else frozenset()

    # -- views -----------------------------------------------------------------------------
    @property
    def initialized(self) -> bool:
        return self._constitution is not None

    @property
    def constitution(self) -> Constitution:
        if self._constitution is None:
            raise DaoError("the DAO has no genesis event yet", code="NotInitialized")
        return self._constitution

    @constitution.setter
    def constitution(self, value: Constitution) -> None:
        self._constitution = value

    @property
    def mandate(self) -> Mandate:
        if self._mandate is None:
            raise DaoError("the DAO has no genesis event yet", code="NotInitialized")
        return self._mandate

    @mandate.setter
    def mandate(self, value: Mandate) -> None:
        self._mandate = value

    @property
    def books(self) -> Books:
        if self._books is None:
            raise DaoError("the DAO has no genesis event yet", code="NotInitialized")
        return self._books

    @books.setter
    def books(self, value: Books) -> None:
        self._books = value

    def is_member(self, did: str) -> bool:
        m = self.members.get(did)
        return m is not None and m.active

    def active_members(self) -> list[str]:
        return sorted(d for d, m in self.members.items() if m.active)

    def is_agent(self, did: str) -> bool:
        return self._constitution is not None and did in self._constitution.agents

    def is_treasurer(self, did: str) -> bool:
        """Named in the constitution's ``treasurers`` and, if ever a member, still one."""
        if self._constitution is None or did not in self._constitution.treasurers:
            return False
        return did not in self.members or self.is_member(did)

    def is_provider(self, did: str) -> bool:
        return self.roles.get(did) == "provider"

    def can_vouch(self, did: str, at_ms: int) -> bool:
        return self.is_member(did) and self.vouch_suspended.get(did, 0) <= at_ms

    def guard_state(self, now_ms: int | None = None) -> GuardState:
        """What the mandate guard sees: the mandate, the spends inside its longest budget
        window, accounts per provider."""
        now = self.now_ms if now_ms is None else now_ms
        mandate = self.mandate
        longest = max((b.period for b in mandate.budgets.values()), default=0) * 1000
        # Spends are appended in ledger order, so by time: skip the old ones by bisection
        # instead of copying a history that only grows.
        recent = {
            k: tuple(v[bisect.bisect_right(v, now - longest, key=lambda s: s.time_ms) :])
            for k, v in self.spends.items()
        }
        return GuardState(mandate=mandate, now_ms=now, spends=recent, accounts=dict(self.accounts))

    def to_map(self) -> dict[str, Any]:
        """The whole state as a canonical data-model map."""
        return {
            "seq": self.seq,
            "now": self.now_ms,
            "ledger_id": self.ledger_id,
            "constitution": self._constitution.to_map() if self._constitution else None,
            "mandates": [[s, m.to_map()] for s, m in self.mandates],
            "keys": dict(sorted(self.keys.items())),
            "proofs": {
                d: {"cids": list(c.cids), "signers": list(c.signers)}
                for d, c in sorted(self.proofs.items())
            },
            "roles": dict(sorted(self.roles.items())),
            "members": {d: m.to_map() for d, m in sorted(self.members.items())},
            "candidates": {d: c.to_map() for d, c in sorted(self.candidates.items())},
            "vouch_suspended": dict(sorted(self.vouch_suspended.items())),
            "proposals": [p.to_map() for _, p in sorted(self.proposals.items())],
            "delegations": [d.to_map() for _, d in sorted(self.delegations.items())],
            "credits_spent": [[d, e, n] for (d, e), n in sorted(self.credits_spent.items())],
            "conviction_points": dict(sorted(self.conviction_points.items())),
            "motions": [m.to_map() for _, m in sorted(self.motions.items())],
            "actions": [a.to_map() for a in self.actions],
            "denied": [list(d) for d in self.denied],
            "spends": {
                k: [[s.time_ms, s.amount] for s in v] for k, v in sorted(self.spends.items())
            },
            "accounts": dict(sorted(self.accounts.items())),
            "books": self._books.to_map() if self._books else None,
            "escrows": {k: e.to_map() for k, e in sorted(self.escrows.items())},
            "contracts": dict(sorted(self.contracts.items())),
            "rulings": [[k, v] for k, v in sorted(self.rulings.items())],
            "legal": [[v.seq, v.time_ms, v.record.to_map()] for v in self.legal],
        }


def _handlers() -> dict[str, Handler]:
    from plaza.dao import agency, members, proposals

    table: dict[str, Handler] = {}
    for module in (members, proposals, agency):
        table.update(module.HANDLERS)
    return table


HANDLERS: dict[str, Handler] = _handlers()
