"""Settling epochs and moving money: invoices, the epoch close, penalties, offboarding,
payments, escrow funding and bonds.

:class:`Settler` is the market's money component. It receives the
:class:`~plaza.market.recorder.Recorder` that writes the market's events and the
:class:`~plaza.market.authority.Authority` that judges and carries out the agent
actions money needs (see :mod:`plaza.market.invoicing` for the invoices,
:mod:`plaza.market.settlement` for the formulas and :mod:`plaza.market.penalties` for
the ladder). :meth:`Settler.settle` writes one atomic run of events: for every
unsettled epoch up to the one asked, an invoice per contract that ran in it, the
``market.epoch.settled`` close with its failed and clean providers, the status changes
penalties call for (each through the mandate guard; what the guard does not allow is
returned as *pending*), and then the payments of everything owed, pro rata when escrow
is short, with a re-procurement need for the shortfall.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from plaza.dao import Action, Allow
from plaza.market.authority import Authority, Pending, verdict_reason
from plaza.market.dao_port import ESCROW_MARKET, DaoPort, bond_escrow_id, escrow_action
from plaza.market.data import Need
from plaza.market.errors import EpochOpenError
from plaza.market.invoicing import (
    billable,
    epoch_outcome,
    invoice_id,
    invoice_postings,
    make_invoice,
    met_sla,
    outcome_summary,
    outstanding,
)
from plaza.market.journal import (
    FORFEITS,
    MARKET_ESCROW,
    TREASURY,
    bond_escrow,
    bond_liability,
    payable,
)
from plaza.market.penalties import decide
from plaza.market.recorder import Recorder
from plaza.market.settlement import Invoice, pro_rata


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


def funding_action(amount: int) -> Action:
    """The DAO action a funding of the market's escrow is (what a motion must hold)."""
    return Action(
        kind="settlement.pay",
        params={"escrow": ESCROW_MARKET},
        amount=amount,
        category="infrastructure",
    )


def status_action(provider: str, status: str) -> Action:
    """The DAO action suspending or offboarding ``provider`` is."""
    kind = "provider.suspend" if status == "suspended" else "provider.offboard"
    return Action(kind=kind, provider=provider)


class Settler:
    """Settles epochs and moves the market's money; see the module docstring."""

    def __init__(self, core: Recorder, authority: Authority, *, dao: DaoPort | None) -> None:
        self._core = core
        self._authority = authority
        self._dao = dao

    def change_status(self, provider: str, status: str, reason: str, now_ms: int) -> None:
        """Record a provider's status change."""
        self._core.record(
            "market.provider.status",
            {"provider": provider, "status": status, "reason": reason},
            now_ms,
        )

    def raise_need(
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
        """Record a need for the agents (``reprocure`` or ``migration``) and return it."""
        state = self._core.state
        self._core.record(
            "market.need.raised",
            {
                "id": f"n-{len(state.needs) + 1}",
                "kind": kind,
                "service": service,
                "provider": provider,
                "accounts": accounts,
                "contracts": contracts,
                "reason": reason,
            },
            now_ms,
        )
        return self._core.state.needs[-1]

    def settle(self, epoch: int, now_ms: int) -> SettlementResult:
        """Invoice every unsettled epoch up to ``epoch``, apply penalties, and pay what
        is owed from escrow (pro rata when short). One atomic run of events."""
        return self._core.run(lambda: self._settle(epoch, now_ms))

    def _settle(self, epoch: int, now_ms: int) -> SettlementResult:
        result = SettlementResult()
        params = self._core.state.params
        if now_ms < params.epoch_end(epoch):
            raise EpochOpenError(f"epoch {epoch} is not over until {params.epoch_end(epoch)}")
        first = epoch
        while (
            first > 0
            and (first - 1) not in self._core.state.settled_epochs
            and billable(self._core.state, first - 1)
        ):
            first -= 1
        for e in range(first, epoch + 1):
            if e not in self._core.state.settled_epochs:
                self._settle_epoch(e, now_ms, result)
        self._pay(now_ms, result)
        result.events = self._core.recorded
        return result

    def _settle_epoch(self, epoch: int, now_ms: int, result: SettlementResult) -> None:
        st = self._core.state
        for c in billable(st, epoch):
            if invoice_id(c.id, epoch) in st.invoices:
                continue
            inv = make_invoice(st, c, epoch)
            self._core.record(
                "market.invoice.issued",
                {"invoice": inv.to_map(), "postings": invoice_postings(inv)},
                now_ms,
            )
            result.invoices.append(inv)
        failed, clean = epoch_outcome(st, epoch)
        self._core.record(
            "market.epoch.settled",
            {"epoch": epoch, "outcome": outcome_summary(failed, clean)},
            now_ms,
        )
        result.epochs.append(epoch)
        for step in decide(st, epoch, set(failed), set(clean), set(met_sla(st, epoch))):
            if step.status in ("suspended", "offboarded"):
                kind = "provider.suspend" if step.status == "suspended" else "provider.offboard"
                verdict = self._authority.guard(Action(kind=kind, provider=step.provider), now_ms)
                if not isinstance(verdict, Allow):
                    result.pending.append(
                        Pending(kind, step.provider, verdict.verdict, step.reason)
                    )
                    continue
            self.change_status(step.provider, step.status, step.reason, now_ms)
            result.status_changes.append((step.provider, step.status, step.reason))
            if step.status == "offboarded":
                need = self.offboard(
                    step.provider,
                    slash=step.slash,
                    reason=step.reason,
                    now_ms=now_ms,
                    pending=result.pending,
                )
                if need is not None:
                    result.needs.append(need)

    def offboard(
        self, provider: str, *, slash: int, reason: str, now_ms: int, pending: list[Pending]
    ) -> Need | None:
        """End the provider's contracts, settle its bond (forfeit ``slash``, return the
        rest, each as the mandate allows) and raise the migration need."""
        running = sorted(
            (
                c
                for c in self._core.state.contracts.values()
                if c.provider == provider and c.status != "ended"
            ),
            key=lambda c: c.id,
        )
        for c in running:
            self._core.record(
                "market.contract.ended",
                {"contract": c.id, "reason": f"provider offboarded: {reason}"},
                now_ms,
            )
        keep = 0  # a forfeit the mandate leaves to members stays held until they decide
        if slash:
            verdict = self._authority.guard(
                escrow_action("escrow.forfeit", "x", amount=slash), now_ms
            )
            if isinstance(verdict, Allow):
                self.bond_move(
                    provider, slash, forfeit=True, reason=f"bond forfeited: {reason}", now_ms=now_ms
                )
            else:
                pending.append(
                    Pending("escrow.forfeit", provider, verdict.verdict, verdict_reason(verdict))
                )
                keep = slash
        rest = self._core.state.providers[provider].bond - keep
        if rest > 0:
            self.bond_move(
                provider, rest, forfeit=False, reason="bond returned on offboarding", now_ms=now_ms
            )
        if not running:
            return None
        return self.raise_need(
            "migration",
            running[0].service,
            provider,
            accounts=sum(c.held for c in running if not c.standing),
            contracts=[c.id for c in running],
            reason=f"{provider} was offboarded ({reason}); move its accounts",
            now_ms=now_ms,
        )

    def _pay(self, now_ms: int, result: SettlementResult) -> None:
        st = self._core.state
        owed = {i: outstanding(st, i) for i in sorted(st.invoices)}
        owed = {i: v for i, v in owed.items() if v > 0}
        escrow = st.journal.balance(MARKET_ESCROW)
        result.owed, result.escrow_before = sum(owed.values()), escrow
        for iid, amount in pro_rata(owed, escrow).items():
            provider = st.invoices[iid].provider
            release = escrow_action("escrow.release", ESCROW_MARKET, amount=amount)
            why = f"pay {iid} to {provider}"
            if not self._authority.try_act(
                release, why, now_ms, pending=result.pending, subject=iid
            ):
                continue
            self._core.record(
                "market.payment.made",
                {
                    "invoice": iid,
                    "amount": amount,
                    "postings": [[payable(provider), amount], [MARKET_ESCROW, -amount]],
                },
                now_ms,
            )
            result.payments[iid] = amount
        result.paid = sum(result.payments.values())
        result.shortfall = max(0, result.owed - escrow)
        if not result.shortfall:
            return
        by_service: dict[str, set[str]] = {}
        for iid in owed:
            if outstanding(st, iid) > 0:
                c = st.contracts[st.invoices[iid].contract]
                by_service.setdefault(c.service, set()).add(c.id)
        for service, cids in sorted(by_service.items()):
            ids = sorted(cids)
            result.needs.append(
                self.raise_need(
                    "reprocure",
                    service,
                    "",
                    accounts=sum(st.contracts[c].held for c in ids),
                    contracts=ids,
                    reason=f"escrow held {escrow} against {result.owed} owed: paid pro rata, "
                    f"{result.shortfall} short; fund escrow or buy cheaper capacity",
                    now_ms=now_ms,
                )
            )

    def fund_escrow(self, amount: int, now_ms: int, memo: str, motion: int = 0) -> None:
        """See :meth:`Market.fund_escrow`: open the DAO's ``market`` payment escrow once,
        move the amount in as a ``settlement.pay`` spend, and record the funding (one
        atomic run)."""
        self._core.run(lambda: self._fund_escrow(amount, now_ms, memo, motion))

    def _fund_escrow(self, amount: int, now_ms: int, memo: str, motion: int) -> None:
        reason = memo or "fund the market escrow"
        if self._dao is not None and not self._dao.has_escrow(ESCROW_MARKET):
            opening = escrow_action(
                "escrow.open",
                ESCROW_MARKET,
                kind="payment",
                party=self._core.operator_did,
                category="infrastructure",
            )
            self._authority.act(opening, "the market's settlement escrow", now_ms)
        self._authority.act(funding_action(amount), reason, now_ms, motion=motion)
        self._core.record(
            "market.escrow.funded",
            {
                "amount": amount,
                "memo": memo,
                "postings": [[MARKET_ESCROW, amount], [TREASURY, -amount]],
            },
            now_ms,
        )

    def bond_move(
        self, provider: str, amount: int, *, forfeit: bool, reason: str, now_ms: int
    ) -> None:
        """Forfeit (to the DAO) or return ``amount`` of a provider's bond: the DAO escrow
        action and the market event, in the caller's atomic run."""
        eid = bond_escrow_id(provider)
        if forfeit:
            self._authority.act(escrow_action("escrow.forfeit", eid, amount=amount), reason, now_ms)
            postings = [
                [bond_liability(provider), amount],
                [FORFEITS, -amount],
                [TREASURY, amount],
                [bond_escrow(provider), -amount],
            ]
        else:
            self._authority.act(escrow_action("escrow.release", eid, amount=amount), reason, now_ms)
            postings = [[bond_liability(provider), amount], [bond_escrow(provider), -amount]]
        self._core.record(
            "market.bond.slashed" if forfeit else "market.bond.released",
            {"provider": provider, "amount": amount, "reason": reason, "postings": postings},
            now_ms,
        )
