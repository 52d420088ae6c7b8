"""The payloads of the ``market.*`` events, as pydantic models.

Each event type has one model (see the table in :mod:`plaza.market.state`). Models are
strict (an integer is an ``int``, never a ``bool`` or a numeric string), frozen, and
ignore fields they do not name. :func:`parse` turns a validation failure into a
:class:`~plaza.market.errors.MarketInputError` naming the event type and the field, so
a malformed payload is refused before any rule runs and changes nothing.

A signed document carried in a payload (``doc``) is typed ``Any`` here: its own parser
(:func:`~plaza.market.registry.parse_registration`, :func:`~plaza.market.bids.parse_bid`
and so on) validates it together with its signature.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Final, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from plaza.market.errors import MarketInputError

MAX_INT: Final = 2**63 - 1
DID_PATTERN: Final = r"^did:[a-z]+:[A-Za-z0-9._:%-]*[A-Za-z0-9._-]$"
ID_PATTERN: Final = r"^[a-z][a-z0-9-]{0,63}$"

Did = Annotated[str, StringConstraints(max_length=2048, pattern=DID_PATTERN)]
MarketId = Annotated[str, StringConstraints(max_length=64, pattern=ID_PATTERN)]
Count = Annotated[int, Field(ge=0, le=MAX_INT)]
Amount = Annotated[int, Field(ge=1, le=MAX_INT)]
Epoch = Annotated[int, Field(ge=0, le=10**9)]
Reason = Annotated[str, StringConstraints(max_length=1000)]
Name = Annotated[str, StringConstraints(max_length=16)]
Text24 = Annotated[str, StringConstraints(max_length=24)]
Text64 = Annotated[str, StringConstraints(max_length=64)]
Text200 = Annotated[str, StringConstraints(max_length=200)]
Text500 = Annotated[str, StringConstraints(max_length=500)]
Text2000 = Annotated[str, StringConstraints(max_length=2000)]
Text2048 = Annotated[str, StringConstraints(max_length=2048)]


class Payload(BaseModel):
    """Base of every payload model."""

    model_config = ConfigDict(strict=True, frozen=True, extra="ignore")


M = TypeVar("M", bound=BaseModel)


def parse(model: type[M], value: Mapping[str, Any], what: str) -> M:
    """Validate ``value`` as ``model``; raise :class:`MarketInputError` naming ``what``
    and the first bad field."""
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        raise MarketInputError(describe(exc, what)) from None


def describe(exc: ValidationError, what: str) -> str:
    """One line for the first error of ``exc``: ``what.field: reason``."""
    err = exc.errors(include_url=False)[0]
    loc = ".".join(str(x) for x in err["loc"])
    if err["type"] == "missing":
        return f"{what} is missing {loc!r}"
    where = f"{what}.{loc}" if loc else what
    got = repr(err.get("input"))[:80]
    return f"{where}: {err['msg'].lower()}, got {got}"


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
    bid: Annotated[str, StringConstraints(max_length=40)]
    allocated: Count
    verdict: Literal["allow", "optimistic", "vote", "deny", "skip"]
    window_s: Count = 0
    proposal_type: Text64 = ""


class AwardMade(Payload):
    rfb: MarketId
    mandate: Text64
    lines: list[AwardLineIn]


class ContractRef(Payload):
    """The contract a payload or document names."""

    contract: MarketId


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

    contract: MarketId
    epoch: Epoch


class InvoiceIssued(Payload):
    invoice: InvoiceRef
    postings: Any = []


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
    postings: Any = []
