"""The payloads of the ``market.*`` events, as pydantic models.

Each event type has one model (see the table in :mod:`plaza.market.state`). Models are
the ledger's :class:`~plaza.ledger.handlers.EventPayload`: strict (an integer is an
``int``, never a ``bool`` or a numeric string), frozen, and refusing fields they do not
name, so a malformed payload is refused before any rule runs and changes nothing.

A signed document carried in a payload (``doc``) is typed ``Any`` here: its own parser
(:func:`~plaza.market.registry.parse_registration`,
:func:`~plaza.market.bidding.validate_bid` and so on) validates it together with its
signature.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, StringConstraints

from plaza.ledger.handlers import EventPayload as Payload
from plaza.market.fields import (
    Amount,
    Count,
    Did,
    Epoch,
    MarketId,
    Name,
    Reason,
    Text24,
    Text40,
    Text64,
    Text200,
    Text500,
    Text2000,
    Text2048,
)


class Doc(Payload):
    """A payload that carries one signed document."""

    doc: Any


class Opened(Payload):
    operator: Did
    params: Any
    currency: Text24


class ProviderStatus(Payload):
    provider: Did
    status: Name
    reason: Annotated[str, StringConstraints(min_length=1, max_length=1000)]


class RfbCreated(Payload):
    """A request for bids: the payload is the request itself
    (:func:`~plaza.market.rfb.parse_rfb` reads every field)."""

    model_config = ConfigDict(strict=True, frozen=True, extra="allow")
    id: MarketId


class AwardLineIn(Payload):
    """One line of an award; the score breakdown it also carries is the award's record,
    not checked here."""

    model_config = ConfigDict(strict=True, frozen=True, extra="ignore")
    bid: Text40
    allocated: Count
    verdict: Literal["allow", "optimistic", "vote", "deny", "skip"]
    window_s: Count = 0
    proposal_type: Text64 = ""


class AwardMade(Payload):
    rfb: MarketId
    mandate: Text64
    lines: list[AwardLineIn]


class ContractApproved(Payload):
    contract: MarketId
    by: Literal["mandate", "proposal"]
    proposal: Count = 0


class ContractEnded(Payload):
    contract: MarketId
    reason: Reason


class ContractReleased(Payload):
    contract: MarketId
    quantity: Amount
    reason: Reason


class InvoiceRef(Payload):
    """The fields of an issued invoice the checks start from (the whole map must then
    equal the invoice the evidence supports)."""

    model_config = ConfigDict(strict=True, frozen=True, extra="ignore")

    contract: MarketId
    epoch: Epoch


class InvoiceIssued(Payload):
    invoice: InvoiceRef
    postings: Any = Field(default_factory=list)


class EpochSettled(Payload):
    epoch: Epoch
    outcome: Any = None


class PaymentMade(Payload):
    invoice: MarketId
    amount: Amount
    postings: Any = None


class EscrowFunded(Payload):
    amount: Amount
    memo: Text500 = ""
    postings: Any = None


class BondReceived(Payload):
    provider: Did
    amount: Amount
    reference: Text200
    postings: Any = None


class BondMoved(Payload):
    """``market.bond.slashed`` and ``market.bond.released``."""

    provider: Did
    amount: Amount
    reason: Reason
    postings: Any = None


class NeedRaised(Payload):
    id: MarketId
    kind: Literal["reprocure", "migration"]
    service: Name
    provider: Text2048
    accounts: Count
    contracts: list[str]
    reason: Text2000


class DisputeOpened(Payload):
    id: MarketId
    doc: Any
    proposal: Count


class DisputeResolved(Payload):
    dispute: MarketId
    outcome: Literal["upheld", "rejected"]
    proposal: Count
    amount: Count
    postings: Any = Field(default_factory=list)
