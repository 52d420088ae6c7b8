"""The market's commands: check, record in the ledger, then apply.

:class:`Market` is the library API the CLI, the HTTP API, the agents and the simulator
call. It holds a :class:`~plaza.ledger.Ledger` (any store: memory, SQLite,
PostgreSQL), the operator's DID and key (the agent the DAO appointed; it signs the
events), the mandate its actions are judged by, and optionally a DAO port
(:mod:`plaza.market.dao_port`) for vetoes, proposals and dispute votes.

Each command catches up with the ledger (other writers, such as the DAO, append too),
builds the event, lets :class:`~plaza.market.state.MarketState` check it — which raises
the specific error and changes nothing if it is not acceptable — appends it, and only
then applies it. A lost append race is retried on the new head. Settlement writes
many events as one atomic run (invoices, the epoch close, penalties, payments, needs):
it applies them to the state as it builds them and appends the run at once; if the
append fails the state is rebuilt from the ledger, so the state never holds what the
ledger does not.

Time is an argument (``now_ms``) everywhere: the simulator runs on its own clock.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from plaza.atproto.crypto import PrivateKey
from plaza.dao import Action, Allow, Deny, GuardState, Mandate, NeedsVote, Spend, check
from plaza.ledger import AppendConflictError, Event, Ledger
from plaza.market.award import AwardPlan, plan_award
from plaza.market.bids import Bid, bid_id
from plaza.market.contracts import Contract
from plaza.market.dao_port import DaoPort
from plaza.market.disputes import Dispute
from plaza.market.errors import (
    MandateDeniedError,
    MarketInputError,
    NotApprovedError,
    NotFoundInMarketError,
)
from plaza.market.journal import (
    MARKET_ESCROW,
    TREASURY,
    bond_escrow,
    bond_liability,
    payable,
)
from plaza.market.params import MarketParams
from plaza.market.penalties import decide
from plaza.market.rfb import Rfb
from plaza.market.settlement import Invoice, pro_rata
from plaza.market.state import MarketState, Need
from plaza.market.state_money import (
    billable,
    epoch_outcome,
    invoice_id,
    invoice_postings,
    make_invoice,
    outstanding,
)


@dataclass(frozen=True, slots=True)
class Pending:
    """An action the mandate did not allow the agent to take on its own."""

    kind: str
    subject: str
    verdict: str
    reason: str


@dataclass(slots=True)
class SettlementResult:
    """What one ``settle`` call did."""

    epochs: list[int] = field(default_factory=list)
    invoices: list[Invoice] = field(default_factory=list)
    payments: dict[str, int] = field(default_factory=dict)
    owed: int = 0
    paid: int = 0
    escrow_before: int = 0
    shortfall: int = 0
    status_changes: list[tuple[str, str, str]] = field(default_factory=list)
    needs: list[Need] = field(default_factory=list)
    pending: list[Pending] = field(default_factory=list)
    events: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "epochs": self.epochs,
            "invoices": [i.to_map() for i in self.invoices],
            "payments": self.payments,
            "owed": self.owed,
            "paid": self.paid,
            "escrowBefore": self.escrow_before,
            "shortfall": self.shortfall,
            "statusChanges": [
                {"provider": p, "status": s, "reason": r} for p, s, r in self.status_changes
            ],
            "needs": [n.to_json() for n in self.needs],
            "pending": [
                {"kind": p.kind, "subject": p.subject, "verdict": p.verdict, "reason": p.reason}
                for p in self.pending
            ],
            "events": self.events,
        }


class Market:
    """Commands over a ledger; see the module docstring."""

    def __init__(
        self,
        ledger: Ledger,
        *,
        operator_did: str,
        operator_key: PrivateKey | None,
        mandate: Mandate,
        dao: DaoPort | None = None,
    ) -> None:
        self.ledger = ledger
        self.operator_did = operator_did
        self._key = operator_key
        self.mandate = mandate
        self.dao = dao
        self.state = MarketState()
        self._lock = threading.RLock()
        self._batch: list[Event] | None = None
        self.sync()

    # -- plumbing --------------------------------------------------------------------
    def sync(self) -> None:
        """Apply the ledger's events this state has not seen yet."""
        with self._lock:
            for ev in self.ledger.read(self.state.last_seq + 1):
                self.state.apply(ev)
                self.state.last_seq = ev.seq

    def reload(self) -> None:
        """Rebuild the state from the whole ledger."""
        with self._lock:
            self.state = MarketState()
            self.sync()

    def _signer(self) -> PrivateKey:
        if self._key is None:
            raise MarketInputError("this market handle is read-only (no operator key)")
        return self._key

    def _record(self, type_: str, payload: dict[str, Any], now_ms: int) -> Event:
        key = self._signer()
        with self._lock:
            if self._batch is not None:
                head = self.ledger.head()
                if self._batch:
                    last = self._batch[-1]
                    from plaza.ledger import Head

                    head = Head(last.seq + 1, last.hash, last.time)
                ev = self.ledger.build(
                    key, author_did=self.operator_did, type=type_, payload=payload, time=now_ms,
                    head=head,
                )  # fmt: skip
                self.state.apply(ev)
                self._batch.append(ev)
                return ev
            for _ in range(5):
                self.sync()
                ev = self.ledger.build(
                    key, author_did=self.operator_did, type=type_, payload=payload, time=now_ms
                )
                self.state.check(ev)
                try:
                    self.ledger.append(ev)
                except AppendConflictError:
                    continue
                self.state.apply(ev)
                return ev
            raise AppendConflictError("lost the race for the ledger head five times")

    @contextmanager
    def _atomic(self) -> Iterator[list[Event]]:
        """Record several events as one atomic run (see the module docstring)."""
        with self._lock:
            self.sync()
            self._batch = []
            try:
                yield self._batch
                if self._batch:
                    self.ledger.append_many(self._batch)
            except BaseException:
                self._batch = None
                self.reload()
                raise
            finally:
                self._batch = None

    def _guard(self, action: Action, now_ms: int, spent: int = 0) -> Any:
        state = GuardState(
            mandate=self.mandate,
            now_ms=now_ms,
            spends={"infrastructure": [Spend(now_ms, spent)] if spent else []},
            accounts={},
        )
        return check(action, state)

    # -- registry ----------------------------------------------------------------------
    def open(self, params: MarketParams, now_ms: int, *, currency: str | None = None) -> None:
        """Open the market with ``params`` (once)."""
        self._record(
            "market.opened",
            {
                "operator": self.operator_did,
                "params": params.to_map(),
                "currency": currency or self.mandate.currency,
            },
            now_ms,
        )

    def register_provider(self, doc: Mapping[str, Any], now_ms: int) -> str:
        """Record a signed ``registration``; returns the provider DID. The bond is held in
        escrow from this moment."""
        ev = self._record("market.provider.registered", {"doc": dict(doc)}, now_ms)
        return str(ev.payload["doc"]["provider"])

    def set_status(
        self, provider: str, status: str, reason: str, now_ms: int, *, proposal: int = 0
    ) -> None:
        """Change a provider's status. Suspension and offboarding go through the mandate
        guard (``provider.suspend``/``provider.offboard``) unless a passed proposal is
        cited; offboarding also ends the provider's contracts, forfeits part of its
        bond and raises a migration need."""
        if status in ("suspended", "offboarded") and not proposal:
            kind = "provider.suspend" if status == "suspended" else "provider.offboard"
            verdict = self._guard(Action(kind=kind, provider=provider), now_ms)
            if not isinstance(verdict, Allow):
                raise _not_allowed(kind, verdict)
        if proposal:
            self._require_passed(proposal)
            reason = f"{reason} (proposal {proposal})"
        with self._atomic():
            self._status_change(provider, status, reason, now_ms)
            if status == "offboarded":
                p = self.state.providers[provider]
                self._offboard(
                    provider, p.bond * self.state.params.slash_ppm // 1_000_000, reason, now_ms
                )

    def _status_change(self, provider: str, status: str, reason: str, now_ms: int) -> None:
        self._record(
            "market.provider.status",
            {"provider": provider, "status": status, "reason": reason},
            now_ms,
        )

    def _offboard(self, provider: str, slash: int, reason: str, now_ms: int) -> Need | None:
        running = sorted(
            (
                c
                for c in self.state.contracts.values()
                if c.provider == provider and c.status != "ended"
            ),
            key=lambda c: c.id,
        )
        for c in running:
            self._record(
                "market.contract.ended",
                {"contract": c.id, "reason": f"provider offboarded: {reason}"},
                now_ms,
            )
        bond = self.state.providers[provider].bond
        if slash:
            self._record(
                "market.bond.slashed",
                {
                    "provider": provider,
                    "amount": slash,
                    "reason": f"bond forfeited on offboarding: {reason}",
                    "postings": [
                        [bond_liability(provider), slash],
                        ["Income:Forfeits", -slash],
                        [TREASURY, slash],
                        [bond_escrow(provider), -slash],
                    ],
                },
                now_ms,
            )
        rest = bond - slash
        if rest:
            self._record(
                "market.bond.released",
                {
                    "provider": provider,
                    "amount": rest,
                    "reason": "bond returned on offboarding",
                    "postings": [[bond_liability(provider), rest], [bond_escrow(provider), -rest]],
                },
                now_ms,
            )
        if not running:
            return None
        return self._need(
            "migration",
            running[0].service,
            provider,
            accounts=sum(c.quantity for c in running),
            contracts=[c.id for c in running],
            reason=f"{provider} was offboarded ({reason}); move its accounts",
            now_ms=now_ms,
        )

    def _need(
        self,
        kind: str,
        service: str,
        provider: str,
        *,
        accounts: int,
        contracts: list[str],
        reason: str,
        now_ms: int,
    ) -> Need:
        self._record(
            "market.need.raised",
            {
                "id": f"n-{len(self.state.needs) + 1}",
                "kind": kind,
                "service": service,
                "provider": provider,
                "accounts": accounts,
                "contracts": contracts,
                "reason": reason,
            },
            now_ms,
        )
        return self.state.needs[-1]

    # -- procurement -------------------------------------------------------------------
    def create_rfb(self, spec: Mapping[str, Any], now_ms: int) -> Rfb:
        """Publish a request for bids (``spec`` is the RFB without its ``id``), if the
        mandate allows ``rfb.create``."""
        verdict = self._guard(Action(kind="rfb.create", params={}), now_ms)
        if not isinstance(verdict, Allow):
            raise _not_allowed("rfb.create", verdict)
        rid = f"rfb-{len(self.state.rfbs) + 1}"
        self._record("market.rfb.created", {**dict(spec), "id": rid}, now_ms)
        return self.state.rfbs[rid]

    def submit_bid(self, doc: Mapping[str, Any], now_ms: int) -> Bid:
        """Record a signed bid, or raise the reason it is rejected (nothing recorded)."""
        self._record("market.bid.submitted", {"doc": dict(doc)}, now_ms)
        return self.state.bids[bid_id(doc)]

    def plan_award(self, rfb_id: str, now_ms: int) -> AwardPlan:
        """What :meth:`award` would do now (pure)."""
        self.sync()
        if rfb_id not in self.state.rfbs:
            raise NotFoundInMarketError(f"no request for bids {rfb_id}")
        return plan_award(self.state, rfb_id, self.mandate, now_ms)

    def award(self, rfb_id: str, now_ms: int) -> tuple[AwardPlan, list[Contract]]:
        """Score and allocate the bids of ``rfb_id`` and record the award with its
        breakdown; returns the plan and the contracts it created (state ``awarded``)."""
        plan = self.plan_award(rfb_id, now_ms)
        before = set(self.state.contracts)
        self._record("market.award.made", plan.to_payload(), now_ms)
        new = [c for cid, c in self.state.contracts.items() if cid not in before]
        return plan, new

    def sign_contract(self, doc: Mapping[str, Any], now_ms: int) -> Contract:
        """Record the provider's signature on a contract's terms."""
        self._record("market.contract.signed", {"doc": dict(doc)}, now_ms)
        return self.state.contracts[str(doc["contract"])]

    def approve_contract(self, contract_id: str, now_ms: int, *, proposal: int = 0) -> Contract:
        """Sign for the DAO: within the mandate (after the veto window for an optimistic
        award, unless the DAO reports a veto), or citing a passed proposal."""
        self.sync()
        c = self.state.contracts.get(contract_id)
        if c is None:
            raise NotFoundInMarketError(f"no contract {contract_id}")
        if proposal:
            self._require_passed(proposal)
            payload: dict[str, Any] = {
                "contract": contract_id,
                "by": "proposal",
                "proposal": proposal,
            }
        else:
            if (
                self.dao is not None
                and c.verdict == "optimistic"
                and self.dao.vetoed("contract.award", contract_id)
            ):
                raise NotApprovedError(f"members vetoed the award of {contract_id}")
            payload = {"contract": contract_id, "by": "mandate"}
        self._record("market.contract.approved", payload, now_ms)
        return self.state.contracts[contract_id]

    def end_contract(self, contract_id: str, reason: str, now_ms: int) -> Contract:
        self._record("market.contract.ended", {"contract": contract_id, "reason": reason}, now_ms)
        return self.state.contracts[contract_id]

    def _require_passed(self, proposal: int) -> None:
        if self.dao is None:
            raise NotApprovedError("no DAO is connected to check the proposal")
        outcome, _ = self.dao.outcome(proposal)
        if outcome != "passed":
            raise NotApprovedError(f"proposal {proposal} has not passed ({outcome})")

    # -- evidence ----------------------------------------------------------------------
    def report_usage(self, doc: Mapping[str, Any], now_ms: int) -> None:
        """Record a provider's signed usage report for a contract and epoch."""
        self._record("market.usage.reported", {"doc": dict(doc)}, now_ms)

    def report_observation(self, doc: Mapping[str, Any], now_ms: int) -> None:
        """Record an independent observer's signed usage observation."""
        self._record("market.observation.reported", {"doc": dict(doc)}, now_ms)

    def report_probes(self, doc: Mapping[str, Any], now_ms: int) -> None:
        """Record a prober's signed samples."""
        self._record("market.probes.reported", {"doc": dict(doc)}, now_ms)

    # -- money -------------------------------------------------------------------------
    def fund_escrow(self, amount: int, now_ms: int, memo: str = "") -> None:
        """Move ``amount`` from the DAO treasury into the market's escrow account."""
        if self.dao is not None:
            available = self.dao.treasury_balance()
            if available is not None and available < amount:
                from plaza.market.errors import TreasuryPortError

                raise TreasuryPortError(f"the treasury holds {available}, not {amount}")
        self._record(
            "market.escrow.funded",
            {
                "amount": amount,
                "memo": memo,
                "postings": [[MARKET_ESCROW, amount], [TREASURY, -amount]],
            },
            now_ms,
        )

    def settle(self, epoch: int, now_ms: int) -> SettlementResult:
        """Invoice every unsettled epoch up to ``epoch``, apply penalties, and pay what
        is owed from escrow (pro rata when short). One atomic run of events."""
        result = SettlementResult()
        params = self.state.params
        if now_ms < params.epoch_end(epoch):
            from plaza.market.errors import EpochOpenError

            raise EpochOpenError(f"epoch {epoch} is not over until {params.epoch_end(epoch)}")
        with self._atomic() as events:
            first = epoch
            while (
                first > 0
                and (first - 1) not in self.state.settled_epochs
                and billable(self.state, first - 1)
            ):
                first -= 1
            for e in range(first, epoch + 1):
                if e in self.state.settled_epochs:
                    continue
                self._settle_epoch(e, now_ms, result)
            self._pay(now_ms, result)
            result.events = len(events)
        return result

    def _settle_epoch(self, epoch: int, now_ms: int, result: SettlementResult) -> None:
        st = self.state
        for c in billable(st, epoch):
            if invoice_id(c.id, epoch) in st.invoices:
                continue
            inv = make_invoice(st, c, epoch)
            self._record(
                "market.invoice.issued",
                {"invoice": inv.to_map(), "postings": invoice_postings(inv)},
                now_ms,
            )
            result.invoices.append(inv)
        failed, clean = epoch_outcome(st, epoch)
        self._record(
            "market.epoch.settled", {"epoch": epoch, "failed": failed, "clean": clean}, now_ms
        )
        result.epochs.append(epoch)
        for step in decide(st, epoch, set(failed), set(clean)):
            if step.status in ("suspended", "offboarded"):
                kind = "provider.suspend" if step.status == "suspended" else "provider.offboard"
                verdict = self._guard(Action(kind=kind, provider=step.provider), now_ms)
                if not isinstance(verdict, Allow):
                    result.pending.append(
                        Pending(kind, step.provider, verdict.verdict, step.reason)
                    )
                    continue
            self._status_change(step.provider, step.status, step.reason, now_ms)
            result.status_changes.append((step.provider, step.status, step.reason))
            if step.status == "offboarded":
                need = self._offboard(step.provider, step.slash, step.reason, now_ms)
                if need is not None:
                    result.needs.append(need)

    def _pay(self, now_ms: int, result: SettlementResult) -> None:
        st = self.state
        owed = {i: outstanding(st, i) for i in sorted(st.invoices)}
        owed = {i: v for i, v in owed.items() if v > 0}
        escrow = st.journal.balance(MARKET_ESCROW)
        result.owed, result.escrow_before = sum(owed.values()), escrow
        plan = pro_rata(owed, escrow)
        budget = self.mandate.budgets.get("infrastructure")
        spent = 0
        if budget is not None:
            start = now_ms - budget.period * 1000
            spent = sum(
                -a
                for e in st.journal.entries
                if start < e.time_ms <= now_ms
                for acct, a in e.postings
                if acct == MARKET_ESCROW and a < 0
            )
        for iid, amount in plan.items():
            inv = st.invoices[iid]
            action = Action(
                kind="settlement.pay",
                params={"invoice": iid},
                amount=amount,
                category="infrastructure",
                provider=inv.provider,
            )
            verdict = self._guard(action, now_ms, spent)
            if not isinstance(verdict, Allow):
                result.pending.append(
                    Pending("settlement.pay", iid, verdict.verdict, _verdict_reason(verdict))
                )
                continue
            self._record(
                "market.payment.made",
                {
                    "invoice": iid,
                    "amount": amount,
                    "postings": [[payable(inv.provider), amount], [MARKET_ESCROW, -amount]],
                },
                now_ms,
            )
            spent += amount
            result.payments[iid] = amount
        result.paid = sum(result.payments.values())
        result.shortfall = max(0, result.owed - escrow)
        if result.shortfall:
            by_service: dict[str, list[str]] = {}
            for iid in owed:
                c = st.contracts[st.invoices[iid].contract]
                if outstanding(st, iid) > 0:
                    by_service.setdefault(c.service, []).append(c.id)
            for service, cids in sorted(by_service.items()):
                cids = sorted(set(cids))
                result.needs.append(
                    self._need(
                        "reprocure",
                        service,
                        "",
                        accounts=sum(st.contracts[c].quantity for c in cids),
                        contracts=cids,
                        reason=f"escrow held {escrow} against {result.owed} owed: paid pro "
                        f"rata, {result.shortfall} short; fund escrow or buy cheaper capacity",
                        now_ms=now_ms,
                    )
                )

    # -- disputes ----------------------------------------------------------------------
    def open_dispute(self, doc: Mapping[str, Any], now_ms: int) -> Dispute:
        """Record a provider's signed dispute and file the DAO's ``dispute`` proposal."""
        self.sync()
        did = f"d-{len(self.state.disputes) + 1}"
        proposal = 0
        if self.dao is not None:
            # Validate before filing anything with the DAO.
            probe = self.ledger.build(
                self._signer(), author_did=self.operator_did, type="market.dispute.opened",
                payload={"id": did, "doc": dict(doc), "proposal": 0}, time=now_ms,
            )  # fmt: skip
            self.state.check(probe)
            proposal = self.dao.file_dispute(did, dict(doc), now_ms)
        self._record(
            "market.dispute.opened", {"id": did, "doc": dict(doc), "proposal": proposal}, now_ms
        )
        return self.state.disputes[did]

    def resolve_dispute(
        self, dispute_id: str, now_ms: int, *, outcome: str = "", amount: int | None = None
    ) -> Dispute:
        """Record the outcome of a dispute. With a DAO connected the outcome is read from
        its proposal (passed: upheld, failed: rejected); without one the operator's
        ``outcome`` is recorded."""
        self.sync()
        d = self.state.disputes.get(dispute_id)
        if d is None:
            raise NotFoundInMarketError(f"no dispute {dispute_id}")
        if self.dao is not None:
            result, voted_amount = self.dao.outcome(d.proposal)
            if result == "open":
                raise NotApprovedError(f"proposal {d.proposal} on {dispute_id} is still open")
            outcome = "upheld" if result == "passed" else "rejected"
            if amount is None:
                amount = voted_amount
        if outcome not in ("upheld", "rejected"):
            raise MarketInputError("outcome must be 'upheld' or 'rejected'")
        amt = 0 if outcome == "rejected" else (d.claim if amount is None else amount)
        postings = [["Expenses:Infrastructure", amt], [payable(d.provider), -amt]] if amt else []
        self._record(
            "market.dispute.resolved",
            {
                "dispute": dispute_id,
                "outcome": outcome,
                "amount": amt,
                "proposal": d.proposal,
                "postings": postings,
            },
            now_ms,
        )
        return self.state.disputes[dispute_id]


def _verdict_reason(verdict: Any) -> str:
    if isinstance(verdict, Deny):
        return f"{verdict.code}: {verdict.reason}"
    if isinstance(verdict, NeedsVote):
        return verdict.reason
    return f"{verdict.verdict} (window {getattr(verdict, 'window_s', 0)} s)"


def _not_allowed(kind: str, verdict: Any) -> MandateDeniedError | NotApprovedError:
    if isinstance(verdict, Deny):
        return MandateDeniedError(f"the mandate denies {kind}: {verdict.reason}")
    return NotApprovedError(
        f"the mandate does not let the agent {kind} alone: {_verdict_reason(verdict)}"
    )
