"""The money handlers: invoices, the epoch close, payments, escrow funding, bonds,
needs and disputes. Each checks its event against :class:`~plaza.market.data.MarketData`
(the numbers come from :mod:`plaza.market.invoicing`) and returns the mutation that
applies it; see :mod:`plaza.market.state` for the table and the theory of operation."""

from __future__ import annotations

from dataclasses import replace

from plaza.ledger.event import Event
from plaza.ledger.handlers import Mutation, unchanged
from plaza.market import payloads as pl
from plaza.market.data import MarketData, Need
from plaza.market.disputes import Dispute, parse_dispute
from plaza.market.errors import (
    BadSignatureError,
    ClosedError,
    EpochOpenError,
    ExpiredError,
    MarketInputError,
    MarketRejectedError,
    NotFoundInMarketError,
    ReplayError,
    UnknownProviderError,
)
from plaza.market.invoicing import (
    billable,
    epoch_outcome,
    invoice_id,
    invoice_postings,
    make_invoice,
    met_sla,
    outcome_summary,
    outstanding,
    window_span,
)
from plaza.market.journal import (
    EXPENSES,
    FORFEITS,
    MARKET_ESCROW,
    TREASURY,
    bond_escrow,
    bond_liability,
    payable,
)
from plaza.market.signed import verify_doc


def invoice_issued(state: MarketData, ev: Event, p: pl.InvoiceIssued) -> Mutation:
    cid, epoch = p.invoice.contract, p.invoice.epoch
    c = state.contracts.get(cid)
    if c is None:
        raise NotFoundInMarketError(f"no contract {cid}")
    if epoch in state.settled_epochs:
        raise ClosedError(f"epoch {epoch} is already settled")
    if ev.time < state.params.epoch_end(epoch):
        raise EpochOpenError(f"epoch {epoch} is not over until {state.params.epoch_end(epoch)}")
    iid = invoice_id(cid, epoch)
    if iid in state.invoices:
        raise ReplayError(f"{iid} was already issued")
    lo, hi = window_span(state, c, epoch)
    if hi <= lo:
        raise ClosedError(f"{cid} did not run in epoch {epoch}")
    inv = make_invoice(state, c, epoch)
    if inv.to_map() != ev.payload["invoice"]:
        raise MarketRejectedError(
            f"{iid} does not match what the evidence supports (amount {inv.amount})",
            code="InvoiceMismatch",
        )
    want = invoice_postings(inv)
    if p.postings != want:
        raise MarketInputError(f"{iid} postings must be {want}")
    post = state.post(ev, inv.provider, f"invoice {iid}", want) if want else unchanged

    def commit() -> None:
        post()
        state.invoices[iid] = inv
        state.invoice_time[iid] = ev.time

    return commit


def epoch_settled(state: MarketData, ev: Event, p: pl.EpochSettled) -> Mutation:
    epoch = p.epoch
    if epoch in state.settled_epochs:
        raise ReplayError(f"epoch {epoch} is already settled")
    if ev.time < state.params.epoch_end(epoch):
        raise EpochOpenError(f"epoch {epoch} is not over yet")
    if epoch > 0 and (epoch - 1) not in state.settled_epochs and billable(state, epoch - 1):
        raise EpochOpenError(f"settle epoch {epoch - 1} first")
    missing = [
        c.id for c in billable(state, epoch) if invoice_id(c.id, epoch) not in state.invoices
    ]
    if missing:
        raise EpochOpenError(f"epoch {epoch} still lacks invoices for {', '.join(missing[:5])}")
    failed, clean = epoch_outcome(state, epoch)
    if p.outcome != outcome_summary(failed, clean):
        raise MarketInputError(
            f"epoch {epoch} closes with {len(failed)} failed and {len(clean)} clean "
            f"providers: {outcome_summary(failed, clean)}"
        )
    invs = [state.invoices[invoice_id(c.id, epoch)] for c in billable(state, epoch)]
    met = met_sla(state, epoch)

    def commit() -> None:
        state.settled_epochs.add(epoch)
        for inv in invs:
            up, judged, _ = state.history_of(inv.provider)
            last = state.history_of(inv.provider)[2]
            p95 = inv.latency_p95_ms if inv.latency_p95_ms is not None else last
            state.history[inv.provider] = (
                up + inv.judged - inv.down,
                judged + inv.judged,
                p95,
            )
        for did in failed:
            pr = state.providers[did]
            state.providers[did] = replace(pr, failed_streak=pr.failed_streak + 1)
        for did in clean:
            state.providers[did] = replace(state.providers[did], failed_streak=0)
        for did in met:
            pr = state.providers[did]
            state.providers[did] = replace(pr, met_epochs=pr.met_epochs + 1)

    return commit


def payment_made(state: MarketData, ev: Event, p: pl.PaymentMade) -> Mutation:
    iid, amount = p.invoice, p.amount
    if iid not in state.invoices:
        raise NotFoundInMarketError(f"no invoice {iid}")
    owed = outstanding(state, iid)
    if amount > owed:
        raise MarketInputError(f"{iid} has {owed} outstanding, not {amount}")
    prov = state.invoices[iid].provider
    want = [[payable(prov), amount], [MARKET_ESCROW, -amount]]
    if p.postings != want:
        raise MarketInputError(f"payment postings must be {want}")
    post = state.post(ev, prov, f"payment of {iid}", want)

    def commit() -> None:
        post()
        state.invoice_paid[iid] = state.invoice_paid.get(iid, 0) + amount

    return commit


def escrow_funded(state: MarketData, ev: Event, p: pl.EscrowFunded) -> Mutation:
    amount, memo = p.amount, p.memo
    want = [[MARKET_ESCROW, amount], [TREASURY, -amount]]
    if p.postings != want:
        raise MarketInputError(f"escrow funding postings must be {want}")
    return state.post(ev, "Plaza DAO", memo or "fund the market escrow", want)


def bond_received(state: MarketData, ev: Event, p: pl.BondReceived) -> Mutation:
    """The operator's receipt for a payment of ``amount`` towards a provider's declared
    bond, naming the payment's ``reference`` (each reference receipted once)."""
    did, amount, reference = p.provider, p.amount, p.reference
    if not reference.strip() or reference != reference.strip():
        raise MarketInputError("a bond receipt names the payment's reference")
    prov = state.providers.get(did)
    if prov is None:
        raise UnknownProviderError(f"no provider {did}")
    if prov.status == "offboarded":
        raise ClosedError(f"{did} is offboarded: it posts no bond")
    if reference in state.bond_references:
        raise ReplayError(f"payment {reference!r} was already receipted")
    if prov.bond_received + amount > prov.bond_declared:
        raise ClosedError(
            f"{did} declared a bond of {prov.bond_declared} and {prov.bond_received} was "
            f"received: a receipt of {amount} exceeds it"
        )
    want = [[bond_escrow(did), amount], [bond_liability(did), -amount]]
    if p.postings != want:
        raise MarketInputError(f"bond receipt postings must be {want}")
    post = state.post(ev, did, f"provider bond received (payment {reference})", want)

    def commit() -> None:
        post()
        state.providers[did] = replace(
            prov, bond=prov.bond + amount, bond_received=prov.bond_received + amount
        )
        state.bond_references.add(reference)

    return commit


def bond_moved(state: MarketData, ev: Event, p: pl.BondMoved) -> Mutation:
    slashed = ev.type == "market.bond.slashed"
    did, amount, reason = p.provider, p.amount, p.reason
    prov = state.providers.get(did)
    if prov is None:
        raise UnknownProviderError(f"no provider {did}")
    if amount > prov.bond:
        raise MarketInputError(f"{did} has a bond of {prov.bond}, not {amount}")
    if slashed:
        want = [
            [bond_liability(did), amount],
            [FORFEITS, -amount],
            [TREASURY, amount],
            [bond_escrow(did), -amount],
        ]
    else:
        if prov.status != "offboarded" and amount > state.free_bond(did):
            raise ClosedError(f"{did}'s bond is pledged to bids or contracts")
        want = [[bond_liability(did), amount], [bond_escrow(did), -amount]]
    if p.postings != want:
        raise MarketInputError(f"bond postings must be {want}")
    post = state.post(ev, did, reason, want)

    def commit() -> None:
        post()
        state.providers[did] = replace(state.providers[did], bond=prov.bond - amount)

    return commit


def need_raised(state: MarketData, ev: Event, p: pl.NeedRaised) -> Mutation:
    if p.id != f"n-{len(state.needs) + 1}":
        raise MarketInputError(f"the next need is n-{len(state.needs) + 1}")
    if any(x not in state.contracts for x in p.contracts):
        raise MarketInputError("need.contracts must list known contracts")
    need = Need(
        id=p.id,
        kind=p.kind,
        service=p.service,
        provider=p.provider,
        accounts=p.accounts,
        contracts=tuple(p.contracts),
        reason=p.reason,
        time_ms=ev.time,
        seq=ev.seq,
    )
    return lambda: state.needs.append(need)


def dispute_opened(state: MarketData, ev: Event, p: pl.DisputeOpened) -> Mutation:
    doc = p.doc
    provider, nonce, iid, claim, reason, evidence = parse_dispute(doc)
    did = p.id
    if did != f"d-{len(state.disputes) + 1}":
        raise MarketInputError(f"the next dispute is d-{len(state.disputes) + 1}")
    proposal = p.proposal
    prov = state.providers.get(provider)
    if prov is None:
        raise UnknownProviderError(f"no provider {provider}")
    verify_doc(doc, prov.key, "dispute", market=state.operator)
    state.check_fresh(provider, "dispute", nonce, doc)
    inv = state.invoices.get(iid)
    if inv is None:
        raise NotFoundInMarketError(f"no invoice {iid}")
    if inv.provider != provider:
        raise BadSignatureError(f"{iid} is not {provider}'s invoice")
    deadline = state.invoice_time[iid] + state.params.dispute_window_s * 1000
    if ev.time > deadline:
        raise ExpiredError(f"disputes of {iid} closed at {deadline}")
    if any(d.invoice == iid for d in state.disputes.values()):
        raise ReplayError(f"{iid} is already disputed")
    dispute = Dispute(did, iid, provider, claim, reason, evidence, ev.time, proposal)

    def commit() -> None:
        state.remember(provider, "dispute", nonce, doc)
        state.disputes[did] = dispute

    return commit


def dispute_resolved(state: MarketData, ev: Event, p: pl.DisputeResolved) -> Mutation:
    did = p.dispute
    d = state.disputes.get(did)
    if d is None:
        raise NotFoundInMarketError(f"no dispute {did}")
    if d.status != "open":
        raise ClosedError(f"{did} is already {d.status}")
    outcome, amount = p.outcome, p.amount
    if p.proposal != d.proposal:
        raise MarketInputError(f"{did} is decided by proposal {d.proposal}")
    if amount > d.claim:
        raise MarketInputError(f"{did} claims {d.claim}, not {amount}")
    if outcome == "rejected" and amount:
        raise MarketInputError("a rejected dispute awards nothing")
    want = [[EXPENSES, amount], [payable(d.provider), -amount]] if amount else []
    if p.postings != want:
        raise MarketInputError(f"dispute postings must be {want}")
    post = state.post(ev, d.provider, f"dispute {did} upheld", want) if want else unchanged

    def commit() -> None:
        post()
        state.disputes[did] = replace(d, status=outcome, amount=amount, resolved_ms=ev.time)
        if amount:
            state.invoice_extra[d.invoice] = state.invoice_extra.get(d.invoice, 0) + amount

    return commit
