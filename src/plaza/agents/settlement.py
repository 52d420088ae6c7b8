"""Settlement: settle the market's ended epochs, keep its escrow funded, and carry out the
penalties the market leaves to the agents.

Theory of operation. Like every reconciler this one is level-based: :func:`observe`
reads the market's state afresh each time and :func:`decide` compares it with the
rules, so a step that failed (a denied funding, a proposal still in its veto window) is
simply seen again next time. What it looks at:

* **due epochs** — epochs that ended at least ``evidence_grace_s`` ago (providers and
  probers have had that long to file their signed usage and probe samples) and are not
  settled yet;
* **owed** — what settling them would owe: every invoice the evidence supports
  (recomputed exactly as the market will, :func:`plaza.market.invoicing.make_invoice`)
  plus every unpaid balance, against the **escrow** balance;
* **penalties** — providers whose run of failed epochs has reached the market's
  ``suspend_after`` or ``offboard_after`` but whose status has not followed, because the
  mandate did not let the market do it alone (the settlement left it pending);
* **needs** — open re-procurement needs (escrow ran short: fund it) and migration needs
  (a provider was offboarded: the migration reconciler drains it, reading the same
  market state).

:func:`decide` then emits, in order: ``settlement.pay`` to top escrow up to what is owed
(plus ``buffer_ppm``), so that settling pays every invoice in full; one
``settlement.settle`` for the latest due epoch (the market settles every earlier
unsettled epoch in the same run); and ``provider.suspend`` / ``provider.offboard`` for
each pending penalty, stamped with the time it was first proposed so that the mandate's
veto window can be honoured. :class:`SettlementExecutor` carries them out against a
:class:`~plaza.market.Market`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from plaza.agents.types import Action, MandateLimits, Reason
from plaza.dao.money import Currency, default_currency
from plaza.errors import InvalidInputError
from plaza.market import Market, MarketState
from plaza.market.invoicing import billable, invoice_id, make_invoice, outstanding
from plaza.market.registry import BIDDABLE


@dataclass(frozen=True)
class Penalty:
    """A status the market's penalty ladder calls for and the provider does not have."""

    provider: str
    status: str  # "suspended" | "offboarded"
    failed_epochs: int


@dataclass(frozen=True)
class SettlementObserved:
    """The market as settlement sees it at ``now_ms`` (amounts in minor units)."""

    now_ms: int
    due_epochs: tuple[int, ...]
    owed: int
    escrow: int
    penalties: tuple[Penalty, ...] = ()
    reprocure_needs: tuple[str, ...] = ()
    migration_needs: tuple[str, ...] = ()


@dataclass(frozen=True)
class SettlementDesired:
    """How long evidence may take to arrive after an epoch ends, and the escrow margin."""

    evidence_grace_s: int = 0
    buffer_ppm: int = 0


def observe(state: MarketState, now_ms: int, desired: SettlementDesired) -> SettlementObserved:
    """Read what :func:`decide` needs from a market state (pure)."""
    params = state.params
    current = params.epoch_of(now_ms - desired.evidence_grace_s * 1000)
    # An epoch is due when it ended before (now - grace); it must have something to bill.
    # Settling an epoch settles every earlier one with something to bill, so only epochs
    # after the last settled one can be due.
    due: list[int] = []
    if state.settled_epochs:
        start = max(state.settled_epochs) + 1
    else:
        first = min((c.start_ms for c in state.contracts.values()), default=now_ms)
        start = max(0, params.epoch_of(first))
    for e in range(start, current):
        if billable(state, e):
            due.append(e)
    owed = sum(outstanding(state, i) for i in state.invoices)
    for e in due:
        for c in billable(state, e):
            if invoice_id(c.id, e) not in state.invoices:
                owed += make_invoice(state, c, e).amount
    penalties: list[Penalty] = []
    for did in sorted(state.providers):
        p = state.providers[did]
        if p.status != "offboarded" and p.failed_streak >= params.offboard_after:
            penalties.append(Penalty(did, "offboarded", p.failed_streak))
        elif p.status in BIDDABLE and p.failed_streak >= params.suspend_after:
            penalties.append(Penalty(did, "suspended", p.failed_streak))
    handled = {n.provider for n in state.needs if n.kind == "migration"}
    return SettlementObserved(
        now_ms=now_ms,
        due_epochs=tuple(due),
        owed=owed,
        escrow=state.journal.balance("Assets:Escrow:Market"),
        penalties=tuple(penalties),
        reprocure_needs=tuple(n.id for n in state.needs if n.kind == "reprocure"),
        migration_needs=tuple(sorted(handled)),
    )


def decide(
    observed: SettlementObserved, desired: SettlementDesired, mandate: MandateLimits
) -> list[Action]:
    """Fund, settle and penalise (see the module docstring). Pure."""
    if observed.owed < 0 or observed.escrow < 0:
        raise InvalidInputError("settlement: owed and escrow cannot be negative")
    inputs: dict[str, Any] = {
        "now_ms": observed.now_ms,
        "due": list(observed.due_epochs),
        "owed": observed.owed,
        "escrow": observed.escrow,
        "penalties": [(p.provider, p.status, p.failed_epochs) for p in observed.penalties],
        "needs": list(observed.reprocure_needs),
        "migration_needs": list(observed.migration_needs),
    }
    actions: list[Action] = []
    money = mandate.currency
    short = observed.owed - observed.escrow
    if short > 0 and (observed.due_epochs or observed.reprocure_needs):
        top_up = short + short * desired.buffer_ppm // 1_000_000
        why = (
            f"settling epochs {_span(observed.due_epochs)} will owe "
            if observed.due_epochs
            else "unpaid invoices (escrow ran short) owe "
        )
        reason = Reason.of(
            "settlement.fund-escrow",
            f"{why}{money.format(observed.owed)} and escrow holds "
            f"{money.format(observed.escrow)}: move {money.format(top_up)} from the treasury "
            "into escrow so every invoice is paid in full.",
            inputs,
            owed=observed.owed,
            escrow=observed.escrow,
            amount=top_up,
        )
        actions.append(
            Action.make(
                "settlement.pay",
                reason,
                escrow="market",
                amount=top_up,
                cost=money.to_units(top_up),
            )
        )
    if observed.due_epochs:
        last = observed.due_epochs[-1]
        reason = Reason.of(
            "settlement.settle-ended-epochs",
            f"Epochs {_span(observed.due_epochs)} have ended and their evidence is in: "
            f"invoice every contract that ran, apply penalties, pay from escrow.",
            inputs,
            epochs=len(observed.due_epochs),
            through=last,
            owed=observed.owed,
        )
        actions.append(
            Action.make("settlement.settle", reason, epoch=last, epochs=observed.due_epochs)
        )
    for p in observed.penalties:
        kind = "provider.suspend" if p.status == "suspended" else "provider.offboard"
        reason = Reason.of(
            f"settlement.{'suspend' if p.status == 'suspended' else 'offboard'}-after-failures",
            f"{p.provider} failed its SLA {p.failed_epochs} epochs in a row; the market's "
            f"penalty ladder {'suspends' if p.status == 'suspended' else 'offboards'} it, and "
            "the mandate decides whether that needs members.",
            inputs,
            failed_epochs=p.failed_epochs,
        )
        actions.append(
            Action.make(
                kind,
                reason,
                provider=p.provider,
                status=p.status,
                proposed_ms=observed.now_ms,
            )
        )
    return actions


def _span(epochs: tuple[int, ...]) -> str:
    if not epochs:
        return "none"
    return str(epochs[0]) if len(epochs) == 1 else f"{epochs[0]}..{epochs[-1]}"


@dataclass(frozen=True)
class Done:
    """What executing one action did (``detail`` goes to the ledger)."""

    detail: str
    data: dict[str, Any] = field(default_factory=dict)


class SettlementExecutor:
    """Carries out settlement actions against a :class:`~plaza.market.Market`.

    ``clock`` gives the time (ms) of the action. ``on_settled`` (optional) receives
    every :class:`~plaza.market.SettlementResult`. ``currency`` is the market's (the
    DAO's constitution's; by default the shipped constitution's), for the details. An
    action carrying ``motion`` or ``proposal`` (what members let through, see
    :mod:`plaza.agents.runner`) is carried out on that authority.
    """

    kinds = frozenset(
        {"settlement.pay", "settlement.settle", "provider.suspend", "provider.offboard"}
    )

    def __init__(
        self,
        market: Market,
        clock: Callable[[], int],
        on_settled: Callable[[Any], None] | None = None,
        currency: Currency | None = None,
    ) -> None:
        self.market = market
        self.clock = clock
        self.on_settled = on_settled
        self.currency = currency or default_currency()

    def execute(self, action: Action) -> Done:
        now = self.clock()
        money = self.currency
        if action.kind == "settlement.pay":
            amount = int(action["amount"])
            motion = int(action.get("motion", 0))
            self.market.fund_escrow(amount, now, action.reason.text[:500], motion=motion)
            return Done(f"escrow funded with {money.format(amount)}", {"amount": amount})
        if action.kind == "settlement.settle":
            result = self.market.settle(int(action["epoch"]), now)
            if self.on_settled is not None:
                self.on_settled(result)
            detail = (
                f"settled epochs {_span(tuple(result.epochs))}: {len(result.invoices)} invoices, "
                f"paid {money.format(result.paid)} of {money.format(result.owed)} owed"
            )
            if result.shortfall:
                detail += f", {money.format(result.shortfall)} short"
            if result.status_changes:
                detail += f", {len(result.status_changes)} status changes"
            if result.pending:
                detail += f", {len(result.pending)} left to the mandate"
            return Done(detail, {"result": result})
        if action.kind in ("provider.suspend", "provider.offboard"):
            did, status = str(action["provider"]), str(action["status"])
            pending = self.market.set_status(
                did,
                status,
                action.reason.text[:900],
                now,
                proposed_ms=int(action["proposed_ms"]),
                motion=int(action.get("motion", 0)),
                proposal=int(action.get("proposal", 0)),
            )
            extra = f" ({len(pending)} left to the mandate)" if pending else ""
            return Done(f"{did} is {status}{extra}", {"pending": pending})
        raise InvalidInputError(f"the settlement executor cannot execute {action.kind!r}")
