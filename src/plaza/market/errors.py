"""Errors of the market (``plaza.market``).

Two families. :class:`MarketInputError` says a document or request is malformed (a
field missing or of the wrong type, an unknown service); it is an
:class:`~plaza.errors.InvalidInputError`. :class:`MarketRejectedError` says a
well-formed document is not acceptable in the current market state (a bid over the
maximum price, from a suspended provider, a replayed usage report); it is also an
:class:`~plaza.ledger.errors.EventRejectedError`, so replaying a ledger that holds an
illegal market event fails with the same code a live command would have raised. Both
leave the ledger and the market state unchanged. Every class carries the XRPC-style
``code`` the HTTP API returns.
"""

from __future__ import annotations

from plaza.errors import InvalidInputError, PlazaError
from plaza.ledger.errors import EventRejectedError


class MarketError(PlazaError):
    """Root of the market's errors."""

    code = "MarketError"
    status = 400


class MarketInputError(MarketError, InvalidInputError):
    """A document, request or parameter is malformed."""

    code = "InvalidRequest"
    status = 400


class PayloadTooLargeError(MarketInputError):
    """A request body is larger than the HTTP API accepts."""

    code = "PayloadTooLarge"
    status = 413


class MarketRejectedError(MarketError, EventRejectedError):
    """A well-formed document or command is not allowed in the current market state."""

    code = "MarketRejected"
    status = 422


class UnsignedError(MarketRejectedError):
    """A document that must be signed carries no signature."""

    code = "Unsigned"
    status = 401


class BadSignatureError(MarketRejectedError):
    """A signature does not verify against the signer's registered key (forged or altered)."""

    code = "BadSignature"
    status = 401


class IdentityProofError(MarketRejectedError):
    """A registration does not prove that its DID lists the key that signed it (a DID
    method that cannot be proven, a missing or foreign PLC chain, a stale signature)."""

    code = "IdentityProof"
    status = 403


class WrongMarketError(MarketRejectedError):
    """A signed document is addressed to another market: its ``market`` names another
    operator's DID (a document signed for one market cannot be replayed at another)."""

    code = "WrongMarket"
    status = 403


class NotOperatorError(MarketRejectedError):
    """Only the market's operator (the agent appointed by the DAO) may do this."""

    code = "NotOperator"
    status = 403


class UnknownProviderError(MarketRejectedError):
    """No provider (or prober) with this DID is registered."""

    code = "UnknownProvider"
    status = 404


class ProviderNotEligibleError(MarketRejectedError):
    """The provider is suspended or offboarded (or otherwise may not take this step)."""

    code = "ProviderSuspended"
    status = 403


class NotFoundInMarketError(MarketRejectedError):
    """The request for bids, bid, contract, invoice or dispute named does not exist."""

    code = "NotFound"
    status = 404


class WrongServiceError(MarketRejectedError):
    """The provider does not offer the service asked for."""

    code = "WrongService"


class OverMaxPriceError(MarketRejectedError):
    """A bid asks more than the request's maximum unit price."""

    code = "OverMaxPrice"


class WeakSlaError(MarketRejectedError):
    """A bid's SLA is weaker than the one the request wants."""

    code = "SlaTooWeak"


class BondTooSmallError(MarketRejectedError):
    """A bid's bond is below the request's minimum."""

    code = "BondTooSmall"


class ExpiredError(MarketRejectedError):
    """The document's expiry has passed (or the deadline it answers has)."""

    code = "Expired"
    status = 409


class ReplayError(MarketRejectedError):
    """The same signed document (or one for the same slot) was already accepted."""

    code = "Replayed"
    status = 409


class ClosedError(MarketRejectedError):
    """The request, contract or window is closed for this step (full, awarded, ended)."""

    code = "Closed"
    status = 409


class NotIndependentError(MarketRejectedError):
    """An observer or prober may not report on itself."""

    code = "NotIndependent"
    status = 403


class MandateDeniedError(MarketRejectedError):
    """The mandate guard denied the action (concentration, budget, cap)."""

    code = "MandateDenied"
    status = 403


class NotApprovedError(MarketRejectedError):
    """The action needs an approval (veto window, passed proposal) it does not have yet."""

    code = "NotApproved"
    status = 409


class EpochOpenError(MarketRejectedError):
    """The epoch has not ended yet, or was already settled."""

    code = "EpochNotClosed"
    status = 409


class TreasuryPortError(MarketRejectedError):
    """The treasury refused a posting (unknown account, unbalanced, overdrawn)."""

    code = "TreasuryError"


class WrongRegionError(MarketRejectedError):
    """The provider does not serve the region asked for."""

    code = "WrongRegion"
