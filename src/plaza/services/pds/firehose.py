"""``com.atproto.sync.subscribeRepos`` over a real WebSocket.

Each connection is one loop over :meth:`Sequencer.read_after`
(:func:`plaza.services.eventstream.stream`, with the event-stream spec's cursor rules):
send whatever follows the last sequence number sent, then wait for the next
publication. Every frame sent counts as egress of the repository it describes.

At most ``max_firehose_subscribers`` connections are served at once (every open one
counts, replaying or live, until it closes): one more gets an error frame
``TooManySubscribers`` and the close code 1013 (try again later).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.websockets import WebSocket

from plaza.services.eventstream import TRY_AGAIN_LATER, fail, stream

if TYPE_CHECKING:
    from plaza.services.pds.components import PdsComponents


async def subscribe_repos(websocket: WebSocket, ctx: PdsComponents) -> None:
    """Serve one subscriber from the sequencer of ``ctx`` (see the module docstring)."""
    limit = ctx.settings.max_firehose_subscribers
    await websocket.accept()
    # One event loop serves every connection: nothing awaits between this check and the
    # count going up, so the limit cannot be overshot by connections arriving together.
    if ctx.firehose_open >= limit:
        ctx.meter.firehose_refused.inc()
        await fail(
            websocket,
            "TooManySubscribers",
            f"this PDS serves at most {limit} firehose subscribers at once; try again later",
            code=TRY_AGAIN_LATER,
        )
        return
    ctx.firehose_open += 1
    meter = ctx.meter
    try:
        await stream(
            websocket,
            ctx.sequencer,
            on_open=meter.firehose_subscribers.inc,
            on_sent=lambda row: meter.count(row.did, 0, len(row.frame)),
            on_close=meter.firehose_subscribers.dec,
        )
    finally:
        ctx.firehose_open -= 1
