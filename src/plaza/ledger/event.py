"""Signed ledger events and their canonical bytes.

An event is ``(seq, prev_hash, time, author_did, type, payload, signature)``. Its
*signing bytes* are the DAG-CBOR encoding of the map ``{seq, prev, time, author, type,
payload}``; its *bytes* are the same map with ``sig`` added; its *hash* is the SHA-256 of
its bytes. Event ``n`` stores the hash of event ``n - 1`` in ``prev_hash`` (event 0
stores :data:`GENESIS_PREV`), so the log is a hash chain and the signature binds each
event to exactly one position in exactly one history: an old signed event cannot be
replayed elsewhere, because its ``seq`` and ``prev`` would not match.

``time`` is Unix time in integer milliseconds. ``payload`` is any atproto data-model map
(no floats); it is written with :mod:`plaza.atproto.cbor`, whose strict decoder also
guarantees that decoding and re-encoding stored bytes reproduces them exactly.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any, Final

from plaza.atproto import cbor
from plaza.atproto.crypto import PrivateKey
from plaza.atproto.errors import AtprotoError
from plaza.ledger.errors import InvalidEventError

GENESIS_PREV: Final = bytes(32)
"""The ``prev_hash`` of event 0."""

MAX_EVENT_BYTES: Final = 256 * 1024
MAX_TIME: Final = 2**53 - 1

_TYPE_RE: Final = re.compile(r"^[a-z][a-z0-9]*(\.[a-z][a-zA-Z0-9]*){1,7}$")
_DID_RE: Final = re.compile(r"^did:[a-z]+:[A-Za-z0-9._:%-]*[A-Za-z0-9._-]$")
_FIELDS: Final = frozenset({"seq", "prev", "time", "author", "type", "payload", "sig"})


def validate_type(type_: str) -> str:
    """An event type is a dotted lower-case name such as ``dao.vote.cast`` (max 128)."""
    if not isinstance(type_, str) or len(type_) > 128 or not _TYPE_RE.match(type_):
        raise InvalidEventError(f"invalid event type {str(type_)[:80]!r}")
    return type_


def validate_did(did: str) -> str:
    """A DID in the generic ``did:method:id`` syntax (max 2048 characters)."""
    if not isinstance(did, str) or len(did) > 2048 or not _DID_RE.match(did):
        raise InvalidEventError(f"invalid author DID {str(did)[:80]!r}")
    return did


def _check_fields(m: dict[str, Any]) -> None:
    """Validate the unsigned fields of an event given as its data-model map."""
    seq, prev_hash, time = m["seq"], m["prev"], m["time"]
    if type(seq) is not int or seq < 0:
        raise InvalidEventError(f"seq must be a non-negative integer, got {seq!r}")
    if type(prev_hash) is not bytes or len(prev_hash) != 32:
        raise InvalidEventError("prev_hash must be 32 bytes")
    if type(time) is not int or not 0 <= time <= MAX_TIME:
        raise InvalidEventError(f"time must be Unix milliseconds, got {time!r}")
    validate_did(m["author"])
    validate_type(m["type"])
    if type(m["payload"]) is not dict:
        raise InvalidEventError("payload must be a map")


# In canonical DAG-CBOR the map keys sort by length, then bytewise: seq, sig, prev, time,
# type, author, payload. So an event's bytes are its signing bytes with the map header
# bumped from 6 to 7 entries and the "sig" entry spliced in right after "seq". Splicing
# instead of re-encoding saves two of the three encodings an append would otherwise do.
_SEQ_KEY: Final = cbor.encode("seq")
_SIG_KEY: Final = cbor.encode("sig")


def _sig_offset(seq: int) -> int:
    return 1 + len(_SEQ_KEY) + len(cbor.encode(seq))


def _with_sig(signing: bytes, seq: int, sig: bytes) -> bytes:
    at = _sig_offset(seq)
    assert signing[0] == 0xA6 and signing[1 : 1 + len(_SEQ_KEY)] == _SEQ_KEY
    return b"\xa7" + signing[1:at] + _SIG_KEY + cbor.encode(sig) + signing[at:]


def _without_sig(raw: bytes, seq: int, sig: bytes) -> bytes:
    at = _sig_offset(seq)
    entry = _SIG_KEY + cbor.encode(sig)
    if raw[0] != 0xA7 or raw[at : at + len(entry)] != entry:
        raise InvalidEventError("event bytes are not in canonical field order")
    return b"\xa6" + raw[1:at] + raw[at + len(entry) :]


@dataclass(frozen=True, slots=True, eq=True)
class Event:
    """One signed, hash-chained ledger event. Build with :func:`sign_event` or
    :meth:`Event.decode`; both validate every field."""

    seq: int
    prev_hash: bytes
    time: int
    author_did: str
    type: str
    payload: dict[str, Any] = field(hash=False)
    signature: bytes
    raw: bytes = field(repr=False, compare=False)
    hash: bytes = field(repr=False, compare=False)
    signed: bytes = field(repr=False, compare=False, default=b"")

    def signing_bytes(self) -> bytes:
        """The bytes the author signed."""
        return self.signed or cbor.encode(self._unsigned())

    def _unsigned(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "prev": self.prev_hash,
            "time": self.time,
            "author": self.author_did,
            "type": self.type,
            "payload": self.payload,
        }

    @classmethod
    def decode(cls, raw: bytes) -> Event:
        """Parse stored bytes; raises :class:`InvalidEventError` if they are not a
        canonical, complete event."""
        if len(raw) > MAX_EVENT_BYTES:
            raise InvalidEventError(f"event is {len(raw)} bytes, over {MAX_EVENT_BYTES}")
        try:
            value = cbor.decode(raw)
        except AtprotoError as exc:
            raise InvalidEventError(f"event bytes are not canonical DAG-CBOR: {exc}") from exc
        if type(value) is not dict or set(value) != _FIELDS:
            raise InvalidEventError(
                f"event must be a map with exactly the fields {sorted(_FIELDS)}"
            )
        sig = value["sig"]
        if type(sig) is not bytes or len(sig) != 64:
            raise InvalidEventError("sig must be 64 bytes")
        _check_fields(value)
        return cls(
            seq=value["seq"],
            prev_hash=value["prev"],
            time=value["time"],
            author_did=value["author"],
            type=value["type"],
            payload=value["payload"],
            signature=sig,
            raw=bytes(raw),
            hash=hashlib.sha256(raw).digest(),
            signed=_without_sig(bytes(raw), value["seq"], sig),
        )

    def to_map(self) -> dict[str, Any]:
        """The event as a data-model map (the value its bytes encode)."""
        out = self._unsigned()
        out["sig"] = self.signature
        return out

    @classmethod
    def from_map(cls, value: Any) -> Event:
        """Build from a data-model map (for example decoded atproto JSON); the result's
        bytes are the canonical encoding of ``value``."""
        if type(value) is not dict:
            raise InvalidEventError("event must be a map")
        try:
            raw = cbor.encode(value)
        except AtprotoError as exc:
            raise InvalidEventError(f"event is not a data-model value: {exc}") from exc
        return cls.decode(raw)


def sign_event(
    key: PrivateKey,
    *,
    seq: int,
    prev_hash: bytes,
    time: int,
    author_did: str,
    type: str,
    payload: dict[str, Any],
) -> Event:
    """Build and sign an event with ``key`` (which must be a key of ``author_did`` for the
    ledger to accept it)."""
    unsigned: dict[str, Any] = {
        "seq": seq,
        "prev": prev_hash,
        "time": time,
        "author": author_did,
        "type": type,
        "payload": payload,
    }
    _check_fields(unsigned)
    try:
        signing = cbor.encode(unsigned)
    except AtprotoError as exc:
        raise InvalidEventError(f"payload is not a data-model value: {exc}") from exc
    signature = key.sign(signing)
    raw = _with_sig(signing, seq, signature)
    if len(raw) > MAX_EVENT_BYTES:
        raise InvalidEventError(f"event is {len(raw)} bytes, over {MAX_EVENT_BYTES}")
    return Event(
        seq=seq,
        prev_hash=prev_hash,
        time=time,
        author_did=author_did,
        type=type,
        payload=payload,
        signature=signature,
        raw=raw,
        hash=hashlib.sha256(raw).digest(),
        signed=signing,
    )
