"""What the DAO knows: immutable records behind read-only views and queries.

:class:`DaoFacts` is the data half of :class:`~plaza.dao.state.DaoState`. Other
packages ask it questions (:meth:`~DaoFacts.members`, :meth:`~DaoFacts.is_member`,
:meth:`~DaoFacts.role_of`, :meth:`~DaoFacts.motion`, :meth:`~DaoFacts.treasury_balance`,
...) and read its records through read-only mappings and tuples; nothing outside can
assign to it. Its records (:mod:`plaza.dao.records`) are frozen. Proposals, which
change with every ballot, are kept in books
(:class:`~plaza.dao.proposal_book.ProposalBook`) changed in place;
:meth:`~DaoFacts.proposal` and :attr:`~DaoFacts.proposals` hand out their frozen
snapshots, and the rules read :meth:`~DaoFacts.proposal_state`.

Changes have names: each method in the "changes" section records one kind of fact
(admit a member, put a proposal, post an entry). They are called only by the
mutations the DAO's rules return for an event the state is applying (see
:mod:`plaza.dao.state`), after the rule has checked everything — so a change never
fails half way and a refused event changes nothing.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import replace
from types import MappingProxyType
from typing import Any

from plaza.atproto import cbor
from plaza.atproto.crypto import PublicKey, parse_did_key
from plaza.atproto.plc.proof import ChainProof
from plaza.dao.constitution import Constitution
from plaza.dao.delegation import Delegation, Scope
from plaza.dao.errors import DaoError
from plaza.dao.legal import LegalVersion, legal_record
from plaza.dao.mandate import GuardState, Mandate, Spend
from plaza.dao.proposal_book import ProposalBook, Proposals, ProposalState
from plaza.dao.records import Candidate, Escrow, ExecutedAction, Member, Motion, Proposal
from plaza.dao.treasury import TREASURY, Books, Entry
from plaza.ledger.keys import did_key_keys

DelegationKey = tuple[str, Scope, str]


def _not_initialized() -> DaoError:
    return DaoError("the DAO has no genesis event yet", code="NotInitialized")


class DaoFacts:
    """Everything the DAO knows, as of the last applied event (``seq``, ``now_ms``)."""

    def __init__(self) -> None:
        self._seq = -1
        self._now_ms = 0
        self._genesis_ms = 0
        self._ledger_id = ""
        self._constitution: Constitution | None = None
        self._mandate: Mandate | None = None
        self._mandates: list[tuple[int, Mandate]] = []
        self._keys: dict[str, tuple[str, ...]] = {}
        self._proofs: dict[str, ChainProof] = {}  # did:plc -> the proof that bound its key
        self._roles: dict[str, str] = {}
        self._members: dict[str, Member] = {}
        # members(), cached with the membership version it was built at (bumped after
        # each admission or removal, as ProposalBook does for its views).
        self._membership = 0
        self._current: tuple[int, tuple[str, ...]] = (-1, ())
        self._candidates: dict[str, Candidate] = {}
        self._vouch_suspended: dict[str, int] = {}
        self._proposals: dict[int, ProposalBook] = {}
        self._proposal_view = Proposals(self._proposals)
        self._delegations: dict[DelegationKey, Delegation] = {}
        self._credits_spent: dict[tuple[str, int], int] = {}
        self._conviction_points: dict[str, int] = {}
        self._motions: dict[int, Motion] = {}
        self._actions: list[ExecutedAction] = []
        self._denied: list[tuple[int, str, str, str]] = []  # (seq, agent, action hash, reason)
        self._spends: dict[str, list[Spend]] = {}
        self._accounts: dict[str, int] = {}
        self._books: Books | None = None
        self._escrows: dict[str, Escrow] = {}
        self._contracts: dict[str, Mapping[str, Any]] = {}
        self._rulings: dict[int, Mapping[str, Any]] = {}
        self._legal: list[LegalVersion] = []

    # -- position ----------------------------------------------------------------------
    @property
    def seq(self) -> int:
        """The seq of the last event applied (-1 before any)."""
        return self._seq

    @property
    def now_ms(self) -> int:
        """The time of the last event applied."""
        return self._now_ms

    @property
    def genesis_ms(self) -> int:
        return self._genesis_ms

    @property
    def ledger_id(self) -> str:
        """The hex hash of the genesis event: the DAO's identity."""
        return self._ledger_id

    # -- documents ---------------------------------------------------------------------
    @property
    def initialized(self) -> bool:
        return self._constitution is not None

    @property
    def constitution(self) -> Constitution:
        if self._constitution is None:
            raise _not_initialized()
        return self._constitution

    @property
    def mandate(self) -> Mandate:
        """The mandate in force."""
        if self._mandate is None:
            raise _not_initialized()
        return self._mandate

    @property
    def mandates(self) -> tuple[tuple[int, Mandate], ...]:
        """Every mandate version with the seq that adopted it."""
        return tuple(self._mandates)

    @property
    def books(self) -> Books:
        """The double-entry books (read them; only applied events post to them)."""
        if self._books is None:
            raise _not_initialized()
        return self._books

    @property
    def legal(self) -> tuple[LegalVersion, ...]:
        return tuple(self._legal)

    # -- people ------------------------------------------------------------------------
    def members(self) -> tuple[str, ...]:
        """The current members' DIDs, sorted."""
        version = self._membership
        cached, current = self._current
        if cached != version:
            current = tuple(sorted(d for d, m in self._members.items() if m.active))
            self._current = (version, current)
        return current

    def active_members(self) -> list[str]:
        return list(self.members())

    def member(self, did: str) -> Member | None:
        """The membership record of ``did`` (a removed member's too), if any."""
        return self._members.get(did)

    @property
    def member_records(self) -> Mapping[str, Member]:
        """Every membership record, current and removed, by DID."""
        return MappingProxyType(self._members)

    def is_member(self, did: str) -> bool:
        m = self._members.get(did)
        return m is not None and m.active

    def role_of(self, did: str) -> str | None:
        """``person``, ``agent`` or ``provider``, or None for a DID with no role."""
        return self._roles.get(did)

    @property
    def roles(self) -> Mapping[str, str]:
        return MappingProxyType(self._roles)

    def candidate(self, did: str) -> Candidate | None:
        return self._candidates.get(did)

    def is_agent(self, did: str) -> bool:
        return self._constitution is not None and did in self._constitution.agents

    def is_treasurer(self, did: str) -> bool:
        """Named in the constitution's ``treasurers`` and, if ever a member, still one."""
        if self._constitution is None or did not in self._constitution.treasurers:
            return False
        return did not in self._members or self.is_member(did)

    def is_provider(self, did: str) -> bool:
        return self._roles.get(did) == "provider"

    def vouching_suspended_until(self, did: str) -> int:
        return self._vouch_suspended.get(did, 0)

    def can_vouch(self, did: str, at_ms: int) -> bool:
        return self.is_member(did) and self.vouching_suspended_until(did) <= at_ms

    # -- keys ----------------------------------------------------------------------------
    def keys_for(self, did: str) -> Sequence[PublicKey]:
        bound = self._keys.get(did)
        if bound:
            return [parse_did_key(k) for k in bound]
        return did_key_keys(did)

    def has_bound_key(self, did: str) -> bool:
        return did in self._keys

    def proof_of(self, did: str) -> ChainProof | None:
        """The identity proof that bound ``did``'s key, if one did."""
        return self._proofs.get(did)

    def checkpoint_signers(self) -> frozenset[str]:
        return frozenset(self._constitution.ledger_keys) if self._constitution else frozenset()

    # -- proposals, motions, actions --------------------------------------------------------
    def proposal(self, pid: int) -> Proposal | None:
        book = self._proposals.get(pid)
        return None if book is None else book.snapshot()

    @property
    def proposals(self) -> Mapping[int, Proposal]:
        """Every proposal by id (a live, read-only view of frozen records)."""
        return self._proposal_view

    def proposal_state(self, pid: int) -> ProposalState | None:
        """Proposal ``pid`` as it is now, read-only and live: what the rules read while
        judging one event (hold a :meth:`proposal` record instead)."""
        return self._proposals.get(pid)

    @property
    def delegations(self) -> Mapping[DelegationKey, Delegation]:
        return MappingProxyType(self._delegations)

    def credits_spent(self, did: str, epoch: int) -> int:
        return self._credits_spent.get((did, epoch), 0)

    def conviction_points(self, did: str) -> int:
        """Points ``did`` has staked on open conviction proposals."""
        return self._conviction_points.get(did, 0)

    def motion(self, mid: int) -> Motion | None:
        return self._motions.get(mid)

    @property
    def motions(self) -> Mapping[int, Motion]:
        return MappingProxyType(self._motions)

    def motion_for_contract(self, contract_id: str) -> Motion | None:
        """The latest motion opened to award ``contract_id`` (``contract.award``), if any."""
        found = None
        for m in self._motions.values():
            if m.action.kind == "contract.award" and m.action.params.get("contract") == contract_id:
                found = m
        return found

    @property
    def actions(self) -> tuple[ExecutedAction, ...]:
        return tuple(self._actions)

    @property
    def denied(self) -> tuple[tuple[int, str, str, str], ...]:
        return tuple(self._denied)

    # -- money -----------------------------------------------------------------------------
    def treasury_balance(self) -> int:
        """Spendable treasury funds in minor units."""
        return self.books.balance(TREASURY)

    def escrow(self, escrow_id: str) -> Escrow | None:
        return self._escrows.get(escrow_id)

    def has_escrow(self, escrow_id: str) -> bool:
        return escrow_id in self._escrows

    @property
    def escrows(self) -> Mapping[str, Escrow]:
        return MappingProxyType(self._escrows)

    @property
    def accounts(self) -> Mapping[str, int]:
        """Accounts placed per provider."""
        return MappingProxyType(self._accounts)

    def accounts_of(self, provider: str) -> int:
        """Accounts the DAO has placed with ``provider``."""
        return self._accounts.get(provider, 0)

    @property
    def contracts(self) -> Mapping[str, Mapping[str, Any]]:
        return MappingProxyType(self._contracts)

    @property
    def rulings(self) -> Mapping[int, Mapping[str, Any]]:
        return MappingProxyType(self._rulings)

    def guard_state(self, now_ms: int | None = None) -> GuardState:
        """What the mandate guard sees: the mandate, the spends inside its longest budget
        window, accounts per provider."""
        now = self._now_ms if now_ms is None else now_ms
        mandate = self.mandate
        longest = max((b.period for b in mandate.budgets.values()), default=0) * 1000
        # Spends are appended in ledger order, so by time: skip the old ones by bisection
        # instead of copying a history that only grows.
        recent = {
            k: tuple(v[bisect.bisect_right(v, now - longest, key=lambda s: s.time_ms) :])
            for k, v in self._spends.items()
        }
        return GuardState(mandate=mandate, now_ms=now, spends=recent, accounts=dict(self._accounts))

    # -- changes (called only by the mutations of applied events) ---------------------------
    def advance(self, seq: int, time_ms: int) -> None:
        self._seq, self._now_ms = seq, time_ms

    def found(
        self,
        seq: int,
        time_ms: int,
        *,
        ledger_id: str,
        constitution: Constitution,
        mandate: Mandate,
        books: Books,
    ) -> None:
        self._genesis_ms, self._ledger_id = time_ms, ledger_id
        self._constitution = constitution
        self._books = books
        self.adopt_mandate(seq, mandate)
        self.refresh_legal(seq, time_ms)

    def amend(self, seq: int, time_ms: int, constitution: Constitution) -> None:
        self._constitution = constitution
        self.refresh_legal(seq, time_ms)

    def refresh_legal(self, seq: int, time_ms: int) -> None:
        """Add a legal-record version if the record changed."""
        record = legal_record(self.constitution, self._ledger_id)
        if not self._legal or self._legal[-1].record != record:
            self._legal.append(LegalVersion(seq, time_ms, record))

    def adopt_mandate(self, seq: int, mandate: Mandate) -> None:
        self._mandate = mandate
        self._mandates.append((seq, mandate))

    def bind_key(self, did: str, key: str, proof: ChainProof | None) -> None:
        self._keys[did] = (key,)
        if proof is not None:
            self._proofs[did] = proof

    def set_role(self, did: str, role: str) -> None:
        self._roles[did] = role

    def put_candidate(self, did: str, candidate: Candidate) -> None:
        self._candidates[did] = candidate

    def admit(self, did: str, at_ms: int, via: str, vouchers: tuple[str, ...] = ()) -> None:
        self._members[did] = Member(did, at_ms, via, vouchers)
        self._membership += 1
        self._roles.setdefault(did, "person")
        self._candidates.pop(did, None)

    def remove(self, did: str, at_ms: int, fake: bool, liability_ms: int) -> None:
        """Remove a member; as a fake, suspend their vouchers' vouching rights for
        ``liability_ms``. Their stakes on open proposals are withdrawn."""
        m = self._members[did] = replace(self._members[did], removed_ms=at_ms, fake=fake)
        self._membership += 1
        if fake:
            for v in m.vouchers:
                self._vouch_suspended[v] = max(
                    self._vouch_suspended.get(v, 0), at_ms + liability_ms
                )
        for book in list(self._proposals.values()):
            if book.status == "open" and book.stake_of(did):
                self.stake(book.id, did, 0, at_ms)

    def set_delegation(self, delegation: Delegation) -> None:
        d = delegation
        self._delegations[(d.delegator, d.scope, d.key)] = d

    def drop_delegation(self, key: DelegationKey) -> None:
        del self._delegations[key]

    def put_proposal(self, proposal: Proposal) -> None:
        self._proposals[proposal.id] = ProposalBook(proposal)

    def cast_vote(self, pid: int, voter: str, ballot: Mapping[str, Any], cost: int) -> None:
        book = self._proposals[pid]
        book.add_vote(voter, ballot)
        if cost:
            key = (voter, book.epoch)
            self._credits_spent[key] = self._credits_spent.get(key, 0) + cost

    def stake(self, pid: int, member: str, points: int, at_ms: int) -> None:
        """Set ``member``'s stake on conviction proposal ``pid`` to ``points``."""
        old = self._proposals[pid].set_stake(member, points, at_ms)
        self._conviction_points[member] = self._conviction_points.get(member, 0) - old + points

    def close_proposal(self, pid: int, status: str, at_ms: int) -> None:
        """Mark a proposal executed or cancelled; free the points staked on it."""
        for member, pts in self._proposals[pid].close(status, at_ms).items():
            self._conviction_points[member] = self._conviction_points.get(member, 0) - pts

    def put_motion(self, motion: Motion) -> None:
        self._motions[motion.id] = motion

    def post(self, entry: Entry) -> None:
        self.books.post(entry)

    def open_escrow(self, escrow: Escrow) -> None:
        self._escrows[escrow.id] = escrow

    def spend(self, category: str, spend: Spend) -> None:
        self._spends.setdefault(category, []).append(spend)

    def move_accounts(self, source: str, provider: str, n: int) -> None:
        """Place ``n`` accounts with ``provider`` (taken from ``source`` if not empty)."""
        if source:
            self._accounts[source] -= n
            if not self._accounts[source]:
                del self._accounts[source]
        self._accounts[provider] = self._accounts.get(provider, 0) + n

    def add_action(self, action: ExecutedAction) -> None:
        self._actions.append(action)

    def add_denial(self, seq: int, agent: str, action_hash: str, reason: str) -> None:
        self._denied.append((seq, agent, action_hash, reason))

    def approve_contract(self, contract_id: str, record: Mapping[str, Any]) -> None:
        self._contracts[contract_id] = dict(record)

    def rule(self, pid: int, ruling: Mapping[str, Any]) -> None:
        self._rulings[pid] = dict(ruling)

    # -- the whole -------------------------------------------------------------------------
    def to_map(self) -> dict[str, Any]:
        """The whole state as a canonical data-model map."""
        return self._map([b.to_map() for _, b in sorted(self._proposals.items())])

    def _map(self, proposals: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "seq": self._seq,
            "now": self._now_ms,
            "ledger_id": self._ledger_id,
            "constitution": self._constitution.to_map() if self._constitution else None,
            "mandates": [[s, m.to_map()] for s, m in self._mandates],
            "keys": {d: list(k) for d, k in sorted(self._keys.items())},
            "proofs": {
                d: {"cids": list(c.cids), "signers": list(c.signers)}
                for d, c in sorted(self._proofs.items())
            },
            "roles": dict(sorted(self._roles.items())),
            "members": {d: m.to_map() for d, m in sorted(self._members.items())},
            "candidates": {d: c.to_map() for d, c in sorted(self._candidates.items())},
            "vouch_suspended": dict(sorted(self._vouch_suspended.items())),
            "proposals": proposals,
            "delegations": [d.to_map() for _, d in sorted(self._delegations.items())],
            "credits_spent": [[d, e, n] for (d, e), n in sorted(self._credits_spent.items())],
            "conviction_points": dict(sorted(self._conviction_points.items())),
            "motions": [m.to_map() for _, m in sorted(self._motions.items())],
            "actions": [a.to_map() for a in self._actions],
            "denied": [list(d) for d in self._denied],
            "spends": {
                k: [[s.time_ms, s.amount] for s in v] for k, v in sorted(self._spends.items())
            },
            "accounts": dict(sorted(self._accounts.items())),
            "books": self._books.to_map() if self._books else None,
            "escrows": {k: e.to_map() for k, e in sorted(self._escrows.items())},
            "contracts": {k: dict(v) for k, v in sorted(self._contracts.items())},
            "rulings": [[k, dict(v)] for k, v in sorted(self._rulings.items())],
            "legal": [[v.seq, v.time_ms, v.record.to_map()] for v in self._legal],
        }

    def fingerprint(self) -> bytes:
        """The SHA-256 of :meth:`to_map` in canonical DAG-CBOR: equal states, equal prints.

        Proposals enter as :meth:`ProposalBook.encodable` maps: the same encoding as their
        ``to_map``, without copying ballots and stakes only for the encoder to read them.
        """
        proposals = [b.encodable() for _, b in sorted(self._proposals.items())]
        return hashlib.sha256(cbor.encode(self._map(proposals))).digest()
