"""Why a did:plc operation or audit log is refused.

Every class derives from :class:`plaza.atproto.errors.PlcError`, so callers that only
care that "the PLC input was bad" catch that one name. The subclasses exist because the
directory must tell a submitter *which* rule failed, and each carries its own stable
``code``. All of them mean "nothing was changed".
"""

from __future__ import annotations

from plaza.atproto.errors import PlcError


class PlcTooLargeError(PlcError):
    """The operation's DAG-CBOR encoding exceeds the protocol's size limit."""

    code = "OperationTooLarge"


class PlcSignatureError(PlcError):
    """The ``sig`` is not strict base64url of a raw low-S signature by an allowed key."""

    code = "InvalidSignature"


class PlcKeyPriorityError(PlcSignatureError):
    """A fork was signed by a rotation key without priority over the key it would overrule."""

    code = "InsufficientKeyPriority"


class PlcLateRecoveryError(PlcError):
    """A fork would nullify an operation older than the 72-hour recovery window."""

    code = "LateRecovery"


class PlcGenesisError(PlcError):
    """A genesis operation does not hash to the DID it was submitted for."""

    code = "GenesisHashMismatch"


class PlcOrderError(PlcError):
    """The operation does not fit where it claims to in the DID's history."""

    code = "MisorderedOperation"


class PlcPrevNotFoundError(PlcOrderError):
    """``prev`` names no operation of this DID."""

    code = "PrevNotFound"


class PlcPrevNullifiedError(PlcOrderError):
    """``prev`` names an operation that a recovery has nullified."""

    code = "PrevNullified"


class PlcTombstonedError(PlcOrderError):
    """``prev`` is a tombstone: a deactivated DID takes no further operations."""

    code = "DidTombstoned"


class PlcDidExistsError(PlcOrderError):
    """A genesis operation was submitted for a DID that already has a history."""

    code = "DidAlreadyExists"


class PlcDidNotFoundError(PlcError):
    """An update or tombstone was submitted for a DID with no history."""

    code = "DidNotFound"
    status = 404


class PlcAuditLogError(PlcError):
    """An audit log's entries disagree with what replaying its operations derives."""

    code = "InvalidAuditLog"


__all__ = [
    "PlcAuditLogError",
    "PlcDidExistsError",
    "PlcDidNotFoundError",
    "PlcError",
    "PlcGenesisError",
    "PlcKeyPriorityError",
    "PlcLateRecoveryError",
    "PlcOrderError",
    "PlcPrevNotFoundError",
    "PlcPrevNullifiedError",
    "PlcSignatureError",
    "PlcTombstonedError",
    "PlcTooLargeError",
]
