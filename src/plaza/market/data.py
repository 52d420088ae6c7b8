"""The market's data: what replaying the ``market.*`` events has established, with the
queries the rules ask of it (fresh documents, spare capacity, free bond, history).

:class:`MarketData` holds no rules and dispatches no events: the handlers
(:mod:`plaza.market.state_registry`, :mod:`plaza.market.state_evidence`,
:mod:`plaza.market.state_money`) read it and return mutations that change it, and
:class:`~plaza.market.state.MarketState` adds the event table.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from plaza.ledger.event import Event
from plaza.ledger.handlers import Mutation
from plaza.market.bids import Bid
from plaza.market.contracts import Contract
from plaza.market.disputes import Dispute
from plaza.market.errors import MarketRejectedError, ReplayError
from plaza.market.journal import Journal, JournalEntry, postings_of
from plaza.market.metering import UsageReport
from plaza.market.params import MarketParams
from plaza.market.probes import ProbeBook
from plaza.market.registry import Provider
from plaza.market.rfb import Rfb
from plaza.market.settlement import Invoice
from plaza.market.signed import doc_digest


@dataclass(frozen=True, slots=True)
class Need:
    """Something the agents must act on: re-procure capacity, or migrate accounts."""

    id: str
    kind: str  # "reprocure" | "migration"
    service: str
    provider: str
    accounts: int
    contracts: tuple[str, ...]
    reason: str
    time_ms: int
    seq: int

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "service": self.service,
            "provider": self.provider,
            "accounts": self.accounts,
            "contracts": list(self.contracts),
            "reason": self.reason,
            "timeMs": self.time_ms,
            "seq": self.seq,
        }


class MarketData:
    """Everything the market knows, and the questions the rules ask of it.

    Changed only by the mutations the event handlers return;
    :class:`~plaza.market.state.MarketState` is this data with the event table that
    drives it."""

    def __init__(self) -> None:
        self.operator: str | None = None
        self._params: MarketParams | None = None
        self.currency = ""
        self.providers: dict[str, Provider] = {}
        self.rfbs: dict[str, Rfb] = {}
        self.bids: dict[str, Bid] = {}
        self.contracts: dict[str, Contract] = {}
        # Per provider, its bids on requests not yet awarded and its contracts not yet
        # ended (insertion-ordered dicts used as sets): what spare capacity and free bond
        # subtract. Kept small as requests close and contracts end, so a provider that
        # bids on every request does not make each new bid cost more than the last.
        self.open_bids_of: dict[str, dict[str, None]] = {}
        self.running_of: dict[str, dict[str, None]] = {}
        self.usage: dict[tuple[str, int], UsageReport] = {}
        self.observations: dict[tuple[str, int], dict[str, UsageReport]] = {}
        self.probes = ProbeBook(1)
        self.invoices: dict[str, Invoice] = {}
        self.invoice_paid: dict[str, int] = {}
        self.invoice_extra: dict[str, int] = {}
        self.invoice_time: dict[str, int] = {}
        self.settled_epochs: set[int] = set()
        self.history: dict[str, tuple[int, int, int | None]] = {}
        self.commitments: list[tuple[int, int]] = []
        self.disputes: dict[str, Dispute] = {}
        self.needs: list[Need] = []
        self.journal = Journal()
        self.seen_nonces: set[tuple[str, str, str]] = set()
        self.seen_digests: set[str] = set()
        self.bond_references: set[str] = set()
        self.awards: dict[str, dict[str, Any]] = {}
        self.last_seq = -1
        # Invoices depend on evidence and contracts; any change bumps the generation.
        self.evidence_gen = 0
        self.invoice_memo: dict[tuple[str, int], tuple[int, Invoice]] = {}

    def open_market(self, operator: str, params: MarketParams, currency: str) -> None:
        """Record what ``market.opened`` established (once)."""
        self.operator, self._params, self.currency = operator, params, currency
        self.probes = ProbeBook(params.windows_per_epoch)

    @property
    def params(self) -> MarketParams:
        if self._params is None:
            raise MarketRejectedError("the market is not open yet (no market.opened event)")
        return self._params

    @property
    def is_open(self) -> bool:
        return self._params is not None

    def fingerprint(self) -> bytes:
        """A digest of the whole state (equal states, equal fingerprints)."""
        doc = {
            "operator": self.operator,
            "params": self._params.to_map() if self._params else None,
            "providers": {k: v.to_json() for k, v in sorted(self.providers.items())},
            "rfbs": {k: v.to_json() for k, v in sorted(self.rfbs.items())},
            "bids": sorted(self.bids),
            "contracts": {k: v.to_json() for k, v in sorted(self.contracts.items())},
            "usage": sorted(f"{k[0]}/{k[1]}" for k in self.usage),
            "invoices": {k: v.to_map() for k, v in sorted(self.invoices.items())},
            "paid": dict(sorted(self.invoice_paid.items())),
            "settled": sorted(self.settled_epochs),
            "balances": dict(sorted(self.journal.balances.items())),
            "needs": [n.to_json() for n in self.needs],
            "disputes": {k: v.to_json() for k, v in sorted(self.disputes.items())},
        }
        return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).digest()

    # -- queries the rules use ---------------------------------------------------------
    def check_fresh(self, signer: str, doc_type: str, nonce: str, doc: Mapping[str, Any]) -> None:
        """Raise :class:`ReplayError` if this document (or its nonce) was accepted before."""
        if (signer, doc_type, nonce) in self.seen_nonces or doc_digest(doc) in self.seen_digests:
            raise ReplayError(f"this {doc_type} document from {signer} was already accepted")

    def remember(self, signer: str, doc_type: str, nonce: str, doc: Mapping[str, Any]) -> None:
        """Note an accepted signed document, so :meth:`check_fresh` refuses it again."""
        self.seen_nonces.add((signer, doc_type, nonce))
        self.seen_digests.add(doc_digest(doc))

    def history_of(self, provider: str) -> tuple[int, int, int | None]:
        """``(up windows, judged windows, last settled p95 ms)`` of ``provider``."""
        return self.history.get(provider, (0, 0, None))

    def accounts_by_provider(self, service: str) -> dict[str, int]:
        """Accounts under contract (awarded or active, less what was released) per
        provider, for ``service``; standing offers hold none."""
        out: dict[str, int] = {}
        for c in self.contracts.values():
            if c.service == service and c.firm:
                out[c.provider] = out.get(c.provider, 0) + c.held
        return out

    def _held(self, provider: str) -> tuple[list[Bid], list[Contract]]:
        """The provider's open bids and running contracts (from the per-provider index)."""
        bids = [self.bids[b] for b in self.open_bids_of.get(provider, ())]
        contracts = [self.contracts[c] for c in self.running_of.get(provider, ())]
        return bids, contracts

    def spare_capacity(self, provider: str, service: str) -> int:
        """Accounts of ``service`` the provider can still offer: capacity less what its
        running contracts and open bids hold."""
        cap = self.providers[provider].capacity.get(service, {}).get("accounts", 0)
        bids, contracts = self._held(provider)
        used = sum(c.held for c in contracts if c.service == service and c.firm)
        used += sum(b.quantity for b in bids if self.rfbs[b.rfb].service == service)
        return max(0, cap - used)

    def free_bond(self, provider: str) -> int:
        """The part of the provider's escrowed bond not pledged to open bids or contracts."""
        bids, contracts = self._held(provider)
        pledged = sum(b.bond for b in bids) + sum(c.bond for c in contracts)
        return max(0, self.providers[provider].bond - pledged)

    def next_id(self, prefix: str, existing: Mapping[str, Any]) -> str:
        return f"{prefix}-{len(existing) + 1}"

    def post(self, event: Event, payee: str, narration: str, postings: Any) -> Mutation:
        """Check ``postings`` now; return the mutation that records them."""
        ps = postings_of(postings)
        self.journal.check(ps)
        entry = JournalEntry(event.seq, event.time, payee, narration, ps)
        return lambda: self.journal.post(entry)
