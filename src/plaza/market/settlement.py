"""Settlement: what each contract earned in an epoch, and paying it from escrow.

**Invoice** (Filecoin Pay's validated payouts with S3's credit ladder). For a contract
that ran for ``W`` probe windows of the epoch, of which ``D`` were judged down by the
probe quorum (:mod:`plaza.market.probes`), in millionths of a minor unit::

    gross     = sum over units of verified quantity x unit price      (metering)
    unpaid    = gross x D / W                      failed windows are not paid
    base      = gross - unpaid
    avail     = (W - D) / W                        in ppm
    credit%   = ladder(avail) [+ latency credit if the epoch's p95 > the SLA's], <= 100%
    credit    = base x credit%
    amount    = floor((base - credit) / 1e6)       minor units, the invoice total

Each division floors, in that order, so the amount is exactly reproducible by hand and
by replay: a ``market.invoice.issued`` event is accepted only if the market computes
the same invoice from the evidence it holds.

**Payment** is lazy, as in Akash's escrow: nothing streams; whenever the market settles
(``plaza market settle --epoch N``), every epoch up to N not yet settled is invoiced
and everything owed — those invoices plus any unpaid balance of older ones, plus
upheld disputes — is paid from the market's escrow account. When escrow holds less
than is owed, each invoice gets the same fraction, ``floor(owed_i x escrow / total)``
(Akash's overdrawn split), the rest stays owed, and the market raises a
re-procurement need: the DAO is buying more than it funds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from plaza.market.metering import Verified
from plaza.market.params import PPM, PRICE_SCALE
from plaza.market.probes import WindowVerdicts


@dataclass(frozen=True, slots=True)
class Invoice:
    """One contract's invoice for one epoch, with every number that made it."""

    id: str
    contract: str
    provider: str
    epoch: int
    lines: tuple[Verified, ...]
    prices: Mapping[str, int]
    windows: int
    judged: int
    down: int
    availability_ppm: int
    latency_p95_ms: int | None
    gross_micro: int
    unpaid_micro: int
    credit_ppm: int
    credit_micro: int
    amount: int
    flags: tuple[str, ...]
    failed: bool

    def to_map(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "contract": self.contract,
            "provider": self.provider,
            "epoch": self.epoch,
            "lines": [ln.to_map() for ln in self.lines],
            "prices": dict(self.prices),
            "windows": self.windows,
            "judged": self.judged,
            "down": self.down,
            "availability_ppm": self.availability_ppm,
            "gross_micro": self.gross_micro,
            "unpaid_micro": self.unpaid_micro,
            "credit_ppm": self.credit_ppm,
            "credit_micro": self.credit_micro,
            "amount": self.amount,
            "flags": list(self.flags),
            "failed": self.failed,
        }
        if self.latency_p95_ms is not None:
            out["latency_p95_ms"] = self.latency_p95_ms
        return out


def ladder_credit(availability_ppm: int, ladder: Sequence[tuple[int, int]]) -> int:
    """The credit (ppm) for an availability: the largest credit whose threshold the
    availability falls below, or nothing."""
    credit = 0
    for below, pct in ladder:
        if availability_ppm < below:
            credit = max(credit, pct)
    return credit


def compute_invoice(
    *,
    invoice_id: str,
    contract: str,
    provider: str,
    epoch: int,
    lines: tuple[Verified, ...],
    prices: Mapping[str, int],
    verdicts: WindowVerdicts,
    ladder: Sequence[tuple[int, int]],
    sla_availability_ppm: int,
    sla_latency_ms: int,
    latency_credit_ppm: int,
    flags: tuple[str, ...] = (),
) -> Invoice:
    """Apply the formula in the module docstring."""
    gross = sum(ln.verified * prices.get(ln.unit, 0) for ln in lines)
    w, d = verdicts.total, verdicts.down
    unpaid = gross * d // w if w else gross
    base = gross - unpaid
    avail = verdicts.availability_ppm
    credit_ppm = ladder_credit(avail, ladder)
    out_flags = list(flags)
    p95 = verdicts.latency_p95_ms
    if p95 is not None and p95 > sla_latency_ms:
        credit_ppm += latency_credit_ppm
        out_flags.append(f"latency p95 {p95} ms over the SLA's {sla_latency_ms} ms")
    credit_ppm = min(PPM, credit_ppm)
    credit = base * credit_ppm // PPM
    amount = (base - credit) // PRICE_SCALE
    for ln in lines:
        if ln.flagged:
            out_flags.append(
                f"{ln.unit}: reported {ln.reported}, observed {ln.observed}; paid {ln.verified}"
            )
    if verdicts.unjudged:
        out_flags.append(f"{verdicts.unjudged} windows without a probe quorum (counted up)")
    failed = w > 0 and avail < sla_availability_ppm
    return Invoice(
        id=invoice_id,
        contract=contract,
        provider=provider,
        epoch=epoch,
        lines=lines,
        prices=dict(prices),
        windows=w,
        judged=verdicts.judged,
        down=d,
        availability_ppm=avail,
        latency_p95_ms=p95,
        gross_micro=gross,
        unpaid_micro=unpaid,
        credit_ppm=credit_ppm,
        credit_micro=credit,
        amount=amount,
        flags=tuple(out_flags),
        failed=failed,
    )


def pro_rata(owed: Mapping[str, int], funds: int) -> dict[str, int]:
    """Pay everything when ``funds`` cover ``owed``; else each ``floor(owed x funds /
    total)``. Keys with nothing to pay are left out."""
    total = sum(owed.values())
    if total <= funds:
        return {k: v for k, v in owed.items() if v > 0}
    if total <= 0 or funds <= 0:
        return {}
    out = {k: v * funds // total for k, v in owed.items()}
    return {k: v for k, v in out.items() if v > 0}
