"""Errors of the ledger (``plaza.ledger``).

Three families: the caller lost a race for a log position (:class:`AppendConflictError`,
a :class:`~plaza.errors.ConflictError`), an event or checkpoint is malformed or fails
verification (:class:`InvalidEventError` and its subclasses), and a projection refused
an event that is well formed but illegal in the current state
(:class:`EventRejectedError`). Every append that raises leaves the log unchanged.
"""

from __future__ import annotations

from plaza.errors import ConflictError, InvalidInputError, NotFoundError, PlazaError


class LedgerError(PlazaError):
    """Root of the ledger's errors."""

    code = "LedgerError"
    status = 400


class AppendConflictError(LedgerError, ConflictError):
    """Another writer already holds the log position this event was built for.

    Nothing was written. Re-read the head, rebuild (and re-sign) the event at the new
    position, and try again.
    """

    code = "AppendConflict"
    status = 409

    def __init__(self, message: str, *, seq: int | None = None, head: int | None = None) -> None:
        super().__init__(message)
        self.seq = seq
        self.head = head


class InvalidEventError(LedgerError, InvalidInputError):
    """An event is malformed, out of sequence, or does not link to its predecessor."""

    code = "InvalidEvent"
    status = 400


class UnknownAuthorError(InvalidEventError):
    """No signing key is known for the event's author DID."""

    code = "UnknownAuthor"
    status = 401


class EventSignatureError(InvalidEventError):
    """The event's signature does not verify against any key of its author."""

    code = "BadSignature"
    status = 401


class EventRejectedError(LedgerError):
    """A projection refused a well-formed event: it is not legal in the current state."""

    code = "EventRejected"
    status = 422


class CheckpointError(LedgerError):
    """A checkpoint is malformed, badly signed, or does not match the events it covers."""

    code = "InvalidCheckpoint"


class ProofError(LedgerError):
    """A Merkle inclusion or consistency proof is malformed or does not verify."""

    code = "InvalidProof"


class ArchiveError(LedgerError, InvalidInputError):
    """An exported ledger file is malformed; ``seq`` names the event line, if any."""

    code = "InvalidArchive"

    def __init__(self, message: str, *, seq: int | None = None) -> None:
        super().__init__(message)
        self.seq = seq


class EventNotFoundError(LedgerError, NotFoundError):
    """No event exists at the requested position."""

    code = "EventNotFound"
    status = 404


class KeystoreError(LedgerError):
    """The local keystore file is missing, malformed, or lacks the requested key."""

    code = "KeystoreError"
