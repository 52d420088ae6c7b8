"""Content identifiers (CIDv1) as the AT Protocol uses them.

atproto uses CIDv1 only, with the sha2-256 multihash and one of two codecs: ``dag-cbor``
(0x71) for records, MST nodes and commits, and ``raw`` (0x55) for blobs. The binary form
is ``0x01 codec 0x12 0x20 digest[32]``; the string form is multibase base32 lower
(``b…``). Other versions, codecs and hashes are rejected on decode.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Final

import libipld

from plaza.atproto.errors import InvalidCidError

DAG_CBOR: Final = 0x71
RAW: Final = 0x55
SHA2_256: Final = 0x12

_PREFIX_CBOR: Final = bytes((0x01, DAG_CBOR, SHA2_256, 0x20))
_PREFIX_RAW: Final = bytes((0x01, RAW, SHA2_256, 0x20))
_PREFIXES: Final = (_PREFIX_CBOR, _PREFIX_RAW)
CID_LENGTH: Final = 36


def _encode_cid(raw: bytes) -> str:
    # libipld renders the multibase base32 string 15x faster than base64.b32encode.
    out: str = libipld.encode_cid(raw)
    return out


class CID:
    """An immutable CIDv1 (sha2-256, dag-cbor or raw), compared and hashed by its bytes."""

    __slots__ = ("_hash", "_str", "raw")

    raw: bytes
    _hash: int
    _str: str | None

    def __init__(self, raw: bytes) -> None:
        if len(raw) != CID_LENGTH or raw[:4] not in _PREFIXES:
            raise InvalidCidError(f"unsupported or malformed CID bytes: {raw[:8].hex()}...")
        object.__setattr__(self, "raw", bytes(raw))
        object.__setattr__(self, "_hash", hash(raw))
        object.__setattr__(self, "_str", None)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("CID is immutable")

    @classmethod
    def _trusted(cls, raw: bytes) -> CID:
        # the slots' own setters cost half of object.__setattr__ (a hot path: every link
        # of every MST node decoded)
        obj = _new(cls)
        _set_raw(obj, raw)
        _set_hash(obj, hash(raw))
        _set_str(obj, None)
        return obj

    @classmethod
    def compute(cls, data: bytes, codec: int = DAG_CBOR) -> CID:
        """The CID of ``data`` under ``codec`` (dag-cbor by default, or raw for blobs)."""
        prefix = _PREFIX_CBOR if codec == DAG_CBOR else _PREFIX_RAW if codec == RAW else None
        if prefix is None:
            raise InvalidCidError(f"unsupported codec 0x{codec:x}")
        return cls._trusted(prefix + hashlib.sha256(data).digest())

    @classmethod
    def decode(cls, value: str | bytes) -> CID:
        """Parse a CID from its string form (``b…``) or its binary form."""
        if isinstance(value, bytes):
            return cls(value)
        if not isinstance(value, str) or not value.startswith("b") or len(value) != 59:
            raise InvalidCidError(f"not a base32 CIDv1 string: {str(value)[:80]!r}")
        body = value[1:]
        if body != body.lower():
            raise InvalidCidError(f"CID string must be lower-case base32: {value!r}")
        try:
            raw = base64.b32decode(body.upper() + "=" * (-len(body) % 8))
        except ValueError as exc:
            raise InvalidCidError(f"invalid base32 in CID: {value!r}") from exc
        cid = cls(raw)
        if str(cid) != value:  # non-zero padding bits would decode to the same bytes
            raise InvalidCidError(f"non-canonical CID string: {value!r}")
        return cid

    @property
    def codec(self) -> int:
        return self.raw[1]

    @property
    def digest(self) -> bytes:
        return self.raw[4:]

    def matches(self, data: bytes) -> bool:
        """True when ``data`` hashes to this CID."""
        return hashlib.sha256(data).digest() == self.raw[4:]

    def __str__(self) -> str:
        s = self._str
        if s is None:
            s = _encode_cid(self.raw)
            object.__setattr__(self, "_str", s)
        return s

    def __repr__(self) -> str:
        return f"CID({self!s})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CID) and other.raw == self.raw

    def __hash__(self) -> int:
        return self._hash

    def __lt__(self, other: CID) -> bool:
        return self.raw < other.raw

    def __reduce__(self) -> tuple[type[CID], tuple[bytes]]:
        return (CID, (self.raw,))


_new = object.__new__
_set_raw = CID.__dict__["raw"].__set__
_set_hash = CID.__dict__["_hash"].__set__
_set_str = CID.__dict__["_str"].__set__
