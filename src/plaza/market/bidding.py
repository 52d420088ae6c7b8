"""Bidding: the checks a signed ``bid`` document passes to become a :class:`~plaza.market.bids.Bid`.

A bid is checked in a fixed order and the first failure is the reason it is rejected;
a rejected bid is never written, so it changes nothing:

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

from typing import Annotated, Any

from pydantic import ConfigDict, Field

from plaza.ledger.clock import iso_ms
from plaza.market.bids import Bid, bid_id
from plaza.market.data import MarketData
from plaza.market.errors import (
    BondTooSmallError,
    ClosedError,
    ExpiredError,
    NotFoundInMarketError,
    OverMaxPriceError,
    ProviderNotEligibleError,
    ReplayError,
    UnknownProviderError,
    WeakSlaError,
    WrongRegionError,
    WrongServiceError,
)
from plaza.market.fields import Count, Counts, MarketId, Model, only, parse
from plaza.market.params import UNIT_SET
from plaza.market.registry import BIDDABLE
from plaza.market.rfb import Sla, SlaDoc
from plaza.market.signed import body_of, check_doc, verify_doc


class BidDoc(Model):
    """The body of a ``bid`` document (its envelope is checked by
    :func:`~plaza.market.signed.check_doc`)."""

    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")
    rfb: MarketId
    quantity: Annotated[int, Field(ge=1, le=10**12)]
    prices: Counts
    sla: SlaDoc
    bond: Count
    expires_ms: Count


def validate_bid(state: MarketData, doc: Any, now_ms: int) -> Bid:
    """Check a bid document against the market state at ``now_ms`` (see the module
    docstring for the order); return the :class:`Bid` it would record."""
    provider_did, nonce = check_doc(doc, "bid")
    body = parse(BidDoc, body_of(doc), "bid")
    only(body.prices, UNIT_SET, "bid.prices")
    rfb_id, quantity, bond, expires = body.rfb, body.quantity, body.bond, body.expires_ms
    prices = dict(sorted(body.prices.items()))
    sla = Sla.of(body.sla)

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
        raise ClosedError(f"{rfb_id} stopped taking bids at {iso_ms(rfb.deadline_ms)}")
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
        raise ExpiredError(
            f"the bid expired at {iso_ms(expires)}, before it arrived at {iso_ms(now_ms)}"
        )
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
