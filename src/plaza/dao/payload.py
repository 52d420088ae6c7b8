"""The DAO's event payloads and proposal effects as typed, strict pydantic models.

Every field is typed and bounded, optional fields have defaults, and unknown fields
are refused (:class:`~plaza.ledger.handlers.EventPayload`). A payload that does not
parse is an :class:`~plaza.dao.errors.InvalidPayloadError` naming the event type and
the field (``dao.vote.cast: missing field 'proposal'``). The rules that need the state
(is this proposal type known, is this DID a member) live with the handlers.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Final, Literal, TypeVar

from annotated_types import MaxLen
from pydantic import AfterValidator, BaseModel, Field, StringConstraints, ValidationError

from plaza.dao.action import MAX_AMOUNT
from plaza.dao.errors import InvalidPayloadError
from plaza.ledger.handlers import EventPayload, describe_payload_error

_DID_RE: Final = re.compile(r"^did:[a-z]+:[A-Za-z0-9._:%-]*[A-Za-z0-9._-]$")
MAX_INT: Final = 2**63 - 1
MAX_CHOICES: Final = 100

M = TypeVar("M", bound=BaseModel)


def valid_did(value: object) -> bool:
    return isinstance(value, str) and len(value) <= 2048 and _DID_RE.match(value) is not None


def _did(value: str) -> str:
    if not valid_did(value):
        raise ValueError("must be a DID")
    return value


Did = Annotated[str, AfterValidator(_did)]
Count = Annotated[int, Field(ge=0, le=MAX_INT)]


Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Map = dict[str, Any]


def parse(model: type[M], value: object, where: str) -> M:
    """``value`` as ``model``, or :class:`InvalidPayloadError` naming ``where`` and the field."""
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        raise InvalidPayloadError(describe_payload_error(where, exc)) from exc


# -- membership ------------------------------------------------------------------------
class Genesis(EventPayload):
    constitution: Map
    mandate: Map
    founders: Annotated[list[Name], Field(max_length=100)]
    keys: Map = Field(default_factory=dict)
    proofs: Map = Field(default_factory=dict)
    opening: Count = 0


class IdentityRegistered(EventPayload):
    did: Did
    role: Literal["person", "agent", "provider"]
    proof: Map | None = None


class RoleGranted(EventPayload):
    did: Did
    role: Literal["agent", "provider"]


class MemberNamed(EventPayload):
    """``dao.member.vouched`` and ``dao.member.admitted``: the candidate."""

    member: Did


class Attested(EventPayload):
    member: Did
    kind: Annotated[str, MaxLen(100)]


class DelegationRevoked(EventPayload):
    scope: Literal["global", "topic", "proposal"]
    key: Annotated[str, MaxLen(100)] = ""


class DelegationSet(DelegationRevoked):
    delegate: Did
    expires: Count = 0


# -- proposals -------------------------------------------------------------------------
class ProposalCreated(EventPayload):
    type: Annotated[str, MaxLen(40)]
    title: Annotated[str, MaxLen(300)]
    body: Annotated[str, MaxLen(20_000)] = ""
    choices: Annotated[list[Name], Field(max_length=MAX_CHOICES)] = Field(default_factory=list)
    effect: Map | None = None
    effects: Map = Field(default_factory=dict)


class VoteCast(EventPayload):
    proposal: Count
    ballot: Map


class ConvictionStaked(EventPayload):
    proposal: Count
    points: Count


class ProposalNamed(EventPayload):
    """``dao.proposal.executed`` and ``dao.proposal.cancelled``."""

    proposal: Count


# -- agents ----------------------------------------------------------------------------
class AgentAction(EventPayload):
    """``dao.action.denied`` and ``dao.motion.opened``."""

    action: Map
    reason: Annotated[str, MaxLen(2000)]


class ActionExecuted(AgentAction):
    motion: Count = -1  # absent: under the mandate; present: the motion it executes


class MotionLapsed(EventPayload):
    motion: Count
    reason: Annotated[str, MaxLen(2000)]


class MotionVetoed(EventPayload):
    motion: Count


class TreasuryReceived(EventPayload):
    kind: Literal["dues", "donation", "grant"]  # the keys of treasury.INCOME_KINDS
    amount: Annotated[int, Field(ge=1, le=MAX_AMOUNT)]
    currency: Annotated[str, MaxLen(24)]
    from_: Annotated[str, MaxLen(300)] = Field(alias="from")
    ref: Annotated[str, MaxLen(200)]
    memo: Annotated[str, MaxLen(500)] = ""


# -- proposal effects, by what the proposal type executes --------------------------------
class ConstitutionEffect(EventPayload):
    constitution: Map


class MandateEffect(EventPayload):
    mandate: Map


class SpendEffect(EventPayload):
    """A ``budget`` or ``treasury`` payment."""

    amount: Annotated[int, Field(ge=1, le=MAX_INT)]
    payee: Annotated[str, MaxLen(300)]
    category: Annotated[str, MaxLen(60)] = "grants"
    memo: Annotated[str, MaxLen(500)] = ""


class ContractEffect(EventPayload):
    contract: Annotated[str, MaxLen(200)]
    provider: Did
    terms: Map | None = None


class AdmissionEffect(EventPayload):
    member: Did


class RemovalEffect(EventPayload):
    member: Did
    fake: bool = False


class DisputeEffect(EventPayload):
    subject: Annotated[str, MaxLen(500)]
    claimant: Did = "did:web:unknown"
    respondent: Did = "did:web:unknown"
    claim: Map | None = None


class AgentActionEffect(EventPayload):
    action: Map
    reason: Annotated[str, MaxLen(2000)] = ""


EFFECTS: Final[dict[str, type[EventPayload]]] = {
    "constitution": ConstitutionEffect,
    "mandate": MandateEffect,
    "budget": SpendEffect,
    "treasury": SpendEffect,
    "contract": ContractEffect,
    "admission": AdmissionEffect,
    "removal": RemovalEffect,
    "dispute": DisputeEffect,
    "agent-action": AgentActionEffect,
}
"""The effect model of each kind of execution (``signal`` executes nothing)."""
