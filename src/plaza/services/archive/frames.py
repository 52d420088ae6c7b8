"""Decoding one ``subscribeRepos`` frame: a DAG-CBOR header, then a DAG-CBOR body.

A message frame's header is ``{"op": 1, "t": "#commit"}`` (or another ``#kind``); an
error frame's is ``{"op": -1}`` with ``{"error", "message"}`` as body. Anything else —
a truncated frame, bytes after the body, a header of another shape, a body that is not
a map — is a :class:`FrameError`, and the frame is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from plaza.atproto import cbor
from plaza.atproto.errors import DecodeError


class FrameError(DecodeError):
    """The frame is not a well-formed event-stream frame."""

    code = "InvalidFrame"


@dataclass(frozen=True)
class Frame:
    """``kind`` is the message type (``#commit``...) or ``"error"`` for an error frame."""

    kind: str
    body: dict[str, Any]

    @property
    def seq(self) -> int | None:
        seq = self.body.get("seq")
        return seq if type(seq) is int and seq >= 0 else None


def parse_frame(data: bytes) -> Frame:
    """The frame in ``data`` (raises :class:`FrameError`)."""
    if type(data) is not bytes:
        raise FrameError("a frame must be a binary message")
    try:
        header, end = cbor.decode_first(data)
        body = cbor.decode(data[end:])
    except DecodeError as exc:
        raise FrameError(f"undecodable frame: {exc.message}") from exc
    if type(header) is not dict or type(body) is not dict:
        raise FrameError("a frame's header and body must be maps")
    op = header.get("op")
    if op == -1:
        return Frame("error", body)
    kind = header.get("t")
    if op != 1 or type(kind) is not str or not kind.startswith("#"):
        raise FrameError(f"unknown frame header {header!r:.100}")
    return Frame(kind, body)
