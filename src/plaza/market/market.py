"""The market's commands: the library API the CLI, the HTTP API, the agents and the
simulator call.

:class:`Market` holds a :class:`~plaza.ledger.Ledger` (any store: memory, SQLite,
PostgreSQL), the operator's DID and key (the agent the DAO appointed; it signs the
events), the mandate its actions are judged by, and optionally a DAO port
(:mod:`plaza.market.dao_port`): with one, the market shares the DAO's ledger, reads
the DAO's mandate, and records every money movement as a DAO agent action.

A market is three components wired together here: the
:class:`~plaza.market.recorder.Recorder` (sync, build at the head, check, append, apply;
atomic runs; retries), the :class:`~plaza.market.authority.Authority` (the mandate
guard and the agent actions it allows) and the :class:`~plaza.market.settle.Settler`
(settlement, offboarding, escrow and bonds). Each command builds its events and hands
them to the recorder, which checks them against
:class:`~plaza.market.state.MarketState` (and the DAO's projection when connected)
before anything is written.

Time is an argument (``now_ms``) everywhere: the simulator runs on its own clock.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, cast

from plaza.atproto.crypto import PrivateKey
from plaza.dao import Action, Allow, Mandate, Optimistic
from plaza.dao.mandate import Verdict
from plaza.ledger import Ledger
from plaza.ledger.clock import iso_ms
from plaza.market.authority import Authority, Pending, not_allowed
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
from plaza.market.journal import bond_escrow, bond_liability, payable
from plaza.market.params import MarketParams
from plaza.market.recorder import Recorder
from plaza.market.registry import Provider
from plaza.market.rfb import Rfb
from plaza.market.settle import SettlementResult, Settler, status_action
from plaza.market.state import MarketState

__all__ = ["Market"]

F = TypeVar("F", bound=Callable[..., Any])


def _atomic(fn: F) -> F:
    """Run the command as one atomic run of events (:meth:`Recorder.run`): what it
    records is appended at once, and if it lost the race for the ledger head the whole
    command runs again on the new head, deciding afresh."""

    @functools.wraps(fn)
    def wrapper(self: Market, *args: Any, **kwargs: Any) -> Any:
        return self._core.run(lambda: fn(self, *args, **kwargs))

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
        self.dao = dao
        self._core = Recorder(ledger, operator_did=operator_did, operator_key=operator_key, dao=dao)
        self._authority = Authority(self._core, dao=dao, mandate=mandate)
        self._settler = Settler(self._core, self._authority, dao=dao)

    @property
    def state(self) -> MarketState:
        """The market state, replayed from the ledger."""
        return self._core.state

    @property
    def mandate(self) -> Mandate:
        """The mandate in force: the DAO's when connected, else the one given."""
        return self._authority.mandate

    def sync(self) -> None:
        """Apply the ledger's events this state has not seen yet."""
        self._core.sync()

    def reload(self) -> None:
        """Rebuild the states from the whole ledger."""
        self._core.reload()

    def guard(self, action: Action, now_ms: int) -> Verdict:
        """The mandate guard's verdict on ``action`` now (the DAO's view of spends and
        accounts when connected; the market's own fundings otherwise)."""
        return self._authority.guard(action, now_ms)

    # -- registry ----------------------------------------------------------------------
    def open(self, params: MarketParams, now_ms: int, *, currency: str | None = None) -> None:
        """Open the market with ``params`` (once)."""
        self._core.record(
            "market.opened",
            {
                "operator": self.operator_did,
                "params": params.to_map(),
                "currency": currency or self.mandate.currency,
            },
            now_ms,
        )

    @_atomic
    def register_provider(self, doc: Mapping[str, Any], now_ms: int) -> str:
        """Record a signed ``registration``; returns the provider DID. The bond it declares
        counts only once received (:meth:`receive_bond`). Under a DAO the provider is also
        given the DAO's ``provider`` role (unless the DID is a member or holds a role), in
        the same atomic run: the constitution lets providers file ``dispute`` proposals."""
        self._core.record("market.provider.registered", {"doc": dict(doc)}, now_ms)
        did = str(doc["provider"])
        if self.dao is not None and not self.dao.has_standing(did):
            self._core.record("dao.role.granted", {"did": did, "role": "provider"}, now_ms)
        return did

    @_atomic
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
            self._core.record("market.bond.received", payload, now_ms)
            return self.state.providers[provider]
        self._core.precheck("market.bond.received", payload, now_ms)
        eid = bond_escrow_id(provider)
        why = f"bond of provider {provider}: payment {reference}"
        if not self.dao.has_escrow(eid):
            open_ = escrow_action("escrow.open", eid, kind="bond", party=provider)
            self._authority.act(open_, why, now_ms)
        self._authority.act(escrow_action("escrow.deposit", eid, amount=amount), why, now_ms)
        self._core.record("market.bond.received", payload, now_ms)
        return self.state.providers[provider]

    @_atomic
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
                        f"{iso_ms(proposed_ms + verdict.window_s * 1000)}"
                    )
                reason = f"{reason} (proposed at {proposed_ms}; veto window passed)"
            elif not isinstance(verdict, Allow):
                raise not_allowed(kind, verdict)
        if proposal:
            self._authority.require_passed(proposal, now_ms)
            reason = f"{reason} (proposal {proposal})"
        pending: list[Pending] = []
        if motion:
            self._authority.act(status_action(provider, status), reason, now_ms, motion=motion)
            reason = f"{reason} (motion {motion}: veto window passed)"
        self._settler.change_status(provider, status, reason, now_ms)
        if status == "offboarded":
            p = self.state.providers[provider]
            slash = p.bond * self.state.params.slash_ppm // 1_000_000
            self._settler.offboard(
                provider, slash=slash, reason=reason, now_ms=now_ms, pending=pending
            )
        return pending

    # -- procurement -------------------------------------------------------------------
    def create_rfb(self, spec: Mapping[str, Any], now_ms: int) -> Rfb:
        """Publish a request for bids (``spec`` is the RFB without its ``id``), if the
        mandate allows ``rfb.create``."""
        verdict = self.guard(Action(kind="rfb.create"), now_ms)
        if not isinstance(verdict, Allow):
            raise not_allowed("rfb.create", verdict)
        self.sync()
        rid = f"rfb-{len(self.state.rfbs) + 1}"
        self._core.record("market.rfb.created", {**dict(spec), "id": rid}, now_ms)
        return self.state.rfbs[rid]

    def submit_bid(self, doc: Mapping[str, Any], now_ms: int) -> Bid:
        """Record a signed bid, or raise the reason it is rejected (nothing recorded)."""
        self._core.record("market.bid.submitted", {"doc": dict(doc)}, now_ms)
        return self.state.bids[bid_id(doc)]

    def plan_award(self, rfb_id: str, now_ms: int) -> AwardPlan:
        """What :meth:`award` would do now (pure)."""
        self.sync()
        if rfb_id not in self.state.rfbs:
            raise NotFoundInMarketError(f"no request for bids {rfb_id}")
        return plan_award(self.state, rfb_id, self.mandate, now_ms)

    @_atomic
    def award(self, rfb_id: str, now_ms: int) -> tuple[AwardPlan, list[Contract]]:
        """Score and allocate the bids of ``rfb_id`` and record the award with its
        breakdown; returns the plan and the contracts it created (state ``awarded``).
        With a DAO, every optimistic contract opens a motion members may veto."""
        plan = self.plan_award(rfb_id, now_ms)
        before = set(self.state.contracts)
        self._core.record("market.award.made", plan.to_payload(), now_ms)
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
                self._core.record(
                    "dao.motion.opened", {"action": action.to_map(), "reason": reason}, now_ms
                )
        return plan, new

    def sign_contract(self, doc: Mapping[str, Any], now_ms: int) -> Contract:
        """Record the provider's signature on a contract's terms."""
        self._core.record("market.contract.signed", {"doc": dict(doc)}, now_ms)
        return self.state.contracts[str(doc["contract"])]

    @_atomic
    def approve_contract(self, contract_id: str, now_ms: int, *, proposal: int = 0) -> Contract:
        """Sign for the DAO: within the mandate (after the veto window for an optimistic
        award, executing its DAO motion when connected), or citing a passed proposal."""
        self.sync()
        c = self.state.contracts.get(contract_id)
        if c is None:
            raise NotFoundInMarketError(f"no contract {contract_id}")
        if proposal:
            self._authority.require_passed(proposal, now_ms)
            self._core.record(
                "market.contract.approved",
                {"contract": contract_id, "by": "proposal", "proposal": proposal},
                now_ms,
            )
            return self.state.contracts[contract_id]
        payload = {"contract": contract_id, "by": "mandate"}
        self._core.precheck("market.contract.approved", payload, now_ms)
        if self.dao is not None and c.verdict == "optimistic":
            motion = self.dao.motion_for(contract_id)
            if motion is None or motion.status != "open":
                state = "no motion" if motion is None else f"motion {motion.status}"
                raise NotApprovedError(
                    f"members vetoed or escalated the award of {contract_id} ({state})"
                )
            self._core.record(
                "dao.action.executed",
                {
                    "action": motion.action.to_map(),
                    "reason": "veto window passed",
                    "motion": motion.id,
                },
                now_ms,
            )
        self._core.record("market.contract.approved", payload, now_ms)
        return self.state.contracts[contract_id]

    def end_contract(self, contract_id: str, reason: str, now_ms: int) -> Contract:
        """End a contract (not before its minimum term, unless its provider was
        offboarded)."""
        self._core.record(
            "market.contract.ended", {"contract": contract_id, "reason": reason}, now_ms
        )
        return self.state.contracts[contract_id]

    def release(self, contract_id: str, quantity: int, reason: str, now_ms: int) -> Contract:
        """Give back ``quantity`` of a running contract's accounts once its minimum term
        has run; the rest keeps running (releasing all of them is :meth:`end_contract`)."""
        self._core.record(
            "market.contract.released",
            {"contract": contract_id, "quantity": quantity, "reason": reason},
            now_ms,
        )
        return self.state.contracts[contract_id]

    # -- evidence ----------------------------------------------------------------------
    def report_usage(self, doc: Mapping[str, Any], now_ms: int) -> None:
        """Record a provider's signed usage report for a contract and epoch."""
        self._core.record("market.usage.reported", {"doc": dict(doc)}, now_ms)

    def report_observation(self, doc: Mapping[str, Any], now_ms: int) -> None:
        """Record an independent observer's signed usage observation."""
        self._core.record("market.observation.reported", {"doc": dict(doc)}, now_ms)

    def report_probes(self, doc: Mapping[str, Any], now_ms: int) -> None:
        """Record a prober's signed samples."""
        self._core.record("market.probes.reported", {"doc": dict(doc)}, now_ms)

    # -- disputes ----------------------------------------------------------------------
    def open_dispute(self, doc: Mapping[str, Any], now_ms: int) -> Dispute:
        """Record a provider's signed dispute; with a DAO, file its ``dispute`` proposal."""
        self.sync()
        did = f"d-{len(self.state.disputes) + 1}"
        self._core.precheck(
            "market.dispute.opened", {"id": did, "doc": dict(doc), "proposal": 0}, now_ms
        )
        proposal = 0
        if self.dao is not None:
            proposal = self.dao.file_dispute(did, doc, self.operator_did, now_ms)
        self._core.record(
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
        self._core.record(
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

    # -- money (plaza.market.settle) ---------------------------------------------------
    def settle(self, epoch: int, now_ms: int) -> SettlementResult:
        """Invoice every unsettled epoch up to ``epoch``, apply penalties, and pay what
        is owed from escrow (pro rata when short). One atomic run of events."""
        return self._settler.settle(epoch, now_ms)

    def fund_escrow(self, amount: int, now_ms: int, memo: str = "", *, motion: int = 0) -> None:
        """Move ``amount`` from the DAO treasury into the market's escrow account, as a
        ``settlement.pay`` spend the mandate must allow (its budget is charged here), or
        that the agent's DAO ``motion`` (holding :func:`plaza.market.settle.funding_action`)
        authorized once its veto window passed."""
        self._settler.fund_escrow(amount, now_ms, memo, motion)
