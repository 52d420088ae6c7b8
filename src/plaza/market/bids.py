"""Bids: a provider's signed offer to serve (part of) a request for bids.

A ``bid`` document names the request, the quantity of accounts offered (at most the
request's and the provider's spare capacity), a price per metered unit, the SLA
offered, a bond, an expiry and the market it is for (``market``, its operator's DID),
and is signed with the provider's registered key. :class:`Bid` is an accepted bid;
:mod:`plaza.market.bidding` holds the checks a document passes to become one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from plaza.market.rfb import Sla
from plaza.market.signed import doc_digest


@dataclass(frozen=True, slots=True)
class Bid:
    """An accepted bid."""

    id: str
    rfb: str
    provider: str
    quantity: int
    prices: Mapping[str, int]
    sla: Sla
    bond: int
    expires_ms: int
    submitted_ms: int
    nonce: str
    doc: Mapping[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "rfb": self.rfb,
            "provider": self.provider,
            "quantity": self.quantity,
            "prices": dict(self.prices),
            "sla": self.sla.to_map(),
            "bond": self.bond,
            "expiresMs": self.expires_ms,
            "submittedMs": self.submitted_ms,
        }


def bid_id(doc: Mapping[str, Any]) -> str:
    """A bid's id: ``b-`` and the first 16 hex digits of its document digest."""
    return "b-" + doc_digest(doc)[:16]
