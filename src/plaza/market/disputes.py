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

from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal, get_args

from pydantic import Field, StringConstraints

from plaza.market.fields import Amount, MarketId, Model, Seq, Text256, parse
from plaza.market.signed import body_of, check_doc

EvidenceKind = Literal["probe-log", "usage-log", "ledger-event", "other"]
EVIDENCE_KINDS: Final = get_args(EvidenceKind)


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


class EvidenceDoc(Model):
    kind: EvidenceKind
    digest: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
    note: Text256 = ""


class DisputeDoc(Model):
    """The body of a ``dispute`` document."""

    invoice: MarketId
    claim: Amount
    reason: Annotated[str, StringConstraints(max_length=2000, pattern=r"\S")]
    evidence: Annotated[list[EvidenceDoc], Seq, Field(min_length=1, max_length=20)]


def parse_dispute(doc: Any) -> tuple[str, str, str, int, str, tuple[Evidence, ...]]:
    """Validate a ``dispute`` document: ``(provider, nonce, invoice, claim, reason,
    evidence)``."""
    provider, nonce = check_doc(doc, "dispute")
    body = parse(DisputeDoc, body_of(doc), "dispute")
    evidence = tuple(Evidence(e.kind, e.digest, e.note) for e in body.evidence)
    return provider, nonce, body.invoice, body.claim, body.reason, evidence
