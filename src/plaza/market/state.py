"""The market state: a projection of the ``market.*`` events of a ledger.

Theory of operation. Every market fact is a ledger event written by the market's
operator (the agent the DAO appointed, named by ``market.opened``); documents that
providers, probers and observers sign travel inside those events and are verified
again on every replay, so the operator can relay what others signed but cannot forge
it. :meth:`MarketState.check` validates an event against the current state and raises
a :class:`~plaza.market.errors.MarketRejectedError` (an ``EventRejectedError``) or a
:class:`~plaza.market.errors.MarketInputError` without changing anything;
:meth:`MarketState.apply` checks and then changes the state. Events of other packages
(``dao.*``) are ignored. Invoices are recomputed from the evidence on replay and must
match, so a ledger can only pay what the contract, the verified usage and the probe
quorum support.

Handlers live in three modules: this one (registry, requests, bids, awards),
:mod:`plaza.market.state_evidence` (contract signatures, usage, observations, probes)
and :mod:`plaza.market.state_money` (invoices, settlement, payments, escrow, bonds,
disputes, needs).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from plaza.ledger.event import Event
from plaza.market import _fields as f
from plaza.market.award import term_cost
from plaza.market.bids import Bid, validate_bid
from plaza.market.contracts import Contract
from plaza.market.disputes import Dispute
from plaza.market.errors import (
    BondTooSmallError,
    ClosedError,
    MarketInputError,
    MarketRejectedError,
    NotFoundInMarketError,
    NotIndependentError,
    NotOperatorError,
    ProviderNotEligibleError,
    ReplayError,
    UnknownProviderError,
)
from plaza.market.journal import Journal, JournalEntry, postings_of
from plaza.market.metering import UsageReport
from plaza.market.params import MarketParams
from plaza.market.probes import ProbeBook
from plaza.market.registry import (
    BIDDABLE,
    Provider,
    StatusChange,
    check_identity,
    check_transition,
    parse_registration,
)
from plaza.market.rfb import Rfb, parse_rfb
from plaza.market.settlement import Invoice
from plaza.market.signed import doc_digest, verify_doc

Commit = Callable[[], None]


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


class MarketState:
    """Everything the market knows, derived by replaying its events."""

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
        self._handlers: dict[str, Callable[[Event], Commit]] = {
            "market.opened": self._opened,
            "market.provider.registered": self._registered,
            "market.provider.status": self._status,
            "market.rfb.created": self._rfb,
            "market.bid.submitted": self._bid,
            "market.award.made": self._award,
        }
        from plaza.market import state_evidence, state_money

        self._handlers.update(state_evidence.handlers(self))
        self._handlers.update(state_money.handlers(self))

    # -- the projection protocol -------------------------------------------------------
    @property
    def params(self) -> MarketParams:
        if self._params is None:
            raise MarketRejectedError("the market is not open yet (no market.opened event)")
        return self._params

    @property
    def is_open(self) -> bool:
        return self._params is not None

    def check(self, event: Event) -> None:
        """Raise unless ``event`` may be applied now; change nothing."""
        self.prepare(event)

    def apply(self, event: Event) -> None:
        """Check, then apply ``event`` (non-market events are only counted)."""
        self.prepare(event)()

    def prepare(self, event: Event) -> Commit:
        """Check ``event`` and return the function that applies it (the check's work is
        not repeated). Nothing changes until the returned function is called."""
        commit = self._prepare(event)

        def done() -> None:
            commit()
            self.last_seq = event.seq
            if event.type != "market.invoice.issued":
                self.evidence_gen += 1

        return done

    def _prepare(self, event: Event) -> Commit:
        if not event.type.startswith("market."):
            return _noop
        handler = self._handlers.get(event.type)
        if handler is None:
            raise MarketRejectedError(f"unknown market event type {event.type}")
        if event.type != "market.opened":
            if self._params is None:
                raise MarketRejectedError("the market is not open yet (no market.opened event)")
            if event.author_did != self.operator:
                raise NotOperatorError(
                    f"{event.type} must be written by the operator {self.operator}, "
                    f"not {event.author_did}"
                )
        return handler(event)

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

    def post(self, event: Event, payee: str, narration: str, postings: Any) -> Commit:
        """Check ``postings`` now; return the commit that records them."""
        ps = postings_of(postings)
        self.journal.check(ps)
        entry = JournalEntry(event.seq, event.time, payee, narration, ps)
        return lambda: self.journal.post(entry)

    # -- handlers: each checks and returns the commit ----------------------------------
    def _opened(self, ev: Event) -> Commit:
        if self._params is not None:
            raise ClosedError("the market is already open")
        p = ev.payload
        operator = f.did_field(p, "operator", "market.opened")
        if operator != ev.author_did:
            raise NotOperatorError("market.opened must be written by the operator it names")
        params = MarketParams.from_map(f.req(p, "params", "market.opened"))
        currency = f.str_field(p, "currency", "market.opened", max_len=24)

        def commit() -> None:
            self.operator, self._params, self.currency = operator, params, currency
            self.probes = ProbeBook(params.windows_per_epoch)

        return commit

    def _registered(self, ev: Event) -> Commit:
        doc = f.req(ev.payload, "doc", "market.provider.registered")
        reg = parse_registration(doc)
        verify_doc(doc, reg.key, "registration", market=self.operator)
        check_identity(reg, ev.time)
        self.check_fresh(reg.did, "registration", reg.nonce, doc)
        if reg.did in self.providers:
            raise ReplayError(f"provider {reg.did} is already registered")
        if reg.did == self.operator:
            raise NotIndependentError("the operator cannot register as a provider")
        provider = Provider(
            did=reg.did,
            key=reg.key,
            services=reg.services,
            regions=reg.regions,
            capacity=reg.capacity,
            prices=reg.prices,
            bond=0,  # declared only: it counts once received (market.bond.received)
            bond_declared=reg.bond,
            endpoint=reg.endpoint,
            registered_ms=ev.time,
            history=(StatusChange(ev.time, "", "probation", "registered"),),
        )

        def commit() -> None:
            self.providers[reg.did] = provider
            self.remember(reg.did, "registration", reg.nonce, doc)

        return commit

    def _status(self, ev: Event) -> Commit:
        p = ev.payload
        did = f.did_field(p, "provider", "market.provider.status")
        new = f.str_field(p, "status", "market.provider.status", max_len=16)
        reason = f.str_field(p, "reason", "market.provider.status", max_len=1000)
        if not reason:
            raise MarketInputError("a status change needs a reason")
        prov = self.providers.get(did)
        if prov is None:
            raise UnknownProviderError(f"no provider {did}")
        check_transition(prov, new)

        def commit() -> None:
            change = StatusChange(ev.time, prov.status, new, reason)
            self.providers[did] = replace(
                self.providers[did],
                status=new,
                history=(*self.providers[did].history, change),
                failed_streak=0 if new == "active" else self.providers[did].failed_streak,
            )

        return commit

    def _rfb(self, ev: Event) -> Commit:
        rfb = parse_rfb(ev.payload, default_max_bids=self.params.max_bids)
        want = self.next_id("rfb", self.rfbs)
        if rfb.id != want:
            raise MarketInputError(f"the next request for bids is {want}, not {rfb.id}")
        if rfb.deadline_ms <= ev.time:
            raise ClosedError("the bid deadline must be in the future")
        rfb = replace(rfb, created_ms=ev.time)

        def commit() -> None:
            self.rfbs[rfb.id] = rfb

        return commit

    def _bid(self, ev: Event) -> Commit:
        doc = f.req(ev.payload, "doc", "market.bid.submitted")
        bid = validate_bid(self, doc, ev.time)
        free = self.free_bond(bid.provider)
        if bid.bond > free:
            prov = self.providers[bid.provider]
            unpaid = prov.bond_declared - prov.bond_received
            raise BondTooSmallError(
                f"the bid pledges a bond of {bid.bond}, but only {free} of the provider's "
                "escrowed bond is free"
                + (f" ({unpaid} of the declared bond has no receipt yet)" if unpaid else "")
            )

        def commit() -> None:
            self.bids[bid.id] = bid
            self.open_bids_of.setdefault(bid.provider, {})[bid.id] = None
            rfb = self.rfbs[bid.rfb]
            self.rfbs[bid.rfb] = replace(rfb, bids=(*rfb.bids, bid.id))
            self.remember(bid.provider, "bid", bid.nonce, doc)

        return commit

    def _award(self, ev: Event) -> Commit:
        p = ev.payload
        rfb_id = f.id_field(p, "rfb", "market.award.made")
        rfb = self.rfbs.get(rfb_id)
        if rfb is None:
            raise NotFoundInMarketError(f"no request for bids {rfb_id}")
        if rfb.awarded:
            raise ClosedError(f"{rfb_id} is already awarded")
        if ev.time < rfb.deadline_ms and len(rfb.bids) < rfb.max_bids:
            raise ClosedError(f"{rfb_id} takes bids until {rfb.deadline_ms}")
        lines = f.req(p, "lines", "market.award.made")
        if not isinstance(lines, list):
            raise MarketInputError("market.award.made lines must be a list")
        f.str_field(p, "mandate", "market.award.made", max_len=64)
        total = 0
        contracts: list[Contract] = []
        seen: set[str] = set()
        n = len(self.contracts)
        for ln in lines:
            m = f.as_map(ln, "award line")
            bid_id = f.str_field(m, "bid", "award line", max_len=40)
            bid = self.bids.get(bid_id)
            if bid is None or bid.rfb != rfb_id or bid_id in seen:
                raise MarketInputError(f"award line names {bid_id}, not a bid of {rfb_id}")
            seen.add(bid_id)
            q = f.int_field(m, "allocated", "award line", hi=bid.quantity)
            verdict = f.str_field(m, "verdict", "award line", max_len=16)
            if verdict not in ("allow", "optimistic", "vote", "deny", "skip"):
                raise MarketInputError(f"unknown award verdict {verdict!r}")
            if q == 0:
                continue
            if verdict not in ("allow", "optimistic", "vote"):
                raise MarketInputError("only allowed lines may allocate accounts")
            if bid.expires_ms <= ev.time:
                raise ClosedError(f"{bid_id} expired before the award")
            if self.providers[bid.provider].status not in BIDDABLE:
                raise ProviderNotEligibleError(f"{bid.provider} may not be awarded")
            total += q
            n += 1
            contracts.append(
                Contract(
                    id=f"c-{n}",
                    rfb=rfb_id,
                    bid=bid_id,
                    provider=bid.provider,
                    service=rfb.service,
                    region=rfb.region,
                    quantity=q,
                    prices=bid.prices,
                    sla=bid.sla,
                    credit_ladder=rfb.credit_ladder,
                    latency_credit_ppm=rfb.latency_credit_ppm,
                    start_ms=rfb.start_ms,
                    end_ms=rfb.start_ms + rfb.term_s * 1000,
                    notice_s=rfb.notice_s,
                    exit_fee=rfb.exit_fee,
                    bond=bid.bond,
                    awarded_ms=ev.time,
                    verdict=verdict,
                    window_s=f.int_field(m, "window_s", "award line"),
                    proposal_type=f.str_field(m, "proposal_type", "award line", max_len=64),
                    min_term_s=rfb.min_term_s,
                    standing=rfb.standing,
                )
            )
        if set(rfb.bids) != seen:
            raise MarketInputError("an award must account for every bid of the request")
        if total > rfb.quantity:
            raise MarketInputError(f"the award allocates {total} of {rfb.quantity} accounts")
        costs = [
            (ev.time, term_cost(rfb, rfb.bundle_price(c.prices), c.quantity, self.params))
            for c in contracts
        ]

        def commit() -> None:
            self.rfbs[rfb_id] = replace(rfb, awarded=True)
            for b in rfb.bids:
                self.open_bids_of.get(self.bids[b].provider, {}).pop(b, None)
            for c in contracts:
                self.contracts[c.id] = c
                self.running_of.setdefault(c.provider, {})[c.id] = None
            self.commitments.extend(costs)
            self.awards[rfb_id] = dict(p)

        return commit


def _noop() -> None:
    return None
