"""Bids: a provider's signed offer to serve (part of) a request for bids.

A ``bid`` document names the request, the quantity of accounts offered (at most the
request's and the provider's spare capacity), a price per metered unit, the SLA
offered, a bond, an expiry and the market it is for (``market``, its operator's DID),
and is signed with the provider's registered key. It is
checked in a fixed order and the first failure is the reason it is rejected; a
rejected bid is never written, so it changes nothing:

1. malformed -> ``InvalidRequest``; no signature -> ``Unsigned``
2. provider not registered -> ``UnknownProvider``; signature does not verify against
   its key -> ``BadSignature``; addressed to another market -> ``WrongMarket``
3. the same document (or the same signer nonce) accepted before -> ``Replayed``
4. provider suspended or offboarded -> ``ProviderSuspended``
5. request unknown -> ``NotFound``; awarded, past its deadline or holding its maximum
   number of bids -> ``Closed``; provider already bid -> ``Replayed``
6. service not offered -> ``WrongService``; region not served -> ``WrongRegion``
7. expiry not after now -> ``Expired``
8. any price over the request's maximum (or a capped unit left unpriced) ->
   ``OverMaxPrice``; SLA weaker than wanted -> ``SlaTooWeak``; bond under the
   minimum -> ``BondTooSmall``; more accounts than spare capacity -> ``Closed``
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from plaza.market import _fields as f
from plaza.market.errors import (
    BondTooSmallError,
    ClosedError,
    ExpiredError,
    MarketInputError,
    NotFoundInMarketError,
    OverMaxPriceError,
    ProviderNotEligibleError,
    ReplayError,
    UnknownProviderError,
    WeakSlaError,
    WrongRegionError,
    WrongServiceError,
)
from plaza.market.params import UNIT_SET
from plaza.market.registry import BIDDABLE
from plaza.market.rfb import Sla
from plaza.market.signed import check_doc, doc_digest, verify_doc

if TYPE_CHECKING:
    from plaza.market.state import MarketState


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


def validate_bid(state: MarketState, doc: Any, now_ms: int) -> Bid:
    """Check a bid document against the market state at ``now_ms`` (see the module
    docstring for the order); return the :class:`Bid` it would record."""
    provider_did, nonce = check_doc(doc, "bid")
    rfb_id = f.id_field(doc, "rfb", "bid")
    quantity = f.int_field(doc, "quantity", "bid", lo=1, hi=10**12)
    prices = f.int_map(f.req(doc, "prices", "bid"), "bid.prices", keys=UNIT_SET)
    sla = Sla.from_map(f.req(doc, "sla", "bid"), "bid.sla")
    bond = f.int_field(doc, "bond", "bid")
    expires = f.int_field(doc, "expires_ms", "bid")
    extra = set(doc) - {
        "$type", "provider", "market", "nonce", "sig", "rfb", "quantity", "prices", "sla",
        "bond", "expires_ms",
    }  # fmt: skip
    if extra:
        raise MarketInputError(f"bid has unknown fields {sorted(extra)}")

    provider = state.providers.get(provider_did)
    if provider is None:
        raise UnknownProviderError(f"no provider {provider_did} is registered")
    verify_doc(doc, provider.key, "bid", market=state.operator)
    state.check_fresh(provider_did, "bid", nonce, doc)
    if provider.status not in BIDDABLE:
        raise ProviderNotEligibleError(
            f"provider {provider_did} is {provider.status} ({provider.reason}) and may not bid"
        )
    rfb = state.rfbs.get(rfb_id)
    if rfb is None:
        raise NotFoundInMarketError(f"no request for bids {rfb_id}")
    if rfb.awarded:
        raise ClosedError(f"{rfb_id} is already awarded")
    if now_ms >= rfb.deadline_ms:
        raise ClosedError(f"{rfb_id} stopped taking bids at {rfb.deadline_ms}")
    if len(rfb.bids) >= rfb.max_bids:
        raise ClosedError(f"{rfb_id} already holds its maximum of {rfb.max_bids} bids")
    if any(state.bids[b].provider == provider_did for b in rfb.bids):
        raise ReplayError(f"{provider_did} already bid on {rfb_id}")
    if rfb.service not in provider.services:
        raise WrongServiceError(
            f"{rfb_id} asks for {rfb.service}; {provider_did} offers {', '.join(provider.services)}"
        )
    if rfb.region not in provider.regions:
        raise WrongRegionError(f"{rfb_id} is for region {rfb.region}; {provider_did} is not there")
    if expires <= now_ms:
        raise ExpiredError(f"the bid expired at {expires}, before it arrived at {now_ms}")
    for unit, cap in sorted(rfb.max_prices.items()):
        if unit not in prices:
            raise OverMaxPriceError(f"the bid does not price {unit}, which {rfb_id} caps")
        if prices[unit] > cap:
            raise OverMaxPriceError(
                f"{unit} price {prices[unit]} is over the maximum {cap} of {rfb_id}"
            )
    for unit in prices:
        if unit not in rfb.max_prices:
            raise OverMaxPriceError(f"the bid prices {unit}, which {rfb_id} does not buy")
    if not sla.at_least(rfb.sla):
        raise WeakSlaError(f"the bid's SLA {sla.to_map()} is weaker than {rfb.sla.to_map()}")
    if bond < max(rfb.min_bond, state.params.bid_bond_min):
        raise BondTooSmallError(f"bond {bond} is under the minimum {rfb.min_bond}")
    if quantity > rfb.quantity:
        raise ClosedError(f"{quantity} accounts offered, {rfb_id} wants only {rfb.quantity}")
    spare = state.spare_capacity(provider_did, rfb.service)
    if quantity > spare:
        raise ClosedError(
            f"{provider_did} has capacity for {spare} more {rfb.service} accounts, not {quantity}"
        )
    return Bid(
        id=bid_id(doc),
        rfb=rfb_id,
        provider=provider_did,
        quantity=quantity,
        prices=prices,
        sla=sla,
        bond=bond,
        expires_ms=expires,
        submitted_ms=now_ms,
        nonce=nonce,
        doc=dict(doc),
    )
