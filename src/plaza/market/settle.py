"""Money commands: funding escrow, bonds, and settling epochs (invoices, the epoch
close, penalties, offboarding, payments).

The functions here take the :class:`~plaza.market.market.Market` they act for, which
delegates to them (see :mod:`plaza.market.settlement` for the formulas and
:mod:`plaza.market.penalties` for the ladder). :func:`settle` writes one atomic run of
events: for every unsettled epoch up to the one asked, an invoice per
contract that ran in it, the ``market.epoch.settled`` close with its failed and clean
providers, the status changes penalties call for (each through the mandate guard;
what the guard does not allow is returned as *pending*), and then the payments of
everything owed, pro rata when escrow is short, with a re-procurement need for the
shortfall.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from plaza.dao import Action, Allow, Deny, NeedsVote
from plaza.market.dao_port import ESCROW_MARKET, bond_escrow_id, escrow_action
from plaza.market.errors import EpochOpenError, MandateDeniedError, NotApprovedError
from plaza.market.journal import (
    FORFEITS,
    MARKET_ESCROW,
    TREASURY,
    bond_escrow,
    bond_liability,
    payable,
)
from plaza.market.penalties import decide
from plaza.market.settlement import Invoice, pro_rata
from plaza.market.state import Need
from plaza.market.state_money import (
    billable,
    epoch_outcome,
    invoice_id,
    invoice_postings,
    make_invoice,
    outcome_summary,
    outstanding,
)

if TYPE_CHECKING:
    from plaza.market.market import Market


@dataclass(frozen=True, slots=True)
class Pending:
    """An action the mandate did not let the agent take on its own."""

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


def try_act(
    m: Market, action: Action, reason: str, now_ms: int, *, pending: list[Pending], subject: str
) -> bool:
    """Carry out ``action`` if the guard allows it now; else note it as pending."""
    verdict = m.guard(action, now_ms)
    if not isinstance(verdict, Allow):
        pending.append(Pending(action.kind, subject, verdict.verdict, verdict_reason(verdict)))
        return False
    m._act(action, reason, now_ms)
    return True


def settle(m: Market, epoch: int, now_ms: int) -> SettlementResult:
    """Invoice every unsettled epoch up to ``epoch``, apply penalties, and pay what
    is owed from escrow (pro rata when short). One atomic run of events."""
    result = SettlementResult()
    m.sync()
    params = m.state.params
    if now_ms < params.epoch_end(epoch):
        raise EpochOpenError(f"epoch {epoch} is not over until {params.epoch_end(epoch)}")
    with m._atomic() as events:
        first = epoch
        while (
            first > 0 and (first - 1) not in m.state.settled_epochs and billable(m.state, first - 1)
        ):
            first -= 1
        for e in range(first, epoch + 1):
            if e not in m.state.settled_epochs:
                _settle_epoch(m, e, now_ms, result)
        _pay(m, now_ms, result)
        result.events = len(events)
    return result


def _settle_epoch(m: Market, epoch: int, now_ms: int, result: SettlementResult) -> None:
    st = m.state
    for c in billable(st, epoch):
        if invoice_id(c.id, epoch) in st.invoices:
            continue
        inv = make_invoice(st, c, epoch)
        m._record(
            "market.invoice.issued",
            {"invoice": inv.to_map(), "postings": invoice_postings(inv)},
            now_ms,
        )
        result.invoices.append(inv)
    failed, clean = epoch_outcome(st, epoch)
    m._record(
        "market.epoch.settled",
        {"epoch": epoch, "outcome": outcome_summary(failed, clean)},
        now_ms,
    )
    result.epochs.append(epoch)
    for step in decide(st, epoch, set(failed), set(clean)):
        if step.status in ("suspended", "offboarded"):
            kind = "provider.suspend" if step.status == "suspended" else "provider.offboard"
            verdict = m.guard(Action(kind=kind, provider=step.provider), now_ms)
            if not isinstance(verdict, Allow):
                result.pending.append(Pending(kind, step.provider, verdict.verdict, step.reason))
                continue
        m._status_change(step.provider, step.status, step.reason, now_ms)
        result.status_changes.append((step.provider, step.status, step.reason))
        if step.status == "offboarded":
            need = offboard(
                m,
                step.provider,
                slash=step.slash,
                reason=step.reason,
                now_ms=now_ms,
                pending=result.pending,
            )
            if need is not None:
                result.needs.append(need)


def offboard(
    m: Market, provider: str, *, slash: int, reason: str, now_ms: int, pending: list[Pending]
) -> Need | None:
    """End the provider's contracts, settle its bond (forfeit ``slash``, return the
    rest, each as the mandate allows) and raise the migration need."""
    running = sorted(
        (c for c in m.state.contracts.values() if c.provider == provider and c.status != "ended"),
        key=lambda c: c.id,
    )
    for c in running:
        m._record(
            "market.contract.ended",
            {"contract": c.id, "reason": f"provider offboarded: {reason}"},
            now_ms,
        )
    keep = 0  # a forfeit the mandate leaves to members stays held until they decide
    if slash:
        verdict = m.guard(escrow_action("escrow.forfeit", "x", amount=slash), now_ms)
        if isinstance(verdict, Allow):
            bond_move(
                m, provider, slash, forfeit=True, reason=f"bond forfeited: {reason}", now_ms=now_ms
            )
        else:
            pending.append(
                Pending("escrow.forfeit", provider, verdict.verdict, verdict_reason(verdict))
            )
            keep = slash
    rest = m.state.providers[provider].bond - keep
    if rest > 0:
        bond_move(
            m, provider, rest, forfeit=False, reason="bond returned on offboarding", now_ms=now_ms
        )
    if not running:
        return None
    return m._need(
        "migration",
        running[0].service,
        provider,
        accounts=sum(c.held for c in running if not c.standing),
        contracts=[c.id for c in running],
        reason=f"{provider} was offboarded ({reason}); move its accounts",
        now_ms=now_ms,
    )


def _pay(m: Market, now_ms: int, result: SettlementResult) -> None:
    st = m.state
    owed = {i: outstanding(st, i) for i in sorted(st.invoices)}
    owed = {i: v for i, v in owed.items() if v > 0}
    escrow = st.journal.balance(MARKET_ESCROW)
    result.owed, result.escrow_before = sum(owed.values()), escrow
    for iid, amount in pro_rata(owed, escrow).items():
        provider = st.invoices[iid].provider
        release = escrow_action("escrow.release", ESCROW_MARKET, amount=amount)
        why = f"pay {iid} to {provider}"
        if not try_act(m, release, why, now_ms, pending=result.pending, subject=iid):
            continue
        m._record(
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
            m._need(
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


def fund_escrow(m: Market, amount: int, now_ms: int, memo: str, motion: int = 0) -> None:
    """See :meth:`Market.fund_escrow`: open the DAO's ``market`` payment escrow once,
    move the amount in as a ``settlement.pay`` spend, and record the funding."""
    reason = memo or "fund the market escrow"
    with m._atomic():
        if m.dao is not None and not m.dao.has_escrow(ESCROW_MARKET):
            opening = escrow_action(
                "escrow.open",
                ESCROW_MARKET,
                kind="payment",
                party=m.operator_did,
                category="infrastructure",
            )
            m._act(opening, "the market's settlement escrow", now_ms)
        m._act(funding_action(amount), reason, now_ms, motion=motion)
        m._record(
            "market.escrow.funded",
            {
                "amount": amount,
                "memo": memo,
                "postings": [[MARKET_ESCROW, amount], [TREASURY, -amount]],
            },
            now_ms,
        )


def bond_move(
    m: Market, provider: str, amount: int, *, forfeit: bool, reason: str, now_ms: int
) -> None:
    """Forfeit (to the DAO) or return ``amount`` of a provider's bond: the DAO escrow
    action and the market event, in the caller's atomic run."""
    eid = bond_escrow_id(provider)
    if forfeit:
        m._act(escrow_action("escrow.forfeit", eid, amount=amount), reason, now_ms)
        postings = [
            [bond_liability(provider), amount],
            [FORFEITS, -amount],
            [TREASURY, amount],
            [bond_escrow(provider), -amount],
        ]
    else:
        m._act(escrow_action("escrow.release", eid, amount=amount), reason, now_ms)
        postings = [[bond_liability(provider), amount], [bond_escrow(provider), -amount]]
    m._record(
        "market.bond.slashed" if forfeit else "market.bond.released",
        {"provider": provider, "amount": amount, "reason": reason, "postings": postings},
        now_ms,
    )


def verdict_reason(verdict: Any) -> str:
    if isinstance(verdict, Deny):
        return f"{verdict.code}: {verdict.reason}"
    if isinstance(verdict, NeedsVote):
        return verdict.reason
    return f"{verdict.verdict} (window {getattr(verdict, 'window_s', 0)} s)"


def not_allowed(kind: str, verdict: Any) -> MandateDeniedError | NotApprovedError:
    if isinstance(verdict, Deny):
        return MandateDeniedError(f"the mandate denies {kind}: {verdict.reason}")
    return NotApprovedError(
        f"the mandate does not let the agent {kind} alone: {verdict_reason(verdict)}"
    )
