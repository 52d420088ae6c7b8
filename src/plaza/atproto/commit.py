"""Signed repository commits (version 3, and reading version 2).

A commit is ``{did, version: 3, data: <MST root>, rev: <TID>, prev: <CID>|null, sig}``.
``prev`` must be present (usually null). To sign, the commit without ``sig`` is encoded
as DAG-CBOR and signed (ECDSA over SHA-256, raw low-S 64 bytes); the commit's CID is
over the signed encoding. Version 2 commits, still found in older exports, have the
same fields except that ``rev`` may be absent; they are accepted when reading.

Decoding a commit block takes libipld's decoder first (a relay decodes one per event):
the block is accepted on that path only if libipld encodes the decoded value back to
exactly the same bytes, which only canonical DAG-CBOR does, and if ``sig`` cannot be
taken for a link (libipld hands links back as bytes and writes bytes that parse as a
CID as a link). Anything else goes to the strict decoder, whose answer is final.
Encoding the unsigned commit for a signature uses libipld too: its only byte strings
are the links ``data`` and ``prev``, which it writes as links.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import libipld

from plaza.atproto import cbor, syntax
from plaza.atproto.cid import CID, DAG_CBOR
from plaza.atproto.crypto import PrivateKey, PublicKey
from plaza.atproto.errors import (
    BadSignatureError,
    CommitError,
    DecodeError,
    InvalidCidError,
    InvalidSyntaxError,
)

VERSION: Final = 3
MAX_COMMIT_BYTES: Final = 10_000

_FIELDS_V3: Final = frozenset({"did", "version", "data", "rev", "prev", "sig"})


def check_rev(rev: object) -> str:
    """Return ``rev`` if it is a TID string, else raise :class:`CommitError`."""
    try:
        if type(rev) is not str:
            raise InvalidSyntaxError("not a string")
        return syntax.validate_tid(rev)
    except InvalidSyntaxError as exc:
        raise CommitError(f"commit rev is not a TID: {str(rev)[:40]!r}") from exc


def check_did(did: object) -> str:
    """Return ``did`` if it has DID syntax, else raise :class:`CommitError`."""
    try:
        if type(did) is not str:
            raise InvalidSyntaxError("not a string")
        return syntax.validate_did(did)
    except InvalidSyntaxError as exc:
        raise CommitError(f"commit did is not a DID: {str(did)[:80]!r}") from exc


@dataclass(frozen=True)
class Commit:
    """A commit's fields. ``rev`` is None only for a version-2 commit without one."""

    did: str
    version: int
    data: CID
    rev: str | None
    prev: CID | None
    sig: bytes

    def unsigned_value(self) -> dict[str, Any]:
        """The data-model value that is signed: every field but ``sig``."""
        value: dict[str, Any] = {
            "did": self.did,
            "version": self.version,
            "data": self.data,
            "prev": self.prev,
        }
        if self.rev is not None:
            value["rev"] = self.rev
        return value

    def unsigned_bytes(self) -> bytes:
        """The signed bytes (see the module docstring for why libipld may write them)."""
        value = self.unsigned_value()
        value["data"] = self.data.raw
        if self.prev is not None:
            value["prev"] = self.prev.raw
        out: bytes = libipld.encode_dag_cbor(value)
        return out

    def encode(self) -> bytes:
        """The signed commit block."""
        return cbor.encode({**self.unsigned_value(), "sig": self.sig})


@dataclass(frozen=True)
class SignedCommit:
    """A commit with its block bytes and CID."""

    commit: Commit
    cid: CID
    bytes: bytes

    @property
    def rev(self) -> str:
        rev = self.commit.rev
        assert rev is not None, "only version-3 commits are created"
        return rev


def sign_commit(
    did: str, data: CID, rev: str, key: PrivateKey, prev: CID | None = None
) -> SignedCommit:
    """Build and sign a version-3 commit."""
    check_did(did)
    check_rev(rev)
    if type(data) is not CID or data.codec != DAG_CBOR:
        raise CommitError("commit data must be the dag-cbor CID of an MST root")
    unsigned = Commit(did, VERSION, data, rev, prev, b"")
    commit = Commit(did, VERSION, data, rev, prev, key.sign(unsigned.unsigned_bytes()))
    block = commit.encode()
    return SignedCommit(commit, CID.compute(block), block)


def verify_commit(commit: Commit, public_key: PublicKey) -> None:
    """Raise :class:`BadSignatureError` unless ``commit.sig`` verifies against the key."""
    if not public_key.verify(commit.unsigned_bytes(), commit.sig):
        raise BadSignatureError(
            f"commit signature for {commit.did} does not verify against {public_key.did_key()}"
        )


def _link(value: object, name: str, *, nullable: bool) -> CID | None:
    if value is None and nullable:
        return None
    if type(value) is not CID or value.codec != DAG_CBOR:
        raise CommitError(f"commit field {name} must be a dag-cbor CID link")
    return value


def decode_commit(block: bytes) -> Commit:
    """Decode a commit block with strict shape checks (:class:`CommitError`).

    Accepts version 3, and version 2 (where ``rev`` may be missing).
    """
    if len(block) > MAX_COMMIT_BYTES:
        raise CommitError(f"commit block is larger than {MAX_COMMIT_BYTES} bytes")
    value = _decode_fast(block)
    if value is None:
        try:
            value = cbor.decode(block)
        except DecodeError as exc:
            raise CommitError(f"commit is not valid DAG-CBOR: {exc.message}") from exc
    if type(value) is not dict:
        raise CommitError("commit must be a map")
    version = value.get("version")
    if type(version) is not int or version not in (2, 3):
        raise CommitError(f"unsupported commit version {version!r}")
    fields = set(value)
    required = _FIELDS_V3 if version == 3 else _FIELDS_V3 - {"rev"}
    if not required <= fields <= _FIELDS_V3:
        missing = sorted(required - fields)
        extra = sorted(fields - _FIELDS_V3)
        raise CommitError(f"commit fields wrong: missing {missing}, unexpected {extra}")
    sig = value["sig"]
    if type(sig) is not bytes or not sig:
        raise CommitError("commit sig must be a non-empty byte string")
    data = _link(value["data"], "data", nullable=False)
    assert data is not None
    return Commit(
        did=check_did(value["did"]),
        version=version,
        data=data,
        rev=check_rev(value["rev"]) if "rev" in value else None,
        prev=_link(value["prev"], "prev", nullable=True),
        sig=sig,
    )


_LINK_START: Final = (b"\x01", b"\x12")


def _decode_fast(block: bytes) -> Any:
    """The commit map by libipld, or None when only the strict decoder may judge
    (see the module docstring)."""
    try:
        value = libipld.decode_dag_cbor(block)
    except (ValueError, TypeError, OverflowError, RecursionError):
        return None
    if type(value) is not dict:
        return None
    sig = value.get("sig")
    if type(sig) is bytes and sig[:1] in _LINK_START:
        return None
    try:
        if libipld.encode_dag_cbor(value) != block:
            return None
        for name in ("data", "prev"):
            link = value.get(name)
            if type(link) is bytes:
                value[name] = CID(link)
    except (ValueError, TypeError, OverflowError, RecursionError, InvalidCidError):
        return None
    return value
