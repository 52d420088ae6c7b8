"""Serving an event stream (``com.atproto.sync.subscribeRepos``) over a WebSocket: the
cursor rules and the send loop, shared by the PDS's firehose and the relay's.

The stream is an :class:`EventSource`: numbered events, each the exact frame it is
sent as, read with "what comes after seq N?" (``read_after``) and waited for with
``wait_after``. :func:`stream` serves one subscriber after the WebSocket is accepted.
The cursor rules are the event-stream spec's:

- no cursor: start with the next live event;
- a cursor newer than the newest event: an error frame ``FutureCursor``, then close;
- a cursor older than the retained window: an ``#info`` frame ``OutdatedCursor``, then
  replay from the oldest retained event;
- ``cursor=0``: replay the whole retained window.

A second task watches the socket so a subscriber that goes away is noticed even while
the stream is idle.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any, Final, Protocol

from starlette.websockets import WebSocket, WebSocketDisconnect

from plaza.atproto import cbor

MAX_CURSOR: Final = 2**53
TRY_AGAIN_LATER: Final = 1013  # RFC 6455 close code, registered by IANA: the server is overloaded


class Event(Protocol):
    @property
    def seq(self) -> int: ...

    @property
    def did(self) -> str: ...

    @property
    def frame(self) -> bytes: ...


class EventSource(Protocol):
    @property
    def last_seq(self) -> int:
        """The newest event a live subscriber has seen (0 for none): where it starts."""
        ...

    def bounds(self) -> tuple[int | None, int | None]:
        """The oldest and newest retained sequence numbers (None, None for none)."""
        ...

    def read_after(self, seq: int) -> Sequence[Event]:
        """Some of the events after ``seq``, in order (empty when there are none yet)."""
        ...

    async def wait_after(self, seq: int) -> None:
        """Return once an event after ``seq`` can be read."""
        ...


def iso_time(ts: float) -> str:
    """An atproto datetime with millisecond precision: ``2024-01-01T00:00:00.000Z``."""
    d = dt.datetime.fromtimestamp(ts, dt.UTC)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond // 1000:03d}Z"


def encode_frame(kind: str, body: dict[str, Any]) -> bytes:
    """A message frame: DAG-CBOR header ``{op: 1, t: kind}`` followed by the body."""
    return cbor.encode({"op": 1, "t": kind}) + cbor.encode(body)


def encode_error_frame(error: str, message: str) -> bytes:
    """An error frame: header ``{op: -1}`` and ``{error, message}``."""
    return cbor.encode({"op": -1}) + cbor.encode({"error": error, "message": message})


def parse_cursor(raw: str | None) -> int | None:
    """The ``cursor`` parameter: None when absent, else a non-negative integer of ASCII
    digits up to 2**53 (:class:`ValueError` otherwise)."""
    if raw is None or raw == "":
        return None
    if not (0 < len(raw) <= 16 and raw.isascii() and raw.isdigit()) or int(raw) > MAX_CURSOR:
        raise ValueError(raw)
    return int(raw)


async def fail(websocket: WebSocket, error: str, message: str, *, code: int = 1008) -> None:
    """Send an error frame and close (the subscriber may already be gone)."""
    with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
        await websocket.send_bytes(encode_error_frame(error, message))
        await websocket.close(code=code)


async def stream(
    websocket: WebSocket,
    source: EventSource,
    *,
    on_open: Callable[[], None] | None = None,
    on_sent: Callable[[Event], None] | None = None,
    on_close: Callable[[], None] | None = None,
) -> None:
    """Serve one accepted subscriber from ``source`` until it goes away (see the
    module docstring). ``on_open`` runs once its cursor is accepted, ``on_close`` when
    such a subscriber leaves, ``on_sent`` after each frame."""
    try:
        cursor = parse_cursor(websocket.query_params.get("cursor"))
    except ValueError:
        await fail(websocket, "InvalidRequest", "cursor must be a non-negative integer")
        return
    if cursor is None:
        last = source.last_seq
    else:
        oldest, newest = source.bounds()
        if cursor > (newest or 0):
            await fail(websocket, "FutureCursor", "Cursor in the future.")
            return
        if oldest is not None and cursor + 1 < oldest:
            info = {
                "name": "OutdatedCursor",
                "message": "Requested cursor exceeded limit. Possibly missing events",
            }
            await websocket.send_bytes(encode_frame("#info", info))
        last = cursor
    if on_open is not None:
        on_open()
    watcher = asyncio.create_task(_watch_close(websocket))
    try:
        while not watcher.done():
            rows = source.read_after(last)
            if rows:
                for row in rows:
                    await websocket.send_bytes(row.frame)
                    if on_sent is not None:
                        on_sent(row)
                    last = row.seq
                continue
            waiter = asyncio.create_task(source.wait_after(last))
            await asyncio.wait({waiter, watcher}, return_when=asyncio.FIRST_COMPLETED)
            if not waiter.done():
                waiter.cancel()
    except (WebSocketDisconnect, RuntimeError, OSError):
        pass
    finally:
        if on_close is not None:
            on_close()
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await watcher
        with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
            await websocket.close()


async def _watch_close(websocket: WebSocket) -> None:
    """Return when the client closes; anything the client sends is ignored."""
    with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
        while True:
            msg = await websocket.receive()
            if msg["type"] == "websocket.disconnect":
                return
