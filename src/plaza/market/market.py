"""The market's commands: check, record in the ledger, then apply.

:class:`Market` is the library API the CLI, the HTTP API, the agents and the simulator
call. It holds a :class:`~plaza.ledger.Ledger` (any store: memory, SQLite,
PostgreSQL), the operator's DID and key (the agent the DAO appointed; it signs the
events), the mandate its actions are judged by, and optionally a DAO port
(:mod:`plaza.market.dao_port`): with one, the market shares the DAO's ledger, reads
the DAO's mandate, and records every money movement as a DAO agent action.

Each command catches up with the ledger (other writers, such as the DAO, append too),
builds the event, lets :class:`~plaza.market.state.MarketState` (and the DAO's state,
when connected) check it — which raises the specific error and changes nothing if it is
not acceptable — appends it, and only then applies it. A lost append race is retried
on the new head. Commands that write several events (a bond receipt with its DAO deposit,
funding, approval of a motion, settlement) write them as one atomic run: the events are
applied to the states as they are built and appended at once; if the append fails the
states are rebuilt from the ledger, so they never hold what the ledger does not.

Time is an argument (``now_ms``) everywhere: the simulator runs on its own clock.
"""

from __future__ import annotations

import functools
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar, cast

from plaza.atproto.crypto import PrivateKey
from plaza.dao import Action, Allow, GuardState, Mandate, Optimistic, Spend, check
from plaza.dao.mandate import Verdict
from plaza.ledger import EMPTY_HEAD, AppendConflictError, Event, Head, Ledger
from plaza.market import settle as _settle
from plaza.market.award import AwardPlan, plan_award, term_cost
from plaza.market.bids import Bid, bid_id
from plaza.market.contracts import Contract
from plaza.market.dao_port import DaoPort, bond_escrow_id, escrow_action
from plaza.market.disputes import Dispute
from plaza.market.errors import (
    MarketInputError,
    NotApprovedError,
    NotFoundInMarketError,
)
from plaza.market.journal import MARKET_ESCROW, bond_escrow, bond_liability, payable
from plaza.market.params import MarketParams
from plaza.market.registry import Provider
from plaza.market.rfb import Rfb
from plaza.market.settle import Pending, SettlementResult
from plaza.market.state import MarketState, Need

__all__ = ["Market", "Pending", "SettlementResult"]

F = TypeVar("F", bound=Callable[..., Any])
ATTEMPTS = 5


def _retrying(fn: F) -> F:
    """Re-run a command whose atomic run lost the race for the ledger head (the states
    were rebuilt from the ledger, so the retry decides afresh)."""

    @functools.wraps(fn)
    def wrapper(self: Market, *args: Any, **kwargs: Any) -> Any:
        for attempt in range(ATTEMPTS):
            try:
                return fn(self, *args, **kwargs)
            except AppendConflictError:
                if attempt == ATTEMPTS - 1 or self._batch is not None:
                    raise
                time.sleep(random.uniform(0, 0.005 * (attempt + 1)))
        raise AssertionError("unreachable")

    return cast(F, wrapper)


class Market:
    """Commands over a ledger; see the module docstring."""

    def __init__(
        self,
        ledger: Ledger,
        *,
        operator_did: str,
        operator_key: PrivateKey | None,
        mandate: Mandate | None = None,
        dao: DaoPort | None = None,
    ) -> None:
        if mandate is None and dao is None:
            raise MarketInputError("a market needs a mandate (or a DAO to read it from)")
        self.ledger = ledger
        self.operator_did = operator_did
        self._key = operator_key
        self._mandate = mandate
        self.dao = dao
        self.state = MarketState()
        self._lock = threading.RLock()
        self._batch: list[Event] | None = None
        # Events are built at the head of what the states have applied, never at the
        # store's head: a concurrent writer then makes the append fail (and the command
        # retry after catching up) instead of slipping an unseen event past the states.
        self._head = EMPTY_HEAD
        self.sync()

    @property
    def mandate(self) -> Mandate:
        """The mandate in force: the DAO's when connected, else the one given."""
        if self.dao is not None:
            return self.dao.mandate()
        assert self._mandate is not None
        return self._mandate

    # -- plumbing --------------------------------------------------------------------
    def sync(self) -> None:
        """Apply the ledger's events this state has not seen yet."""
        with self._lock:
            if self.dao is not None:
                self.dao.sync()
            for ev in self.ledger.read(self.state.last_seq + 1):
                self.state.apply(ev)
                self._head = Head(ev.seq + 1, ev.hash, ev.time)

    def reload(self) -> None:
        """Rebuild the states from the whole ledger."""
        with self._lock:
            if self.dao is not None and hasattr(self.dao, "reload"):
                self.dao.reload()
            self.state = MarketState()
            self._head = EMPTY_HEAD
            self.sync()

    def _signer(self) -> PrivateKey:
        if self._key is None:
            raise MarketInputError("this market handle is read-only (no operator key)")
        return self._key

    def _build(self, type_: str, payload: dict[str, Any], now_ms: int, head: Head | None) -> Event:
        return self.ledger.build(
            self._signer(),
            author_did=self.operator_did,
            type=type_,
            payload=payload,
            time=now_ms,
            head=head,
        )

    def _prepare(self, ev: Event) -> Any:
        """Check ``ev`` against every state; return the function that applies it."""
        commit = self.state.prepare(ev)
        if self.dao is not None:
            self.dao.state.check(ev)
        return commit

    def _commit(self, ev: Event, commit: Any) -> None:
        commit()
        if self.dao is not None:
            self.dao.state.apply(ev)

    def _record(self, type_: str, payload: dict[str, Any], now_ms: int) -> Event:
        with self._lock:
            if self._batch is not None:
                head = None
                if self._batch:
                    last = self._batch[-1]
                    head = Head(last.seq + 1, last.hash, last.time)
                ev = self._build(type_, payload, now_ms, head or self._head)
                self._commit(ev, self._prepare(ev))
                self._batch.append(ev)
                return ev
            for _ in range(5):
                self.sync()
                ev = self._build(type_, payload, now_ms, self._head)
                commit = self._prepare(ev)
                try:
                    self.ledger.append(ev)
                except AppendConflictError:
                    continue
                self._commit(ev, commit)
                self._head = Head(ev.seq + 1, ev.hash, ev.time)
                return ev
            raise AppendConflictError("lost the race for the ledger head five times")

    def _precheck(self, type_: str, payload: dict[str, Any], now_ms: int) -> None:
        """Check an event before starting an atomic run that writes it (so a rejected
        document costs no rebuild)."""
        with self._lock:
            self.sync()
            self.state.check(self._build(type_, payload, now_ms, self._head))

    @contextmanager
    def _atomic(self) -> Iterator[list[Event]]:
        """Record several events as one atomic run (see the module docstring)."""
        with self._lock:
            if self._batch is not None:  # already inside a run: join it
                yield self._batch
                return
            self.sync()
            self._batch = []
            try:
                yield self._batch
                if self._batch:
                    self.ledger.append_many(self._batch)
                    last = self._batch[-1]
                    self._head = Head(last.seq + 1, last.hash, last.time)
            except BaseException:
                self._batch = None
                self.reload()
                raise
            finally:
                self._batch = None

    def guard(self, action: Action, now_ms: int) -> Verdict:
        """The mandate guard's verdict on ``action`` now (the DAO's view of spends and
        accounts when connected; the market's own fundings otherwise)."""
        if self.dao is not None:
            return check(action, self.dao.guard_state(now_ms))
        spends = []
        if action.amount:  # only spending reads the budget window: skip the scan otherwise
            spends = [
                Spend(e.time_ms, a)
                for e in self.state.journal.entries
                for acct, a in e.postings
                if acct == MARKET_ESCROW and a > 0
            ]
        state = GuardState(mandate=self.mandate, now_ms=now_ms, spends={"infrastructure": spends})
        return check(action, state)

    def _act(self, action: Action, reason: str, now_ms: int, *, motion: int = 0) -> None:
        """Carry out an agent action: a DAO action event when connected (the DAO checks it
        again), else only the guard's check. Raises unless the guard allows it — or, with
        ``motion``, unless that DAO motion holds this very action and its veto window has
        passed unvetoed (the DAO checks both when the execution is recorded)."""
        if motion:
            if self.dao is None:
                raise NotApprovedError("motions are the DAO's: no DAO is connected")
            found = self.dao.state.motions.get(motion)
            if found is None or found.agent != self.operator_did:
                raise NotApprovedError(f"motion {motion} is not this agent's")
            if found.status != "open":
                raise NotApprovedError(f"motion {motion} is {found.status}: {found.why_closed()}")
            self._record(
                "dao.action.executed",
                {"action": action.to_map(), "reason": "veto window passed", "motion": motion},
                now_ms,
            )
            return
        verdict = self.guard(action, now_ms)
        if not isinstance(verdict, Allow):
            raise _settle.not_allowed(action.kind, verdict)
        if self.dao is not None:
            self._record(
                "dao.action.executed", {"action": action.to_map(), "reason": reason}, now_ms
            )

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

    @_retrying
    def register_provider(self, doc: Mapping[str, Any], now_ms: int) -> str:
        """Record a signed ``registration``; returns the provider DID. The bond it declares
        counts only once received (:meth:`receive_bond`). Under a DAO the provider is also
        given the DAO's ``provider`` role (unless the DID is a member or holds a role), in
        the same atomic run: the constitution lets providers file ``dispute`` proposals."""
        payload = {"doc": dict(doc)}
        if self.dao is None:
            self._record("market.provider.registered", payload, now_ms)
            return str(doc["provider"])
        self._precheck("market.provider.registered", payload, now_ms)
        did = str(doc["provider"])
        with self._atomic():
            self._record("market.provider.registered", payload, now_ms)
            st = self.dao.state
            if did not in st.roles and not st.is_member(did):
                self._record("dao.role.granted", {"did": did, "role": "provider"}, now_ms)
        return did

    @_retrying
    def receive_bond(self, provider: str, amount: int, reference: str, now_ms: int) -> Provider:
        """Record the receipt of a payment of ``amount`` towards ``provider``'s declared
        bond, naming the payment's ``reference`` (a bank or ledger transfer id, accepted
        once). Under a DAO the bond escrow (opened on the first receipt) takes the deposit
        in the same atomic run. Only received bond can be pledged to bids."""
        payload = {
            "provider": provider,
            "amount": amount,
            "reference": reference,
            "postings": [[bond_escrow(provider), amount], [bond_liability(provider), -amount]],
        }
        if self.dao is None:
            self._record("market.bond.received", payload, now_ms)
            return self.state.providers[provider]
        self._precheck("market.bond.received", payload, now_ms)
        with self._atomic():
            eid = bond_escrow_id(provider)
            why = f"bond of provider {provider}: payment {reference}"
            if not self.dao.has_escrow(eid):
                open_ = escrow_action("escrow.open", eid, kind="bond", party=provider)
                self._act(open_, why, now_ms)
            self._act(escrow_action("escrow.deposit", eid, amount=amount), why, now_ms)
            self._record("market.bond.received", payload, now_ms)
        return self.state.providers[provider]

    @_retrying
    def set_status(
        self,
        provider: str,
        status: str,
        reason: str,
        now_ms: int,
        *,
        proposal: int = 0,
        proposed_ms: int | None = None,
        motion: int = 0,
    ) -> list[Pending]:
        """Change a provider's status. Suspension and offboarding go through the mandate
        guard (``provider.suspend``/``provider.offboard``) unless a passed proposal is
        cited; offboarding also ends the provider's contracts, settles its bond and raises
        a migration need. Returns what the mandate left pending (a forfeit to vote on).

        ``proposed_ms``: for a market without a DAO, the time the agent proposed a change
        the guard makes optimistic; it is allowed once the veto window has passed since
        then (the agent's ledger holds the proposal, and nobody can veto it here). A
        market under a DAO takes an optimistic change through the agent's DAO ``motion``
        (holding :func:`plaza.market.settle.status_action`) once its window has passed, or
        through a passed proposal."""
        if status in ("suspended", "offboarded") and motion:
            pass  # checked and executed with the change, below
        elif status in ("suspended", "offboarded") and not proposal:
            kind = "provider.suspend" if status == "suspended" else "provider.offboard"
            verdict = self.guard(Action(kind=kind, provider=provider), now_ms)
            if isinstance(verdict, Optimistic) and proposed_ms is not None and self.dao is None:
                if now_ms < proposed_ms + verdict.window_s * 1000:
                    raise NotApprovedError(
                        f"the veto window of {kind} runs until "
                        f"{proposed_ms + verdict.window_s * 1000}"
                    )
                reason = f"{reason} (proposed at {proposed_ms}; veto window passed)"
            elif not isinstance(verdict, Allow):
                raise _settle.not_allowed(kind, verdict)
        if proposal:
            self._require_passed(proposal, now_ms)
            reason = f"{reason} (proposal {proposal})"
        pending: list[Pending] = []
        with self._atomic():
            if motion:
                self._act(_settle.status_action(provider, status), reason, now_ms, motion=motion)
                reason = f"{reason} (motion {motion}: veto window passed)"
            self._status_change(provider, status, reason, now_ms)
            if status == "offboarded":
                p = self.state.providers[provider]
                slash = p.bond * self.state.params.slash_ppm // 1_000_000
                self._offboard(provider, slash, reason, now_ms, pending)
        return pending

    def _status_change(self, provider: str, status: str, reason: str, now_ms: int) -> None:
        self._record(
            "market.provider.status",
            {"provider": provider, "status": status, "reason": reason},
            now_ms,
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
        verdict = self.guard(Action(kind="rfb.create"), now_ms)
        if not isinstance(verdict, Allow):
            raise _settle.not_allowed("rfb.create", verdict)
        self.sync()
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

    @_retrying
    def award(self, rfb_id: str, now_ms: int) -> tuple[AwardPlan, list[Contract]]:
        """Score and allocate the bids of ``rfb_id`` and record the award with its
        breakdown; returns the plan and the contracts it created (state ``awarded``).
        With a DAO, every optimistic contract opens a motion members may veto."""
        plan = self.plan_award(rfb_id, now_ms)
        payload = plan.to_payload()
        self._precheck("market.award.made", payload, now_ms)
        before = set(self.state.contracts)
        with self._atomic():
            self._record("market.award.made", payload, now_ms)
            new = [c for cid, c in self.state.contracts.items() if cid not in before]
            if self.dao is not None:
                rfb = self.state.rfbs[rfb_id]
                for c in new:
                    if c.verdict != "optimistic":
                        continue
                    cost = term_cost(rfb, rfb.bundle_price(c.prices), c.quantity, self.state.params)
                    action = Action(
                        kind="contract.award",
                        params={"contract": c.id, "rfb": rfb_id, "bid": c.bid, "term_cost": cost},
                        provider=c.provider,
                    )
                    reason = f"award {c.id}: {c.quantity} {c.service} accounts to {c.provider}"
                    self._record(
                        "dao.motion.opened", {"action": action.to_map(), "reason": reason}, now_ms
                    )
        return plan, new

    def sign_contract(self, doc: Mapping[str, Any], now_ms: int) -> Contract:
        """Record the provider's signature on a contract's terms."""
        self._record("market.contract.signed", {"doc": dict(doc)}, now_ms)
        return self.state.contracts[str(doc["contract"])]

    @_retrying
    def approve_contract(self, contract_id: str, now_ms: int, *, proposal: int = 0) -> Contract:
        """Sign for the DAO: within the mandate (after the veto window for an optimistic
        award, executing its DAO motion when connected), or citing a passed proposal."""
        self.sync()
        c = self.state.contracts.get(contract_id)
        if c is None:
            raise NotFoundInMarketError(f"no contract {contract_id}")
        if proposal:
            self._require_passed(proposal, now_ms)
            self._record(
                "market.contract.approved",
                {"contract": contract_id, "by": "proposal", "proposal": proposal},
                now_ms,
            )
            return self.state.contracts[contract_id]
        payload = {"contract": contract_id, "by": "mandate"}
        self._precheck("market.contract.approved", payload, now_ms)
        with self._atomic():
            if self.dao is not None and c.verdict == "optimistic":
                motion = self.dao.motion_for(contract_id)
                if motion is None or motion.status != "open":
                    state = "no motion" if motion is None else f"motion {motion.status}"
                    raise NotApprovedError(
                        f"members vetoed or escalated the award of {contract_id} ({state})"
                    )
                self._record(
                    "dao.action.executed",
                    {
                        "action": motion.action.to_map(),
                        "reason": "veto window passed",
                        "motion": motion.id,
                    },
                    now_ms,
                )
            self._record("market.contract.approved", payload, now_ms)
        return self.state.contracts[contract_id]

    def end_contract(self, contract_id: str, reason: str, now_ms: int) -> Contract:
        """End a contract (not before its minimum term, unless its provider was
        offboarded)."""
        self._record("market.contract.ended", {"contract": contract_id, "reason": reason}, now_ms)
        return self.state.contracts[contract_id]

    def release(self, contract_id: str, quantity: int, reason: str, now_ms: int) -> Contract:
        """Give back ``quantity`` of a running contract's accounts once its minimum term
        has run; the rest keeps running (releasing all of them is :meth:`end_contract`)."""
        self._record(
            "market.contract.released",
            {"contract": contract_id, "quantity": quantity, "reason": reason},
            now_ms,
        )
        return self.state.contracts[contract_id]

    def _require_passed(self, proposal: int, now_ms: int) -> None:
        if self.dao is None:
            raise NotApprovedError("no DAO is connected to check the proposal")
        outcome, _ = self.dao.outcome(proposal, now_ms)
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

    # -- disputes ----------------------------------------------------------------------
    def open_dispute(self, doc: Mapping[str, Any], now_ms: int) -> Dispute:
        """Record a provider's signed dispute; with a DAO, file its ``dispute`` proposal."""
        self.sync()
        did = f"d-{len(self.state.disputes) + 1}"
        self._precheck(
            "market.dispute.opened", {"id": did, "doc": dict(doc), "proposal": 0}, now_ms
        )
        proposal = 0
        if self.dao is not None:
            proposal = self.dao.file_dispute(did, doc, self.operator_did, now_ms)
        self._record(
            "market.dispute.opened", {"id": did, "doc": dict(doc), "proposal": proposal}, now_ms
        )
        return self.state.disputes[did]

    def resolve_dispute(
        self, dispute_id: str, now_ms: int, *, outcome: str = "", amount: int | None = None
    ) -> Dispute:
        """Record the outcome of a dispute. With a DAO the outcome is its proposal's
        (passed: upheld, otherwise rejected; ``amount`` defaults to the claim); without
        one the operator's ``outcome`` is recorded."""
        self.sync()
        d = self.state.disputes.get(dispute_id)
        if d is None:
            raise NotFoundInMarketError(f"no dispute {dispute_id}")
        if self.dao is not None:
            result, voted = self.dao.outcome(d.proposal, now_ms)
            if result == "open":
                raise NotApprovedError(f"proposal {d.proposal} on {dispute_id} is still open")
            outcome = "upheld" if result == "passed" else "rejected"
            amount = voted if amount is None else amount
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

    # -- money (see also plaza.market.settle) -------------------------------------------
    @_retrying
    def settle(self, epoch: int, now_ms: int) -> SettlementResult:
        """Invoice every unsettled epoch up to ``epoch``, apply penalties, and pay what
        is owed from escrow (pro rata when short). One atomic run of events."""
        return _settle.settle(self, epoch, now_ms)

    def _offboard(
        self, provider: str, slash: int, reason: str, now_ms: int, pending: list[Pending]
    ) -> Need | None:
        return _settle.offboard(
            self, provider, slash=slash, reason=reason, now_ms=now_ms, pending=pending
        )

    @_retrying
    def fund_escrow(self, amount: int, now_ms: int, memo: str = "", *, motion: int = 0) -> None:
        """Move ``amount`` from the DAO treasury into the market's escrow account, as a
        ``settlement.pay`` spend the mandate must allow (its budget is charged here), or
        that the agent's DAO ``motion`` (holding :func:`plaza.market.settle.funding_action`)
        authorized once its veto window passed."""
        _settle.fund_escrow(self, amount, now_ms, memo, motion)
