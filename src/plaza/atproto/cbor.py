"""DAG-CBOR, the binary encoding of the atproto data model.

Theory of operation. The encoder is the only writer of repository bytes, so it must be
deterministic and must never guess: a CID link is a :class:`~plaza.atproto.cid.CID`
object and is written as tag 42, and ``bytes`` are always written as a byte string.
(libipld's encoder decides by looking at the bytes, which mis-encodes about one random
64-byte signature in 1,100.) Map keys are text, sorted by encoded length and then
bytewise; integers take their shortest form; floats are not part of the atproto data
model and are refused.

The decoder is strict in the same way: it refuses indefinite lengths, non-minimal
integer and length encodings, unsorted or duplicate map keys, non-text keys, floats,
``undefined``, tags other than 42, trailing bytes, and nesting deeper than
:data:`MAX_DEPTH`. Every refusal is a :class:`~plaza.atproto.errors.DecodeError`.

:func:`decode_fast` gives exactly what :func:`decode` gives, value or error, several
times faster on what a firehose carries: libipld decodes, and its answer is taken only
when libipld encodes it back to the very same bytes (which only canonical DAG-CBOR
does) and every value in it is one the strict decoder would return alike. libipld hands
CID links back as plain ``bytes`` and writes back as a link any ``bytes`` that parse as
a CID, so after an exact round trip a byte string that is a CID atproto accepts was a
link; any other byte string that could be a CID (first byte 0x01 or 0x12), a float, an
integer out of range or nesting too deep sends the input to the strict decoder, whose
answer is final.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any, Final

import libipld

from plaza.atproto.cid import CID
from plaza.atproto.errors import DecodeError, EncodeError, InvalidCidError

MAX_DEPTH: Final = 128
_INT_MIN: Final = -(2**63)
_INT_MAX: Final = 2**64 - 1

_KEY_CACHE: dict[str, bytes] = {}
_KEY_CACHE_MAX: Final = 4096
_pack_B = struct.Struct(">BB").pack
_pack_H = struct.Struct(">BH").pack
_pack_I = struct.Struct(">BI").pack
_pack_Q = struct.Struct(">BQ").pack


def _head(major: int, n: int) -> bytes:
    m = major << 5
    if n < 24:
        return bytes((m | n,))
    if n < 0x100:
        return _pack_B(m | 24, n)
    if n < 0x10000:
        return _pack_H(m | 25, n)
    if n < 0x100000000:
        return _pack_I(m | 26, n)
    return _pack_Q(m | 27, n)


def _key(k: object) -> bytes:
    if not isinstance(k, str):
        raise EncodeError(f"map keys must be strings, got {type(k).__name__}")
    enc = _KEY_CACHE.get(k)
    if enc is None:
        raw = k.encode("utf-8")
        enc = _head(3, len(raw)) + raw
        if len(_KEY_CACHE) < _KEY_CACHE_MAX:
            _KEY_CACHE[k] = enc
    return enc


def _sort_key(item: tuple[bytes, Any]) -> tuple[int, bytes]:
    return (len(item[0]), item[0])


def _enc(value: Any, out: bytearray, depth: int) -> None:
    t = type(value)
    if t is str:
        raw = value.encode("utf-8")
        out += _head(3, len(raw))
        out += raw
    elif t is dict:
        if depth > MAX_DEPTH:
            raise EncodeError("value nested too deeply")
        out += _head(5, len(value))
        items = [(_key(k), v) for k, v in value.items()]
        items.sort(key=_sort_key)
        for k, v in items:
            out += k
            _enc(v, out, depth + 1)
    elif t is int:
        if value >= 0:
            if value > _INT_MAX:
                raise EncodeError(f"integer out of range: {value}")
            out += _head(0, value)
        else:
            if value < _INT_MIN:
                raise EncodeError(f"integer out of range: {value}")
            out += _head(1, -1 - value)
    elif t is CID:
        out += b"\xd8\x2a\x58\x25\x00"
        out += value.raw
    elif t is list or t is tuple:
        if depth > MAX_DEPTH:
            raise EncodeError("value nested too deeply")
        out += _head(4, len(value))
        for v in value:
            _enc(v, out, depth + 1)
    elif t is bytes:
        out += _head(2, len(value))
        out += value
    elif value is None:
        out += b"\xf6"
    elif t is bool:
        out += b"\xf5" if value else b"\xf4"
    elif t is float:
        raise EncodeError("floats are not allowed in the atproto data model")
    else:
        raise EncodeError(f"cannot encode {t.__name__} as DAG-CBOR")


def encode(value: Any) -> bytes:
    """Encode a data-model value (None, bool, int, str, bytes, list, dict, CID) as DAG-CBOR."""
    out = bytearray()
    _enc(value, out, 0)
    return bytes(out)


def encode_with_cid(value: Any) -> tuple[CID, bytes]:
    """Encode ``value`` and return ``(cid, bytes)``."""
    data = encode(value)
    return CID.compute(data), data


def cid_of(value: Any) -> CID:
    """The dag-cbor CID of a data-model value."""
    return CID.compute(encode(value))


class _Decoder:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data = data
        self.pos = pos

    def fail(self, msg: str) -> DecodeError:
        return DecodeError(f"invalid DAG-CBOR at byte {self.pos}: {msg}")

    def take(self, n: int) -> bytes:
        p = self.pos
        end = p + n
        if end > len(self.data):
            raise self.fail("unexpected end of data")
        self.pos = end
        return self.data[p:end]

    def head(self) -> tuple[int, int]:
        data = self.data
        p = self.pos
        if p >= len(data):
            raise self.fail("unexpected end of data")
        ib = data[p]
        major = ib >> 5
        info = ib & 0x1F
        self.pos = p + 1
        if info < 24:
            return major, info
        if info == 24:
            n = self.take(1)[0]
            if n < 24 and major != 7:
                raise self.fail("non-minimal integer encoding")
            return major, n
        if info == 25:
            n = int.from_bytes(self.take(2), "big")
            if n < 0x100 and major != 7:
                raise self.fail("non-minimal integer encoding")
            return major, n
        if info == 26:
            n = int.from_bytes(self.take(4), "big")
            if n < 0x10000 and major != 7:
                raise self.fail("non-minimal integer encoding")
            return major, n
        if info == 27:
            n = int.from_bytes(self.take(8), "big")
            if n < 0x100000000 and major != 7:
                raise self.fail("non-minimal integer encoding")
            return major, n
        if info == 31:
            raise self.fail("indefinite-length items are not allowed")
        raise self.fail(f"reserved additional information {info}")

    def value(self, depth: int) -> Any:
        start = self.pos
        major, n = self.head()
        if major == 0:
            return n
        if major == 1:
            if n > 2**63 - 1:
                raise self.fail("negative integer out of range")
            return -1 - n
        if major == 2:
            return self.take(n)
        if major == 3:
            try:
                return self.take(n).decode("utf-8")
            except UnicodeDecodeError as exc:
                raise self.fail("text is not valid UTF-8") from exc
        if major == 4:
            if depth >= MAX_DEPTH:
                raise self.fail("nested too deeply")
            if n > len(self.data) - self.pos:
                raise self.fail("array longer than the data")
            return [self.value(depth + 1) for _ in range(n)]
        if major == 5:
            if depth >= MAX_DEPTH:
                raise self.fail("nested too deeply")
            if n > len(self.data) - self.pos:
                raise self.fail("map longer than the data")
            out: dict[str, Any] = {}
            prev: bytes | None = None
            for _ in range(n):
                kstart = self.pos
                kmajor, klen = self.head()
                if kmajor != 3:
                    raise self.fail("map keys must be text strings")
                kraw = self.take(klen)
                enc = self.data[kstart : self.pos]
                if prev is not None and (len(enc), enc) <= (len(prev), prev):
                    raise self.fail("map keys are not in canonical order or are duplicated")
                prev = enc
                try:
                    key = kraw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise self.fail("map key is not valid UTF-8") from exc
                out[key] = self.value(depth + 1)
            return out
        if major == 6:
            if n != 42:
                raise self.fail(f"tag {n} is not allowed (only 42, CID links)")
            bmajor, blen = self.head()
            if bmajor != 2:
                raise self.fail("tag 42 must wrap a byte string")
            body = self.take(blen)
            if not body or body[0] != 0:
                raise self.fail("CID link must start with the 0x00 multibase prefix")
            try:
                return CID(body[1:])
            except InvalidCidError as exc:
                raise DecodeError(f"invalid CID link at byte {start}: {exc.message}") from exc
        # major 7: only false, true and null belong to the data model
        info = self.data[start] & 0x1F
        if info in (25, 26, 27):
            raise self.fail("floats are not allowed in the atproto data model")
        if info == 20:
            return False
        if info == 21:
            return True
        if info == 22:
            return None
        raise self.fail(f"simple value {n} is not allowed")


def decode(data: bytes) -> Any:
    """Decode exactly one strict DAG-CBOR value; trailing bytes are an error."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise DecodeError(f"expected bytes, got {type(data).__name__}")
    dec = _Decoder(bytes(data))
    value = dec.value(0)
    if dec.pos != len(dec.data):
        raise dec.fail("trailing bytes after the value")
    return value


def decode_first(data: bytes, offset: int = 0) -> tuple[Any, int]:
    """Decode one value starting at ``offset``; return it and the offset just past it."""
    dec = _Decoder(bytes(data), offset)
    value = dec.value(0)
    return value, dec.pos


def decode_multi(data: bytes) -> Iterator[Any]:
    """Decode a concatenation of DAG-CBOR values (for example a firehose frame)."""
    data = bytes(data)
    pos = 0
    while pos < len(data):
        value, pos = decode_first(data, pos)
        yield value


class _Unsure(Exception):
    """libipld's answer may differ from the strict decoder's."""


_LIBIPLD_ERRORS: Final = (ValueError, TypeError, OverflowError, RecursionError)
_MAYBE_CID: Final = (b"\x01", b"\x12")


def decode_fast(data: bytes) -> Any:
    """Exactly :func:`decode`'s value or error, through libipld when it is exact (see
    the module docstring)."""
    if not isinstance(data, bytes):
        return decode(data)
    try:
        value = libipld.decode_dag_cbor(data)
        if libipld.encode_dag_cbor(value) != data:
            return decode(data)
        return _adopt(value, 0)
    except (_Unsure, *_LIBIPLD_ERRORS):
        return decode(data)


def _adopt(value: Any, depth: int) -> Any:
    """libipld's round-tripped value as the strict decoder returns it (links as
    :class:`CID`); raises :class:`_Unsure` where the two could differ."""
    t = type(value)
    if t is dict or t is list:
        if depth >= MAX_DEPTH:
            raise _Unsure
        items = value.items() if t is dict else enumerate(value)
        for k, v in items:  # replacing a dict's value in place keeps its keys
            if t is dict and type(k) is not str:
                raise _Unsure
            tv = type(v)
            if tv is str or tv is bool or v is None:
                continue
            if tv is int:
                if not _INT_MIN <= v <= _INT_MAX:
                    raise _Unsure
            else:
                value[k] = _adopt(v, depth + 1)
        return value
    if t is bytes:
        if value[:1] not in _MAYBE_CID:
            return value
        try:
            return CID(value)  # round-tripped, so it was a link
        except InvalidCidError:
            raise _Unsure from None
    if t is str or t is bool or value is None:
        return value
    if t is int:
        if not _INT_MIN <= value <= _INT_MAX:
            raise _Unsure
        return value
    raise _Unsure  # floats, and anything else libipld may grow
