"""The relay's combined firehose: ``com.atproto.sync.subscribeRepos`` over a WebSocket.

The same frames and cursor rules as the PDS's firehose
(:mod:`plaza.services.pds.firehose`), over the relay's own sequence
(:class:`~plaza.services.relay.outbox.Outbox`):

- no cursor: start with the next live event;
- a cursor newer than the newest event: an error frame ``FutureCursor``, then close;
- a cursor older than the window kept on disk: an ``#info`` frame ``OutdatedCursor``,
  then replay from the oldest kept event;
- ``cursor=0``: replay the whole window.

At most ``max_subscribers`` connections are served at once; one more gets an error
frame ``TooManySubscribers`` and the close code 1013 (try again later). A second task
watches the socket, so a subscriber that goes away is noticed while the stream is idle.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Final

from starlette.websockets import WebSocket, WebSocketDisconnect

from plaza.services.relay.frames import INFO, encode_error_frame, encode_frame
from plaza.services.relay.outbox import Outbox

MAX_CURSOR: Final = 2**53
TRY_AGAIN_LATER: Final = 1013  # RFC 6455 close code: the server is overloaded


def parse_cursor(raw: str | None) -> int | None:
    """The ``cursor`` parameter: None when absent, else a non-negative integer of ASCII
    digits up to 2**53 (:class:`ValueError` otherwise)."""
    if raw is None or raw == "":
        return None
    if not (0 < len(raw) <= 16 and raw.isascii() and raw.isdigit()) or int(raw) > MAX_CURSOR:
        raise ValueError(raw)
    return int(raw)


class Firehose:
    """Serves subscribers from an :class:`Outbox` (see the module docstring)."""

    def __init__(self, outbox: Outbox, max_subscribers: int) -> None:
        self.outbox = outbox
        self.max_subscribers = max_subscribers
        self.open = 0
        self.refused = 0

    async def serve(self, websocket: WebSocket) -> None:
        await websocket.accept()
        # One event loop serves every connection: nothing awaits between this check and
        # the count going up, so connections arriving together cannot overshoot it.
        if self.open >= self.max_subscribers:
            self.refused += 1
            await _fail(
                websocket,
                "TooManySubscribers",
                f"this relay serves at most {self.max_subscribers} subscribers at once",
                code=TRY_AGAIN_LATER,
            )
            return
        self.open += 1
        try:
            await self._serve(websocket)
        finally:
            self.open -= 1

    async def _serve(self, websocket: WebSocket) -> None:
        outbox = self.outbox
        try:
            cursor = parse_cursor(websocket.query_params.get("cursor"))
        except ValueError:
            await _fail(websocket, "InvalidRequest", "cursor must be a non-negative integer")
            return
        if cursor is None:
            last = outbox.last_seq
        else:
            oldest, newest = outbox.bounds()
            if cursor > (newest or 0):
                await _fail(websocket, "FutureCursor", "Cursor in the future.")
                return
            if oldest is not None and cursor + 1 < oldest:
                info = {
                    "name": "OutdatedCursor",
                    "message": "Requested cursor exceeded limit. Possibly missing events",
                }
                await websocket.send_bytes(encode_frame(INFO, info))
            last = cursor
        watcher = asyncio.create_task(_watch_close(websocket))
        try:
            while not watcher.done():
                rows = outbox.read_after(last)
                if rows:
                    for row in rows:
                        await websocket.send_bytes(row.frame)
                        last = row.seq
                    continue
                waiter = asyncio.create_task(outbox.wait_after(last))
                await asyncio.wait({waiter, watcher}, return_when=asyncio.FIRST_COMPLETED)
                if not waiter.done():
                    waiter.cancel()
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await watcher
            with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
                await websocket.close()


async def _watch_close(websocket: WebSocket) -> None:
    """Return when the client closes; anything it sends is ignored."""
    with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
        while True:
            msg = await websocket.receive()
            if msg["type"] == "websocket.disconnect":
                return


async def _fail(websocket: WebSocket, error: str, message: str, *, code: int = 1008) -> None:
    with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
        await websocket.send_bytes(encode_error_frame(error, message))
        await websocket.close(code=code)
