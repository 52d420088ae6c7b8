"""The money half of the market projection: invoices, settlement, payments, escrow,
bonds, disputes and needs. See :mod:`plaza.market.state` for the theory of operation."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from plaza.ledger.event import Event
from plaza.market import _fields as f
from plaza.market.contracts import Contract
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
from plaza.market.journal import (
    EXPENSES,
    FORFEITS,
    MARKET_ESCROW,
    TREASURY,
    bond_escrow,
    bond_liability,
    payable,
)
from plaza.market.metering import cross_check
from plaza.market.settlement import Invoice, compute_invoice
from plaza.market.signed import verify_doc
from plaza.market.state import Need

if TYPE_CHECKING:
    from plaza.market.state import Commit, MarketState


def invoice_id(contract: str, epoch: int) -> str:
    return f"inv-{contract}-{epoch}"


def window_span(state: MarketState, c: Contract, epoch: int) -> tuple[int, int]:
    """Epoch-relative windows ``[lo, hi)`` during which ``c`` ran in ``epoch``."""
    params = state.params
    start = params.epoch_start(epoch)
    lo_ms, hi_ms = c.span(start, params.epoch_end(epoch))
    if hi_ms <= lo_ms:
        return (0, 0)
    wms = params.window_s * 1000
    return ((lo_ms - start) // wms, -(-(hi_ms - start) // wms))


def billable(state: MarketState, epoch: int) -> list[Contract]:
    """Contracts that ran in ``epoch``, by id (the ones settlement invoices)."""
    out = []
    for c in state.contracts.values():
        lo, hi = window_span(state, c, epoch)
        if hi > lo:
            out.append(c)
    return sorted(out, key=lambda c: (len(c.id), c.id))


def make_invoice(state: MarketState, c: Contract, epoch: int) -> Invoice:
    """The invoice the evidence supports for ``c`` in ``epoch`` (pure; memoized until
    new evidence arrives, so the command and the check share one computation)."""
    key = (c.id, epoch)
    memo = state.invoice_memo.get(key)
    if memo is not None and memo[0] == state.evidence_gen:
        return memo[1]
    inv = _make_invoice(state, c, epoch)
    state.invoice_memo[key] = (state.evidence_gen, inv)
    return inv


def _make_invoice(state: MarketState, c: Contract, epoch: int) -> Invoice:
    params = state.params
    lo, hi = window_span(state, c, epoch)
    verdicts = state.probes.verdicts(
        c.provider, epoch, min_probers=params.min_probers, fault_f=params.fault_f, lo=lo, hi=hi
    )
    rep = state.usage.get((c.id, epoch))
    flags: tuple[str, ...] = ()
    if rep is None:
        lines: tuple[Any, ...] = ()
        flags = ("no usage report",)
    else:
        obs = [o.usage for _, o in sorted(state.observations.get((c.id, epoch), {}).items())]
        # Accounts are billed per epoch; a contract that ran part of it gets that part.
        cap = c.quantity * (hi - lo) // params.windows_per_epoch
        lines = cross_check(
            rep.usage, obs, tolerance_ppm=params.usage_tolerance_ppm, max_accounts=cap
        )
        if not obs:
            flags = ("usage not independently observed",)
    return compute_invoice(
        invoice_id=invoice_id(c.id, epoch),
        contract=c.id,
        provider=c.provider,
        epoch=epoch,
        lines=lines,
        prices=c.prices,
        verdicts=verdicts,
        ladder=c.credit_ladder,
        sla_availability_ppm=c.sla.availability_ppm,
        sla_latency_ms=c.sla.latency_p95_ms,
        latency_credit_ppm=c.latency_credit_ppm,
        flags=flags,
    )


def invoice_postings(inv: Invoice) -> list[list[Any]]:
    if inv.amount <= 0:
        return []
    return [[EXPENSES, inv.amount], [payable(inv.provider), -inv.amount]]


def outstanding(state: MarketState, inv_id: str) -> int:
    inv = state.invoices[inv_id]
    return int(inv.amount) + state.invoice_extra.get(inv_id, 0) - state.invoice_paid.get(inv_id, 0)


def epoch_outcome(state: MarketState, epoch: int) -> tuple[list[str], list[str]]:
    """``(failed, clean)`` providers of a fully invoiced epoch, sorted."""
    failed: set[str] = set()
    judged: set[str] = set()
    for c in billable(state, epoch):
        inv = state.invoices[invoice_id(c.id, epoch)]
        if inv.failed:
            failed.add(c.provider)
        if inv.judged:
            judged.add(c.provider)
    return sorted(failed), sorted(judged - failed)


def outcome_summary(failed: list[str], clean: list[str]) -> dict[str, Any]:
    """What an epoch close records of its failed and clean providers: the counts and the
    SHA-256 of each sorted list (the lists themselves would outgrow an event at scale;
    replay recomputes them from the invoices and must match)."""

    def digest(dids: list[str]) -> str:
        return hashlib.sha256("\n".join(dids).encode()).hexdigest()

    return {
        "failed": len(failed),
        "clean": len(clean),
        "failed_digest": digest(failed),
        "clean_digest": digest(clean),
    }


def handlers(state: MarketState) -> dict[str, Callable[[Event], Commit]]:
    """The money handlers, bound to ``state``."""

    def invoice_issued(ev: Event) -> Commit:
        p = ev.payload
        m = f.as_map(f.req(p, "invoice", "market.invoice.issued"), "invoice")
        cid = f.id_field(m, "contract", "invoice")
        epoch = f.int_field(m, "epoch", "invoice", hi=10**9)
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
        if inv.to_map() != dict(m):
            raise MarketRejectedError(
                f"{iid} does not match what the evidence supports (amount {inv.amount})",
                code="InvoiceMismatch",
            )
        want = invoice_postings(inv)
        if p.get("postings", []) != want:
            raise MarketInputError(f"{iid} postings must be {want}")
        post = state.post(ev, inv.provider, f"invoice {iid}", want) if want else _noop

        def commit() -> None:
            post()
            state.invoices[iid] = inv
            state.invoice_time[iid] = ev.time

        return commit

    def epoch_settled(ev: Event) -> Commit:
        p = ev.payload
        epoch = f.int_field(p, "epoch", "market.epoch.settled", hi=10**9)
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
        if p.get("outcome") != outcome_summary(failed, clean):
            raise MarketInputError(
                f"epoch {epoch} closes with {len(failed)} failed and {len(clean)} clean "
                f"providers: {outcome_summary(failed, clean)}"
            )
        invs = [state.invoices[invoice_id(c.id, epoch)] for c in billable(state, epoch)]

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
                pr = state.providers[did]
                state.providers[did] = replace(
                    pr, failed_streak=0, clean_epochs=pr.clean_epochs + 1
                )

        return commit

    def payment_made(ev: Event) -> Commit:
        p = ev.payload
        iid = f.id_field(p, "invoice", "market.payment.made")
        amount = f.int_field(p, "amount", "market.payment.made", lo=1)
        if iid not in state.invoices:
            raise NotFoundInMarketError(f"no invoice {iid}")
        owed = outstanding(state, iid)
        if amount > owed:
            raise MarketInputError(f"{iid} has {owed} outstanding, not {amount}")
        prov = state.invoices[iid].provider
        want = [[payable(prov), amount], [MARKET_ESCROW, -amount]]
        if p.get("postings") != want:
            raise MarketInputError(f"payment postings must be {want}")
        post = state.post(ev, prov, f"payment of {iid}", want)

        def commit() -> None:
            post()
            state.invoice_paid[iid] = state.invoice_paid.get(iid, 0) + amount

        return commit

    def escrow_funded(ev: Event) -> Commit:
        p = ev.payload
        amount = f.int_field(p, "amount", "market.escrow.funded", lo=1)
        memo = f.str_field(p, "memo", "market.escrow.funded", max_len=500, default="")
        want = [[MARKET_ESCROW, amount], [TREASURY, -amount]]
        if p.get("postings") != want:
            raise MarketInputError(f"escrow funding postings must be {want}")
        return state.post(ev, "Plaza DAO", memo or "fund the market escrow", want)

    def bond_received(ev: Event) -> Commit:
        """The operator's receipt for a payment of ``amount`` towards a provider's declared
        bond, naming the payment's ``reference`` (each reference receipted once)."""
        p = ev.payload
        what = "market.bond.received"
        did = f.did_field(p, "provider", what)
        amount = f.int_field(p, "amount", what, lo=1)
        reference = f.str_field(p, "reference", what, max_len=200)
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
        if p.get("postings") != want:
            raise MarketInputError(f"bond receipt postings must be {want}")
        post = state.post(ev, did, f"provider bond received (payment {reference})", want)

        def commit() -> None:
            post()
            state.providers[did] = replace(
                prov, bond=prov.bond + amount, bond_received=prov.bond_received + amount
            )
            state.bond_references.add(reference)

        return commit

    def bond_moved(ev: Event) -> Commit:
        p = ev.payload
        slashed = ev.type == "market.bond.slashed"
        did = f.did_field(p, "provider", ev.type)
        amount = f.int_field(p, "amount", ev.type, lo=1)
        reason = f.str_field(p, "reason", ev.type, max_len=1000)
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
        if p.get("postings") != want:
            raise MarketInputError(f"bond postings must be {want}")
        post = state.post(ev, did, reason, want)

        def commit() -> None:
            post()
            state.providers[did] = replace(state.providers[did], bond=prov.bond - amount)

        return commit

    def need_raised(ev: Event) -> Commit:
        p = ev.payload
        nid = f.id_field(p, "id", "market.need.raised")
        if nid != f"n-{len(state.needs) + 1}":
            raise MarketInputError(f"the next need is n-{len(state.needs) + 1}")
        kind = f.str_field(p, "kind", "market.need.raised", max_len=16)
        if kind not in ("reprocure", "migration"):
            raise MarketInputError("a need is 'reprocure' or 'migration'")
        contracts = f.req(p, "contracts", "market.need.raised")
        if not isinstance(contracts, list) or any(x not in state.contracts for x in contracts):
            raise MarketInputError("need.contracts must list known contracts")
        need = Need(
            id=nid,
            kind=kind,
            service=f.str_field(p, "service", "market.need.raised", max_len=16),
            provider=f.str_field(p, "provider", "market.need.raised", max_len=2048),
            accounts=f.int_field(p, "accounts", "market.need.raised"),
            contracts=tuple(contracts),
            reason=f.str_field(p, "reason", "market.need.raised", max_len=2000),
            time_ms=ev.time,
            seq=ev.seq,
        )
        return lambda: state.needs.append(need)

    def dispute_opened(ev: Event) -> Commit:
        p = ev.payload
        doc = f.req(p, "doc", "market.dispute.opened")
        provider, nonce, iid, claim, reason, evidence = parse_dispute(doc)
        did = f.id_field(p, "id", "market.dispute.opened")
        if did != f"d-{len(state.disputes) + 1}":
            raise MarketInputError(f"the next dispute is d-{len(state.disputes) + 1}")
        proposal = f.int_field(p, "proposal", "market.dispute.opened")
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

    def dispute_resolved(ev: Event) -> Commit:
        p = ev.payload
        did = f.id_field(p, "dispute", "market.dispute.resolved")
        d = state.disputes.get(did)
        if d is None:
            raise NotFoundInMarketError(f"no dispute {did}")
        if d.status != "open":
            raise ClosedError(f"{did} is already {d.status}")
        outcome = f.str_field(p, "outcome", "market.dispute.resolved", max_len=16)
        if outcome not in ("upheld", "rejected"):
            raise MarketInputError("a dispute is 'upheld' or 'rejected'")
        if f.int_field(p, "proposal", "market.dispute.resolved") != d.proposal:
            raise MarketInputError(f"{did} is decided by proposal {d.proposal}")
        amount = f.int_field(p, "amount", "market.dispute.resolved", hi=d.claim)
        if outcome == "rejected" and amount:
            raise MarketInputError("a rejected dispute awards nothing")
        want = [[EXPENSES, amount], [payable(d.provider), -amount]] if amount else []
        if p.get("postings", []) != want:
            raise MarketInputError(f"dispute postings must be {want}")
        post = state.post(ev, d.provider, f"dispute {did} upheld", want) if want else _noop

        def commit() -> None:
            post()
            state.disputes[did] = replace(d, status=outcome, amount=amount, resolved_ms=ev.time)
            if amount:
                state.invoice_extra[d.invoice] = state.invoice_extra.get(d.invoice, 0) + amount

        return commit

    return {
        "market.invoice.issued": invoice_issued,
        "market.epoch.settled": epoch_settled,
        "market.payment.made": payment_made,
        "market.escrow.funded": escrow_funded,
        "market.bond.received": bond_received,
        "market.bond.slashed": bond_moved,
        "market.bond.released": bond_moved,
        "market.need.raised": need_raised,
        "market.dispute.opened": dispute_opened,
        "market.dispute.resolved": dispute_resolved,
    }


def _noop() -> None:
    return None
