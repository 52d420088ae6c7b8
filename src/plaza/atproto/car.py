"""CAR v1 (Content Addressable aRchive): the file format of repository exports and diffs.

A CAR is a header, ``varint(len) ‖ dag-cbor {version: 1, roots: [cid, ...]}``, followed by
sections ``varint(len) ‖ cid ‖ block``. The reader here is strict where libipld's
``decode_car`` is not: every block is re-hashed and must match its CID
(:class:`BlockHashMismatchError` names the CID), varints must be minimal, truncated
sections, other versions and CIDs outside atproto's set (CIDv1, sha2-256, dag-cbor or
raw) are :class:`CarError`, and sizes are bounded so hostile input cannot blow up
memory. Duplicate blocks are accepted (the spec requires it); the first copy is kept.

:class:`CarDecoder` is the sans-IO core (feed it bytes as they arrive, h11-style);
:func:`read_car` and :func:`iter_car` are built on it. :func:`write_car` and
:func:`car_chunks` write, block order as given.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Final

from plaza.atproto import cbor
from plaza.atproto.cid import CID, CID_LENGTH, DAG_CBOR, RAW, SHA2_256
from plaza.atproto.errors import (
    BlockHashMismatchError,
    CarError,
    CarRootError,
    DecodeError,
    InvalidCidError,
)

MAX_HEADER_BYTES: Final = 64 * 1024
MAX_BLOCK_BYTES: Final = 4 * 1024 * 1024
"""Largest accepted block; a record is at most 1 MB and MST nodes are small."""
MAX_CAR_BYTES: Final = 1024 * 1024 * 1024
"""Default bound on a whole CAR read into memory (callers lower it for untrusted input)."""
MAX_ROOTS: Final = 64

_ONE_ROOT_HEAD: Final = b"\xa2\x65roots\x81\xd8\x2a\x58\x25\x00"
_ONE_ROOT_TAIL: Final = b"\x67version\x01"
_ONE_ROOT_LEN: Final = len(_ONE_ROOT_HEAD) + CID_LENGTH + len(_ONE_ROOT_TAIL)

_CID_PREFIXES: Final = frozenset(
    {bytes((0x01, DAG_CBOR, SHA2_256, 0x20)), bytes((0x01, RAW, SHA2_256, 0x20))}
)


def encode_varint(n: int) -> bytes:
    """Unsigned LEB128."""
    if n < 0:
        raise ValueError("varint must be non-negative")
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _varint(data: bytes | bytearray, pos: int) -> tuple[int, int] | None:
    """Decode a minimal varint at ``pos``; None when more bytes are needed."""
    n = 0
    shift = 0
    end = len(data)
    start = pos
    while True:
        if pos >= end:
            return None
        b = data[pos]
        pos += 1
        n |= (b & 0x7F) << shift
        if b < 0x80:
            if b == 0 and pos - start > 1:
                raise CarError(f"non-minimal varint at byte {start}")
            return n, pos
        shift += 7
        if shift >= 63:
            raise CarError(f"varint too long at byte {start}")


def _parse_header(buf: bytes | bytearray) -> tuple[list[CID], int] | None:
    """The roots and the offset past the header, or None if more bytes are needed."""
    got = _varint(buf, 0)
    if got is None:
        if len(buf) > 10:
            raise CarError("invalid CAR header length")
        return None
    length, pos = got
    if length == 0 or length > MAX_HEADER_BYTES:
        raise CarError(f"CAR header length {length} is out of range")
    end = pos + length
    if len(buf) < end:
        return None
    raw = bytes(buf[pos:end])
    if (
        len(raw) == _ONE_ROOT_LEN
        and raw.startswith(_ONE_ROOT_HEAD)
        and raw.endswith(_ONE_ROOT_TAIL)
    ):
        # The common header, one link and version 1, in its only canonical encoding:
        # read without the general decoder (a relay reads one per event).
        with contextlib.suppress(InvalidCidError):
            return [CID(raw[len(_ONE_ROOT_HEAD) : -len(_ONE_ROOT_TAIL)])], end
    try:
        header = cbor.decode(raw)
    except DecodeError as exc:
        raise CarError(f"CAR header is not valid DAG-CBOR: {exc.message}") from exc
    if type(header) is not dict or set(header) != {"roots", "version"}:
        raise CarError("CAR header must be a map with exactly 'version' and 'roots'")
    if type(header["version"]) is not int or header["version"] != 1:
        raise CarError(f"unsupported CAR version {header['version']!r} (only 1)")
    roots = header["roots"]
    if type(roots) is not list or not roots or len(roots) > MAX_ROOTS:
        raise CarRootError(f"CAR header must list between 1 and {MAX_ROOTS} roots")
    if not all(type(r) is CID for r in roots):
        raise CarRootError("CAR roots must be CID links")
    return list(roots), end


def _parse_section(
    buf: bytes | bytearray, pos: int, offset: int, max_block: int
) -> tuple[int, CID, bytes] | None:
    """The section at ``pos`` as ``(end, cid, block)``, hash-checked; None if incomplete.

    ``offset`` is the file offset of ``buf[0]``, for messages.
    """
    got = _varint(buf, pos)
    if got is None:
        return None
    length, start = got
    at = offset + pos
    if length < CID_LENGTH or length > max_block + CID_LENGTH:
        raise CarError(f"CAR section at byte {at} has length {length}, out of range")
    end = start + length
    if len(buf) < end:
        return None
    raw = bytes(buf[start : start + CID_LENGTH])
    if raw[:4] not in _CID_PREFIXES:
        raise CarError(
            f"CAR section at byte {at} has a CID atproto does not use "
            f"(prefix {raw[:4].hex()}): only CIDv1, sha2-256, dag-cbor or raw"
        )
    block = bytes(buf[start + CID_LENGTH : end])
    if hashlib.sha256(block).digest() != raw[4:]:
        raise BlockHashMismatchError(
            f"block {CID._trusted(raw)} does not match its hash (at byte {at})"
        )
    return end, CID._trusted(raw), block


@dataclass(frozen=True)
class Car:
    """A CAR read whole: its roots and its blocks (first copy of each, in file order)."""

    roots: list[CID]
    blocks: dict[CID, bytes] = field(repr=False)

    @property
    def root(self) -> CID:
        """The first root (for a repository, the commit)."""
        return self.roots[0]


class CarDecoder:
    """Sans-IO CAR reader: :meth:`feed` bytes, get verified ``(cid, block)`` pairs back.

    ``roots`` is set once the header has been read. Call :meth:`close` at the end of
    input: it raises :class:`CarError` if the input stopped mid-header or mid-section.
    """

    def __init__(
        self,
        *,
        max_block_bytes: int = MAX_BLOCK_BYTES,
        max_total_bytes: int = MAX_CAR_BYTES,
    ) -> None:
        self._buf = bytearray()
        self._offset = 0  # file offset of _buf[0], for messages
        self._total = 0
        self._max_block = max_block_bytes
        self._max_total = max_total_bytes
        self.roots: list[CID] | None = None

    def feed(self, data: bytes) -> list[tuple[CID, bytes]]:
        """Add input; return every block completed by it (hash-checked)."""
        self._total += len(data)
        if self._total > self._max_total:
            raise CarError(f"CAR is larger than the {self._max_total}-byte limit")
        buf = self._buf
        buf += data
        pos = 0
        out: list[tuple[CID, bytes]] = []
        if self.roots is None:
            header = _parse_header(buf)
            if header is None:
                return out
            self.roots, pos = header
        while True:
            got_block = _parse_section(buf, pos, self._offset, self._max_block)
            if got_block is None:
                break
            pos, cid, block = got_block
            out.append((cid, block))
        del buf[:pos]
        self._offset += pos
        return out

    def close(self) -> None:
        """Declare the end of input."""
        if self.roots is None:
            raise CarError("CAR ended before its header was complete")
        if self._buf:
            raise CarError(f"CAR ends with a truncated section at byte {self._offset}")


def read_car(
    data: bytes,
    *,
    max_block_bytes: int = MAX_BLOCK_BYTES,
    max_total_bytes: int = MAX_CAR_BYTES,
) -> Car:
    """Read and verify a whole CAR held in memory."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise CarError(f"expected bytes, got {type(data).__name__}")
    if len(data) > max_total_bytes:
        raise CarError(f"CAR is larger than the {max_total_bytes}-byte limit")
    buf = bytes(data)
    header = _parse_header(buf)
    if header is None:
        raise CarError("CAR ended before its header was complete")
    roots, pos = header
    blocks: dict[CID, bytes] = {}
    end = len(buf)
    while pos < end:
        got = _parse_section(buf, pos, 0, max_block_bytes)
        if got is None:
            raise CarError(f"CAR ends with a truncated section at byte {pos}")
        pos, cid, block = got
        blocks.setdefault(cid, block)
    return Car(roots, blocks)


class CarStream:
    """Blocks of a CAR read incrementally; ``roots`` is available before iterating."""

    def __init__(self, chunks: Iterable[bytes], decoder: CarDecoder) -> None:
        self._chunks = iter(chunks)
        self._dec = decoder
        self._pending: list[tuple[CID, bytes]] = []
        while decoder.roots is None:
            chunk = next(self._chunks, None)
            if chunk is None:
                decoder.close()  # raises: no complete header
            else:
                self._pending.extend(decoder.feed(chunk))
        self.roots: list[CID] = decoder.roots

    def __iter__(self) -> Iterator[tuple[CID, bytes]]:
        yield from self._pending
        self._pending = []
        for chunk in self._chunks:
            yield from self._dec.feed(chunk)
        self._dec.close()


def iter_car(
    chunks: Iterable[bytes],
    *,
    max_block_bytes: int = MAX_BLOCK_BYTES,
    max_total_bytes: int = MAX_CAR_BYTES,
) -> CarStream:
    """Read a CAR from an iterable of byte chunks, yielding verified ``(cid, block)``.

    Duplicates are passed through as they appear; the header is read on the call.
    """
    return CarStream(
        chunks, CarDecoder(max_block_bytes=max_block_bytes, max_total_bytes=max_total_bytes)
    )


def car_header(roots: Iterable[CID]) -> bytes:
    """The varint-prefixed CARv1 header naming ``roots``."""
    header = cbor.encode({"version": 1, "roots": list(roots)})
    return encode_varint(len(header)) + header


def car_section(cid: CID, block: bytes) -> bytes:
    """One varint-prefixed ``cid ‖ block`` section."""
    return encode_varint(CID_LENGTH + len(block)) + cid.raw + block


def car_chunks(roots: Iterable[CID], blocks: Iterable[tuple[CID, bytes]]) -> Iterator[bytes]:
    """A CAR as a stream of byte chunks (header, then one chunk per block)."""
    roots = list(roots)
    if not roots:
        raise CarRootError("a CAR needs at least one root")
    yield car_header(roots)
    for cid, block in blocks:
        yield car_section(cid, block)


def write_car(roots: Iterable[CID], blocks: Iterable[tuple[CID, bytes]]) -> bytes:
    """A whole CAR: ``roots`` in the header, ``blocks`` in the order given."""
    return b"".join(car_chunks(roots, blocks))
