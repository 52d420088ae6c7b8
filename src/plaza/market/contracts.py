"""Contracts: machine-readable, signed terms between the DAO and a provider.

Theory of operation. An award turns each winning bid into a contract in state
``awarded``: the request's terms (service, region, start, term, notice, exit fee, the
credit ladder and latency credit, the duty to cooperate with migration) with the bid's
prices, SLA, bond and the quantity awarded. Its canonical terms map
(:meth:`Contract.terms`) hashes to ``terms_digest``. Two signatures make it
``active``:

* the provider's: a ``terms`` document naming the contract and the digest, signed with
  its registered key (``market.contract.signed``);
* the DAO's, given by the operator agent in a ``market.contract.approved`` event that
  the ledger signs. The agent may approve on its own only as the mandate guard said at
  award time: at once for ``allow``, after the veto window for ``optimistic`` (unless
  the DAO adapter reports a veto), and for ``vote`` only by citing a passed proposal.

A contract ends at the end of its term, by notice, or when its provider is offboarded
(``market.contract.ended``, with the reason); its accounts then need a new home. With a
minimum term (``min_term_s``) the DAO may release part of the accounts
(``market.contract.released``) or end the contract only once the minimum term has run;
offboarding ends it at any time. A standing contract (``standing``) is an offer to
serve up to its quantity, paid by metered use only (see :mod:`plaza.market.rfb`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Final

from plaza.atproto import cbor
from plaza.market.rfb import Sla

CONTRACT_STATUSES: Final = ("awarded", "active", "ended")


@dataclass(frozen=True, slots=True)
class Contract:
    """A contract and its standing."""

    id: str
    rfb: str
    bid: str
    provider: str
    service: str
    region: str
    quantity: int
    prices: Mapping[str, int]
    sla: Sla
    credit_ladder: tuple[tuple[int, int], ...]
    latency_credit_ppm: int
    start_ms: int
    end_ms: int
    notice_s: int
    exit_fee: int
    bond: int
    awarded_ms: int
    verdict: str
    window_s: int
    proposal_type: str
    min_term_s: int = 0
    standing: bool = False
    status: str = "awarded"
    provider_signed: bool = False
    approval: str = ""
    ended_ms: int = 0
    end_reason: str = ""
    released: int = 0

    @property
    def held(self) -> int:
        """Accounts the contract still holds: its quantity less what was released."""
        return self.quantity - self.released

    @property
    def firm(self) -> bool:
        """Whether the contract holds capacity (not ended, not a standing offer)."""
        return self.status != "ended" and not self.standing

    def releasable_at(self) -> int:
        """The earliest time (ms) the DAO may release accounts or end the contract."""
        return self.start_ms + self.min_term_s * 1000

    def terms(self) -> dict[str, Any]:
        """The canonical machine-readable terms both parties sign."""
        return {
            "contract": self.id,
            "rfb": self.rfb,
            "bid": self.bid,
            "provider": self.provider,
            "service": self.service,
            "region": self.region,
            "quantity": self.quantity,
            "unit_prices": dict(self.prices),
            "sla": self.sla.to_map(),
            "credit_ladder": [list(s) for s in self.credit_ladder],
            "latency_credit_ppm": self.latency_credit_ppm,
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
            "notice_s": self.notice_s,
            "exit_fee": self.exit_fee,
            "bond": self.bond,
            "migration_duty": True,
            **self._optional_terms(),
        }

    def _optional_terms(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.min_term_s:
            out["min_term_s"] = self.min_term_s
        if self.standing:
            out["standing"] = True
        return out

    def terms_digest(self) -> str:
        return hashlib.sha256(cbor.encode(self.terms())).hexdigest()

    def active_at(self, time_ms: int) -> bool:
        end = self.ended_ms if self.status == "ended" else self.end_ms
        return self.status != "awarded" and self.start_ms <= time_ms < end

    def span(self, start_ms: int, end_ms: int) -> tuple[int, int]:
        """The part of ``[start_ms, end_ms)`` during which the contract ran (may be empty)."""
        if not self.approval:
            return (start_ms, start_ms)
        end = min(self.end_ms, self.ended_ms) if self.ended_ms else self.end_ms
        lo, hi = max(start_ms, self.start_ms), min(end_ms, end)
        return (lo, max(lo, hi))

    def with_(self, **changes: Any) -> Contract:
        return replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        out = self.terms()
        out.update(
            id=self.id,
            status=self.status,
            terms_digest=self.terms_digest(),
            provider_signed=self.provider_signed,
            approval=self.approval,
            verdict=self.verdict,
            window_s=self.window_s,
            proposal_type=self.proposal_type,
            awarded_ms=self.awarded_ms,
            ended_ms=self.ended_ms,
            end_reason=self.end_reason,
            released=self.released,
        )
        return out
