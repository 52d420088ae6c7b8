"""Errors of the DAO (``plaza.dao``).

:class:`RuleViolationError` and its subclasses say a well-formed request is not allowed
in the current state (not a member, already voted, window closed, over budget); they are
also :class:`~plaza.ledger.errors.EventRejectedError`, so ``plaza ledger verify`` names a
logged event that breaks a rule with the same code a live command would have raised.
Malformed documents and files (a mandate, a constitution, a ballot file) raise
:class:`InvalidDocumentError` subclasses.
"""

from __future__ import annotations

from plaza.errors import InvalidInputError, PlazaError
from plaza.ledger.errors import EventRejectedError


class DaoError(PlazaError):
    """Root of the DAO's errors."""

    code = "DaoError"
    status = 400


class InvalidDocumentError(DaoError, InvalidInputError):
    """A governance document or input file is malformed."""

    code = "InvalidDocument"
    status = 400


class MandateError(InvalidDocumentError):
    """A mandate document does not match the mandate schema."""

    code = "InvalidMandate"


class ConstitutionError(InvalidDocumentError):
    """A constitution document does not match its schema."""

    code = "InvalidConstitution"


class ActionError(InvalidDocumentError):
    """An action value is malformed (kind syntax, negative amount, non-data-model params)."""

    code = "InvalidAction"


class BallotFileError(InvalidDocumentError):
    """A ballot file for ``plaza dao tally`` is malformed as a whole."""

    code = "InvalidBallotFile"


class RuleViolationError(DaoError, EventRejectedError):
    """A well-formed command or event is not allowed in the current DAO state."""

    code = "RuleViolation"
    status = 422


class NotMemberError(RuleViolationError):
    """The author is not a current member (or not eligible for this proposal)."""

    code = "NotMember"
    status = 403


class NotAllowedError(RuleViolationError):
    """The author may not do this (role, vouching rights, proposer rules)."""

    code = "Forbidden"
    status = 403


class UnknownEventError(RuleViolationError):
    """A ``dao.*`` event type this version does not know."""

    code = "UnknownEventType"


class IdentityProofError(NotAllowedError):
    """A DID would be bound to a key without proof from the DID's own document."""

    code = "InvalidIdentityProof"
    status = 403


class StaleProofError(IdentityProofError):
    """An identity proof does not end at the DID's current operation in the directory."""

    code = "StaleIdentityProof"
    status = 409


class EventTimeError(DaoError, InvalidInputError):
    """An event submitted to the API is not timed near the server's clock."""

    code = "InvalidEventTime"
    status = 400


class PayloadTooLargeError(DaoError, InvalidInputError):
    """A request body is larger than the API accepts."""

    code = "PayloadTooLarge"
    status = 413


class InvalidPayloadError(RuleViolationError):
    """An event payload is missing a field or has one of the wrong type."""

    code = "InvalidPayload"
    status = 400


class NotFoundInStateError(RuleViolationError):
    """The proposal, member or account named does not exist."""

    code = "NotFound"
    status = 404


class ProposalClosedError(RuleViolationError):
    """The proposal's window is closed (or not yet open) for this step."""

    code = "ProposalClosed"
    status = 409


class DuplicateVoteError(RuleViolationError):
    """This member already voted (or vetoed) on this proposal."""

    code = "AlreadyVoted"
    status = 409


class InvalidBallotError(RuleViolationError):
    """A ballot does not fit the proposal's method (unknown choice, over-spent credits)."""

    code = "InvalidBallot"
    status = 400


class TreasuryError(RuleViolationError):
    """A posting would break the books (unknown account, unbalanced, overdrawn)."""

    code = "TreasuryError"


class DuplicatePaymentError(RuleViolationError):
    """Income with this payment reference is already in the books."""

    code = "DuplicatePayment"
    status = 409


class MandateDeniedError(RuleViolationError):
    """The mandate guard denied an agent action."""

    code = "MandateDenied"
    status = 403


class ActionMismatchError(RuleViolationError):
    """What is being executed does not hash to what was proposed."""

    code = "ActionMismatch"
    status = 409


class MotionNotRefusedError(RuleViolationError):
    """A motion cannot lapse: the mandate guard would still let it execute."""

    code = "MotionNotRefused"
    status = 409
