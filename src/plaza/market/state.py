"""The market state: a projection of the ``market.*`` events of a ledger.

Theory of operation. Every market fact is a ledger event written by the market's
operator (the agent the DAO appointed, named by ``market.opened``); documents that
providers, probers and observers sign travel inside those events and are verified
again on every replay, so the operator can relay what others signed but cannot forge
it. Events of other packages (``dao.*``) are ignored.

Each market event type has one row in :data:`HANDLERS` (the ledger's
:class:`~plaza.ledger.handlers.HandlerTable`): the pydantic model of its payload
(:mod:`plaza.market.payloads`) and its handler. Applying an event

1. checks that the market is open and the author is its operator,
2. validates the payload against the row's model (a malformed payload raises
   :class:`~plaza.market.errors.MarketInputError`),
3. calls the handler with the state, the event and the typed payload; the handler
   checks the event against the state — raising a
   :class:`~plaza.market.errors.MarketRejectedError` (an ``EventRejectedError``) or a
   :class:`~plaza.market.errors.MarketInputError` — and returns a *mutation*,
4. runs the mutation, which is the only step that changes anything.

:meth:`MarketState.check` stops after step 3, so a rejected event changes nothing.
Invoices are recomputed from the evidence on replay and must match, so a ledger can
only pay what the contract, the verified usage and the probe quorum support.
"""

from __future__ import annotations

from plaza.ledger.event import Event
from plaza.ledger.handlers import HandlerTable, Mutation, On, unchanged
from plaza.market import payloads as pl
from plaza.market import state_evidence as evidence
from plaza.market import state_money as money
from plaza.market import state_registry as registry
from plaza.market.data import MarketData, Need
from plaza.market.errors import MarketInputError, MarketRejectedError, NotOperatorError

__all__ = ["HANDLERS", "MarketState", "Need"]

HANDLERS: HandlerTable[MarketData] = HandlerTable(
    "market.",
    {
        # opening, the registry and procurement
        "market.opened": On(pl.Opened, registry.opened),
        "market.provider.registered": On(pl.Doc, registry.registered),
        "market.provider.status": On(pl.ProviderStatus, registry.status),
        "market.rfb.created": On(pl.RfbCreated, registry.rfb_created),
        "market.bid.submitted": On(pl.Doc, registry.bid_submitted),
        "market.award.made": On(pl.AwardMade, registry.award_made),
        # contracts and evidence
        "market.contract.signed": On(pl.Doc, evidence.signed),
        "market.contract.approved": On(pl.ContractApproved, evidence.approved),
        "market.contract.ended": On(pl.ContractEnded, evidence.ended),
        "market.contract.released": On(pl.ContractReleased, evidence.released),
        "market.usage.reported": On(pl.Doc, evidence.usage),
        "market.observation.reported": On(pl.Doc, evidence.observation),
        "market.probes.reported": On(pl.Doc, evidence.probes),
        # money
        "market.invoice.issued": On(pl.InvoiceIssued, money.invoice_issued),
        "market.epoch.settled": On(pl.EpochSettled, money.epoch_settled),
        "market.payment.made": On(pl.PaymentMade, money.payment_made),
        "market.escrow.funded": On(pl.EscrowFunded, money.escrow_funded),
        "market.bond.received": On(pl.BondReceived, money.bond_received),
        "market.bond.slashed": On(pl.BondMoved, money.bond_moved),
        "market.bond.released": On(pl.BondMoved, money.bond_moved),
        "market.need.raised": On(pl.NeedRaised, money.need_raised),
        "market.dispute.opened": On(pl.DisputeOpened, money.dispute_opened),
        "market.dispute.resolved": On(pl.DisputeResolved, money.dispute_resolved),
    },
    unknown=MarketRejectedError,
    invalid=MarketInputError,
)
"""Every market event type: its payload model and its handler."""


class MarketState(MarketData):
    """Everything the market knows, derived by replaying its events (see the module
    docstring)."""

    def check(self, event: Event) -> None:
        """Raise unless ``event`` may be applied now; change nothing."""
        self.prepare(event)

    def apply(self, event: Event) -> None:
        """Check, then apply ``event`` (non-market events are only counted)."""
        self.prepare(event)()

    def prepare(self, event: Event) -> Mutation:
        """Check ``event`` and return the function that applies it (the check's work is
        not repeated). Nothing changes until the returned function is called."""
        commit = self._prepare(event)

        def done() -> None:
            commit()
            self.last_seq = event.seq
            if event.type != "market.invoice.issued":
                self.evidence_gen += 1

        return done

    def _prepare(self, event: Event) -> Mutation:
        if not event.type.startswith("market."):
            return unchanged
        if event.type not in HANDLERS.rows:
            raise MarketRejectedError(f"unknown market event type {event.type}")
        if event.type != "market.opened":
            if not self.is_open:
                raise MarketRejectedError("the market is not open yet (no market.opened event)")
            if event.author_did != self.operator:
                raise NotOperatorError(
                    f"{event.type} must be written by the operator {self.operator}, "
                    f"not {event.author_did}"
                )
        return HANDLERS.prepare(self, event)
