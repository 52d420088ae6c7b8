"""Errors of the AT Protocol core (``plaza.atproto``).

Split the way h11 splits them: the input was malformed (a decode or syntax error), or
the input was well formed but fails verification (a hash, a signature, a structure
rule). Every reader raises one of these on bad bytes, never a bare ``ValueError``.
"""

from __future__ import annotations

from plaza.errors import InvalidInputError


class AtprotoError(InvalidInputError):
    """Root of the protocol core's errors."""

    code = "InvalidRequest"
    status = 400


class InvalidSyntaxError(AtprotoError):
    """A string identifier (handle, DID, NSID, TID, record key, AT-URI, ...) is invalid."""

    code = "InvalidSyntax"


class CryptoError(AtprotoError):
    """A key or signature is malformed."""

    code = "InvalidKey"


class BadSignatureError(CryptoError):
    """A signature does not verify against the expected key."""

    code = "BadSignature"


class DecodeError(AtprotoError):
    """Bytes are not valid (strict, canonical) DAG-CBOR or atproto JSON."""

    code = "DecodeError"


class EncodeError(AtprotoError):
    """A value cannot be represented in the atproto data model (floats, non-str keys, ...)."""

    code = "EncodeError"


class InvalidCidError(DecodeError):
    """A CID is malformed or uses an unsupported version, codec or hash."""

    code = "InvalidCid"


class CarError(DecodeError):
    """A CAR file is malformed."""

    code = "InvalidCar"


class BlockHashMismatchError(CarError):
    """A block's bytes do not hash to the CID it is stored under."""

    code = "BlockHashMismatch"


class MissingBlockError(AtprotoError):
    """A block that the structure links to is not present."""

    code = "MissingBlock"


class CarRootError(CarError):
    """The CAR's root is absent from the file, or there is not exactly one root."""

    code = "InvalidRoot"


class MstError(AtprotoError):
    """A Merkle Search Tree node or structure violates the repository spec."""

    code = "InvalidMst"


class CommitError(AtprotoError):
    """A repository commit is malformed or fails verification."""

    code = "InvalidCommit"


class InversionError(CommitError):
    """A sync v1.1 ``#commit`` whose ops, undone on its slice, do not lead back to its
    ``prevData``."""

    code = "InvalidInversion"


class PlcError(AtprotoError):
    """A did:plc operation or audit log is invalid."""

    code = "InvalidPlcOperation"


class LexiconError(AtprotoError):
    """A Lexicon schema document is invalid."""

    code = "InvalidLexicon"


class InvalidRecordError(AtprotoError):
    """A record does not match its Lexicon."""

    code = "InvalidRecord"


class RepoWriteError(AtprotoError):
    """A write to a repository is not allowed (bad path, too many writes, bad record)."""

    code = "InvalidRequest"


class RecordExistsError(RepoWriteError):
    """A create names a record path that already holds a record."""


class RecordNotFoundError(RepoWriteError):
    """An update or delete names a record path that holds no record."""

    code = "RecordNotFound"
    status = 404
