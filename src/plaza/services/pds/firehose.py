"""``com.atproto.sync.subscribeRepos`` over a real WebSocket.

Each connection is one loop over :meth:`Sequencer.read_after`: send whatever follows the
last sequence number sent, then wait for the next publication. The cursor rules are the
event-stream spec's:

- no cursor: start with the next live event;
- a cursor newer than the newest event: an error frame ``FutureCursor``, then close;
- a cursor older than the retained window: an ``#info`` frame ``OutdatedCursor``, then
  replay from the oldest retained event;
- ``cursor=0``: replay the whole retained window.

A second task watches the socket so a client that goes away is noticed even while the
stream is idle. Every frame sent counts as egress of the repository it describes.

At most ``max_firehose_subscribers`` connections are served at once (every open one
counts, replaying or live, until it closes): one more gets an error frame
``TooManySubscribers`` and the close code 1013 (try again later).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

from starlette.websockets import WebSocket, WebSocketDisconnect

from plaza.services.pds.sequencer import INFO, encode_error_frame, encode_frame
from plaza.services.pds.xrpc import is_ascii_digits

if TYPE_CHECKING:
    from plaza.services.pds.components import PdsComponents

MAX_CURSOR = 2**53


def _parse_cursor(raw: str | None) -> int | None:
    if raw is None or raw == "":
        return None
    if not is_ascii_digits(raw, 16) or int(raw) > MAX_CURSOR:
        raise ValueError(raw)
    return int(raw)


TRY_AGAIN_LATER = 1013  # RFC 6455 close code, registered by IANA: the server is overloaded


async def subscribe_repos(websocket: WebSocket, ctx: PdsComponents) -> None:
    """Serve one subscriber from the sequencer of ``ctx`` (see the module docstring)."""
    limit = ctx.settings.max_firehose_subscribers
    await websocket.accept()
    # One event loop serves every connection: nothing awaits between this check and the
    # count going up, so the limit cannot be overshot by connections arriving together.
    if ctx.firehose_open >= limit:
        ctx.meter.firehose_refused.inc()
        await _fail(
            websocket,
            "TooManySubscribers",
            f"this PDS serves at most {limit} firehose subscribers at once; try again later",
            code=TRY_AGAIN_LATER,
        )
        return
    ctx.firehose_open += 1
    try:
        await _serve(websocket, ctx)
    finally:
        ctx.firehose_open -= 1


async def _serve(websocket: WebSocket, ctx: PdsComponents) -> None:
    seq = ctx.sequencer
    try:
        cursor = _parse_cursor(websocket.query_params.get("cursor"))
    except ValueError:
        await _fail(websocket, "InvalidRequest", "cursor must be a non-negative integer")
        return
    oldest, newest = seq.bounds()
    if cursor is None:
        last = seq.last_seq
    else:
        if cursor > (newest or 0):
            await _fail(websocket, "FutureCursor", "Cursor in the future.")
            return
        if oldest is not None and cursor + 1 < oldest:
            await websocket.send_bytes(
                encode_frame(
                    INFO,
                    {
                        "name": "OutdatedCursor",
                        "message": "Requested cursor exceeded limit. Possibly missing events",
                    },
                )
            )
        last = cursor
    ctx.meter.firehose_subscribers.inc()
    watcher = asyncio.create_task(_watch_close(websocket))
    try:
        while not watcher.done():
            rows = seq.read_after(last)
            if rows:
                for row in rows:
                    await websocket.send_bytes(row.frame)
                    ctx.meter.count(row.did, 0, len(row.frame))
                    last = row.seq
                continue
            waiter = asyncio.create_task(seq.wait_after(last))
            await asyncio.wait({waiter, watcher}, return_when=asyncio.FIRST_COMPLETED)
            if not waiter.done():
                waiter.cancel()
    except (WebSocketDisconnect, RuntimeError, OSError):
        pass
    finally:
        ctx.meter.firehose_subscribers.dec()
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


async def _fail(websocket: WebSocket, error: str, message: str, *, code: int = 1008) -> None:
    with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
        await websocket.send_bytes(encode_error_frame(error, message))
        await websocket.close(code=code)
