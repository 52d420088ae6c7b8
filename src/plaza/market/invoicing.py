"""Invoicing: the invoice the evidence supports for a contract in an epoch, what is
still owed on one, and which providers an epoch failed or left clean. Pure queries
over :class:`~plaza.market.data.MarketData` (see :mod:`plaza.market.settlement` for
the formula); the settlement commands and the money handlers both ask them, so a
command and its replay compute the same numbers."""

from __future__ import annotations

import hashlib
from typing import Any

from plaza.market.contracts import Contract
from plaza.market.data import MarketData
from plaza.market.journal import EXPENSES, payable
from plaza.market.metering import cross_check
from plaza.market.settlement import Invoice, compute_invoice


def invoice_id(contract: str, epoch: int) -> str:
    return f"inv-{contract}-{epoch}"


def window_span(state: MarketData, c: Contract, epoch: int) -> tuple[int, int]:
    """Epoch-relative windows ``[lo, hi)`` during which ``c`` ran in ``epoch``."""
    params = state.params
    start = params.epoch_start(epoch)
    lo_ms, hi_ms = c.span(start, params.epoch_end(epoch))
    if hi_ms <= lo_ms:
        return (0, 0)
    wms = params.window_s * 1000
    return ((lo_ms - start) // wms, -(-(hi_ms - start) // wms))


def billable(state: MarketData, epoch: int) -> list[Contract]:
    """Contracts that ran in ``epoch``, by id (the ones settlement invoices)."""
    out = []
    for c in state.contracts.values():
        lo, hi = window_span(state, c, epoch)
        if hi > lo:
            out.append(c)
    return sorted(out, key=lambda c: (len(c.id), c.id))


def make_invoice(state: MarketData, c: Contract, epoch: int) -> Invoice:
    """The invoice the evidence supports for ``c`` in ``epoch`` (pure; memoized until
    new evidence arrives, so the command and the check share one computation)."""
    key = (c.id, epoch)
    memo = state.invoice_memo.get(key)
    if memo is not None and memo[0] == state.evidence_gen:
        return memo[1]
    inv = _make_invoice(state, c, epoch)
    state.invoice_memo[key] = (state.evidence_gen, inv)
    return inv


def _make_invoice(state: MarketData, c: Contract, epoch: int) -> Invoice:
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


def outstanding(state: MarketData, inv_id: str) -> int:
    inv = state.invoices[inv_id]
    return int(inv.amount) + state.invoice_extra.get(inv_id, 0) - state.invoice_paid.get(inv_id, 0)


def epoch_outcome(state: MarketData, epoch: int) -> tuple[list[str], list[str]]:
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


def met_sla(state: MarketData, epoch: int) -> list[str]:
    """Providers that met every SLA in a fully invoiced epoch, sorted: each had a
    contract running in the epoch and none of its invoices failed. Windows without a
    probe quorum count as up (missing evidence is the market's failure, not the
    provider's), so this needs no probes; a *clean* epoch (:func:`epoch_outcome`) also
    needs judged windows."""
    failed: set[str] = set()
    served: set[str] = set()
    for c in billable(state, epoch):
        served.add(c.provider)
        if state.invoices[invoice_id(c.id, epoch)].failed:
            failed.add(c.provider)
    return sorted(served - failed)


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
