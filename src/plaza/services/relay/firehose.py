"""The relay's combined firehose: ``com.atproto.sync.subscribeRepos`` over a WebSocket.

The same frames, cursor rules and send loop as the PDS's firehose
(:func:`plaza.services.eventstream.stream`), over the relay's own sequence
(:class:`~plaza.services.relay.outbox.Outbox`):

- no cursor: start with the next live event;
- a cursor newer than the newest event: an error frame ``FutureCursor``, then close;
- a cursor older than the window kept on disk: an ``#info`` frame ``OutdatedCursor``,
  then replay from the oldest kept event;
- ``cursor=0``: replay the whole window.

At most ``max_subscribers`` connections are served at once; one more gets an error
frame ``TooManySubscribers`` and the close code 1013 (try again later).
"""

from __future__ import annotations

from starlette.websockets import WebSocket

from plaza.services.eventstream import TRY_AGAIN_LATER, fail, stream
from plaza.services.relay.outbox import Outbox


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
            await fail(
                websocket,
                "TooManySubscribers",
                f"this relay serves at most {self.max_subscribers} subscribers at once",
                code=TRY_AGAIN_LATER,
            )
            return
        self.open += 1
        try:
            await stream(websocket, self.outbox)
        finally:
            self.open -= 1
