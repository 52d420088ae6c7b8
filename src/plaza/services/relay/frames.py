"""Reading a host's frames and writing the relay's own, cheaply and strictly.

A frame is two DAG-CBOR values back to back: a header ``{op: 1, t: "#commit"}`` (or
``{op: -1}`` for an error) and a body. :func:`decode_frame` takes the fast path first:
libipld decodes both values (about 25 times faster than the strict decoder), and the
frame is accepted on that path only if encoding the two values again gives back
exactly its bytes, which only canonical DAG-CBOR does. libipld hands links back as the
CID's bytes; the fields the lexicon types as links (``commit``, ``prevData``, each op's
``cid`` and ``prev``, ``blobs``) are turned into :class:`~plaza.atproto.cid.CID`
objects, the type the protocol core takes. Any frame the fast path does not vouch for
(a non-canonical encoding, a byte string that libipld would mistake for a link) goes
to the strict decoder, whose answer is final. Every refusal is a :class:`FrameError`.

:func:`encode_frame` writes with libipld too when it can be exact: links are handed to
it as their bytes (which it writes as links), so a body may go that way only if no
other byte string in it could parse as a CID; any other body is written by
:func:`plaza.atproto.cbor.encode`. Both give the same canonical bytes. A frame read on
the fast path also keeps libipld's own decoding (:attr:`Frame.wire`), so the relay can
write its output from the host's values without converting links back
(:func:`encode_wire_frame`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import libipld

from plaza.atproto import cbor
from plaza.atproto.cid import CID
from plaza.atproto.errors import DecodeError, InvalidCidError
from plaza.errors import PlazaError
from plaza.services.eventstream import encode_error_frame

COMMIT: Final = "#commit"
SYNC: Final = "#sync"
IDENTITY: Final = "#identity"
ACCOUNT: Final = "#account"
INFO: Final = "#info"
ERROR: Final = "error"

_CID_START: Final = (b"\x01", b"\x12")

__all__ = [
    "ACCOUNT",
    "COMMIT",
    "ERROR",
    "IDENTITY",
    "INFO",
    "SYNC",
    "Frame",
    "FrameError",
    "decode_frame",
    "encode_error_frame",
    "encode_frame",
    "encode_wire_frame",
]


class FrameError(PlazaError):
    """A frame that is not two well-formed DAG-CBOR values of the event-stream shape."""

    code = "InvalidFrame"
    status = 400


@dataclass(frozen=True)
class Frame:
    """A decoded frame: ``kind`` is the header's ``t`` (``error`` for an error frame).

    ``wire``: when the fast path read it, the body as libipld decoded it (links as their
    bytes), which libipld encodes back to exactly the frame's body bytes; any map made
    of its values and of plain new ones (no bytes) is written exactly by
    :func:`encode_wire_frame`. None from the strict decoder.
    """

    kind: str
    body: dict[str, Any]
    wire: dict[str, Any] | None = None


_HEADERS: dict[str, bytes] = {}


def encode_frame(kind: str, body: dict[str, Any]) -> bytes:
    """A message frame: header ``{op: 1, t: kind}`` followed by the body."""
    header = _header(kind)
    wire = _wire(body, 0)
    if wire is None:
        return header + cbor.encode(body)
    out: bytes = libipld.encode_dag_cbor(wire)
    return header + out


def encode_wire_frame(kind: str, wire: dict[str, Any]) -> bytes:
    """A message frame whose body holds values of a :attr:`Frame.wire` (links as their
    bytes) and new values without bytes: libipld writes it exactly (see :class:`Frame`)."""
    out: bytes = libipld.encode_dag_cbor(wire)
    return _header(kind) + out


def _header(kind: str) -> bytes:
    header = _HEADERS.get(kind)
    if header is None:
        header = cbor.encode({"op": 1, "t": kind})
        if len(_HEADERS) < 64:
            _HEADERS[kind] = header
    return header


def _wire(value: Any, depth: int) -> Any:
    """``value`` with every CID as its bytes, or None if libipld could not write it
    exactly (a byte string that could be a link, a value it writes differently)."""
    t = type(value)
    if t is CID:
        return value.raw
    if t is str or t is bool or t is int or value is None:
        return value
    if t is bytes:
        return None if value[:1] in _CID_START else value
    if depth > 32:
        return None
    if t is dict:
        out: dict[str, Any] = {}
        for k, v in value.items():
            w = _wire(v, depth + 1)
            if w is None and v is not None:
                return None
            out[k] = w
        return out
    if t is list:
        items = []
        for v in value:
            w = _wire(v, depth + 1)
            if w is None and v is not None:
                return None
            items.append(w)
        return items
    return None


def decode_frame(frame: bytes) -> Frame:
    """The header and body of ``frame`` (see the module docstring)."""
    fast = _fast(frame)
    if fast is not None:
        return fast
    try:
        header, offset = cbor.decode_first(frame)
        body = cbor.decode(frame[offset:])
    except DecodeError as exc:
        raise FrameError(f"malformed frame: {exc.message}") from exc
    return _shape(header, body)


def _fast(frame: bytes) -> Frame | None:
    try:
        values = libipld.decode_dag_cbor_multi(frame)
    except (ValueError, TypeError, OverflowError, RecursionError):
        return None
    if len(values) != 2:
        return None
    header, body = values
    try:
        if libipld.encode_dag_cbor(header) + libipld.encode_dag_cbor(body) != frame:
            return None
    except (ValueError, TypeError, OverflowError, RecursionError):
        return None
    if type(body) is not dict or type(header) is not dict:
        return None
    for name in ("blocks",):
        value = body.get(name)
        if type(value) is bytes and value[:1] in _CID_START:
            return None  # maybe a link in disguise: the strict decoder tells them apart
    wire = dict(body)
    try:
        _links(body)
    except (InvalidCidError, TypeError, AttributeError):
        return None
    shaped = _shape(header, body)
    return Frame(shaped.kind, shaped.body, wire)


def _cid(value: Any) -> Any:
    return CID(value) if type(value) is bytes else value


def _links(body: dict[str, Any]) -> None:
    """Turn libipld's link bytes into CIDs where the lexicon has links."""
    for name in ("commit", "prevData"):
        if name in body:
            body[name] = _cid(body[name])
    ops = body.get("ops")
    if type(ops) is list:
        converted = []
        for op in ops:
            if type(op) is dict:  # a copy: the wire body keeps the original
                op_cids = dict(op)
                for name in ("cid", "prev"):
                    if name in op_cids:
                        op_cids[name] = _cid(op_cids[name])
                converted.append(op_cids)
            else:
                converted.append(op)
        body["ops"] = converted
    blobs = body.get("blobs")
    if type(blobs) is list:
        body["blobs"] = [_cid(b) for b in blobs]


def _shape(header: Any, body: Any) -> Frame:
    if type(header) is not dict or type(body) is not dict:
        raise FrameError("a frame's header and body must be maps")
    op = header.get("op")
    if op == -1:
        return Frame(ERROR, body)
    kind = header.get("t")
    if op != 1 or type(kind) is not str:
        raise FrameError("a message frame's header must be {op: 1, t: <type>}")
    return Frame(kind, body)
