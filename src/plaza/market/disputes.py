"""Disputes: a provider contests an invoice, with evidence, and the members decide.

A provider signs a ``dispute`` document naming one of its invoices, the extra amount
it claims (minor units), why, and its evidence: a list of items, each a ``kind``
(``probe-log``, ``usage-log``, ``ledger-event``, ``other``), a ``digest`` (hex SHA-256
of the evidence file, so the file itself can live anywhere and still be checked) and a
``note``. It must arrive within ``dispute_window_s`` of the invoice (The Graph's
arbitration charter bounds disputes the same way) and one invoice takes one dispute.

Opening a dispute files a proposal of the DAO's ``dispute`` type (a majority vote, see
``default_constitution.toml``); the market records the proposal number. Resolving it
reads the proposal's outcome: passed -> ``upheld`` and the claimed amount (or the
amount the proposal names) is added to the invoice, to be paid at the next settlement;
failed -> ``rejected``. Either way the record keeps the reasoning trail: document,
proposal, outcome.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

from plaza.market import _fields as f
from plaza.market.errors import MarketInputError
from plaza.market.signed import check_doc

EVIDENCE_KINDS: Final = ("probe-log", "usage-log", "ledger-event", "other")
_HEX64: Final = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True, slots=True)
class Evidence:
    kind: str
    digest: str
    note: str

    def to_map(self) -> dict[str, str]:
        return {"kind": self.kind, "digest": self.digest, "note": self.note}


@dataclass(frozen=True, slots=True)
class Dispute:
    """A dispute and its outcome."""

    id: str
    invoice: str
    provider: str
    claim: int
    reason: str
    evidence: tuple[Evidence, ...]
    opened_ms: int
    proposal: int
    status: str = "open"  # "open" | "upheld" | "rejected"
    amount: int = 0
    resolved_ms: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "invoice": self.invoice,
            "provider": self.provider,
            "claim": self.claim,
            "reason": self.reason,
            "evidence": [e.to_map() for e in self.evidence],
            "openedMs": self.opened_ms,
            "proposal": self.proposal,
            "status": self.status,
            "amount": self.amount,
            "resolvedMs": self.resolved_ms,
        }


def parse_dispute(doc: Any) -> tuple[str, str, str, int, str, tuple[Evidence, ...]]:
    """Validate a ``dispute`` document: ``(provider, nonce, invoice, claim, reason,
    evidence)``."""
    provider, nonce = check_doc(doc, "dispute")
    invoice = f.id_field(doc, "invoice", "dispute")
    claim = f.int_field(doc, "claim", "dispute", lo=1)
    reason = f.str_field(doc, "reason", "dispute", max_len=2000)
    if not reason.strip():
        raise MarketInputError("a dispute must say why")
    raw = f.req(doc, "evidence", "dispute")
    if not isinstance(raw, list | tuple) or not 0 < len(raw) <= 20:
        raise MarketInputError("a dispute needs 1..20 evidence items")
    evidence: list[Evidence] = []
    for i, item in enumerate(raw):
        m = f.as_map(item, f"dispute.evidence[{i}]")
        kind = f.str_field(m, "kind", "evidence", max_len=32)
        if kind not in EVIDENCE_KINDS:
            raise MarketInputError(f"evidence kind must be one of {', '.join(EVIDENCE_KINDS)}")
        digest = f.str_field(m, "digest", "evidence", max_len=64)
        if not _HEX64.match(digest):
            raise MarketInputError("evidence digest must be 64 lower-case hex digits (SHA-256)")
        evidence.append(Evidence(kind, digest, f.str_field(m, "note", "evidence", default="")))
    return provider, nonce, invoice, claim, reason, tuple(evidence)
