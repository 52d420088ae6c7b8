"""One host's firehose, followed for as long as the relay runs.

A :class:`HostSubscriber` connects to ``{host}/xrpc/com.atproto.sync.subscribeRepos``
with the host's cursor (the last of its events the relay dealt with; 0 for a new host,
so the host's whole retained window is read), hands every binary frame to
:meth:`Relay.handle` in order, and when the connection fails or ends connects again
after a pause that doubles up to a limit (reset once a connection has delivered).

Flooding is throttled, not dropped: each frame spends one token of the host's bucket
(:class:`~plaza.services.buckets.TokenBuckets`), and a host that has none left is not
read until it has one again, so the TCP connection pushes back on it; the host's status
is ``throttled`` meanwhile and each pause is counted (``throttled`` in its metrics).
A frame larger than the websocket limit (twice ``max_frame_bytes``) ends the
connection (counted ``oversized-frame``); one between the two limits is read and
dropped by the relay.

A subscriber yields to the event loop after every frame: receiving a frame already
queued on the WebSocket and checking it inline never suspend, and without the pause one
host's backlog would keep the group commit, the firehose's senders and every other host
waiting until it was empty.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Final

import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from plaza.services.buckets import TokenBuckets
from plaza.services.relay.relay import Relay
from plaza.services.relay.resync import Backoff
from plaza.services.relay.state import ACTIVE, OFFLINE, THROTTLED, HostState
from plaza.services.relay.verifier import Prepared

log = logging.getLogger("plaza.relay")

MESSAGE_TOO_BIG: Final = 1009
OPEN_TIMEOUT_S: Final = 10.0
READ_AHEAD: Final = 256


def firehose_url(base: str, cursor: int) -> str:
    ws = (
        "wss://" + base[len("https://") :]
        if base.startswith("https://")
        else "ws://" + base[len("http://") :]
    )
    return f"{ws}/xrpc/com.atproto.sync.subscribeRepos?cursor={cursor}"


class HostSubscriber:
    """Follows one host's firehose into the relay (see the module docstring)."""

    def __init__(self, relay: Relay, host: HostState, buckets: TokenBuckets) -> None:
        self.relay = relay
        self.host = host
        self.buckets = buckets
        lo, hi = relay.settings.reconnect_backoff_s
        self.backoff = Backoff(lo, hi)
        self.connected = asyncio.Event()

    async def run(self) -> None:
        """Follow the host until cancelled."""
        while True:
            try:
                await self._connect_once()
            except Exception:  # following the host must outlive any one failure
                log.exception("relay: following %s failed", self.host.hostname)
                self.host.status = OFFLINE
            await asyncio.sleep(self.backoff.next())

    async def _connect_once(self) -> None:
        host = self.host
        limit = self.relay.settings.max_frame_bytes * 2
        url = firehose_url(host.url, host.cursor)
        try:
            async with websockets.connect(
                url,
                max_size=limit,
                open_timeout=OPEN_TIMEOUT_S,
                compression=None,
                max_queue=64,
                user_agent_header="plaza-relay",
            ) as ws:
                host.connects += 1
                host.status = ACTIVE
                self.connected.set()
                await self._read(ws)
        except ConnectionClosed as exc:
            if exc.sent is not None and exc.sent.code == MESSAGE_TOO_BIG:
                self.relay.counters.drop(host, "oversized-frame")
            log.info("relay: %s closed its firehose (%s)", host.hostname, exc)
        except (OSError, InvalidHandshake, InvalidURI, TimeoutError) as exc:
            log.info("relay: cannot follow %s: %s", host.hostname, exc)
        finally:
            self.connected.clear()
        if host.status != "banned":
            host.status = OFFLINE

    async def _read(self, ws: ClientConnection) -> None:
        """Hand every binary frame to the relay, in order. With a parallel verifier,
        frames are prepared as they arrive and judged by a second task, up to
        :data:`READ_AHEAD` behind; the connection's end waits for that task."""
        relay, host = self.relay, self.host
        if not relay.verifier.parallel:
            async for message in ws:
                if not isinstance(message, bytes):
                    relay.counters.drop(host, "text-frame")
                    continue
                await self._throttle()
                await relay.handle(host, message)
                self.backoff.reset()
                await asyncio.sleep(0)  # let the other hosts, the flusher and senders run
            return
        queue: asyncio.Queue[Prepared | None] = asyncio.Queue(READ_AHEAD)
        judge = asyncio.create_task(self._judge(queue))
        try:
            async for message in ws:
                if not isinstance(message, bytes):
                    relay.counters.drop(host, "text-frame")
                    continue
                await self._throttle()
                await queue.put(relay.prepare(host, message))
                if judge.done():
                    break
                await asyncio.sleep(0)
        except BaseException:
            # Frames still queued were not judged, so the host's cursor is still before
            # them: the host sends them again on the next connection.
            judge.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await judge
            raise
        if not judge.done():
            await queue.put(None)
        await judge

    async def _judge(self, queue: asyncio.Queue[Prepared | None]) -> None:
        while (prepared := await queue.get()) is not None:
            await self.relay.handle(self.host, prepared.raw, prepared)
            self.backoff.reset()
            await asyncio.sleep(0)

    async def _throttle(self) -> None:
        wait = self.buckets.take(self.host.hostname)
        if wait <= 0:
            return
        host = self.host
        host.throttled += 1
        host.status = THROTTLED
        while wait > 0:
            await asyncio.sleep(wait)
            wait = self.buckets.take(host.hostname)
        host.status = ACTIVE
