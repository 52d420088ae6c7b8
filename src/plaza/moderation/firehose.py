"""Posts read from a firehose (``com.atproto.sync.subscribeRepos`` of a relay or a PDS).

:class:`PostFeed` keeps one WebSocket open from the stored cursor (reconnecting with a
growing pause), reads each batch of frames that arrived with
:func:`~plaza.moderation.commits.read_posts` (verified, past its cursor) and hands the
new posts to ``on_posts`` together with the sequence number of the last frame of the
batch; ``on_posts`` stores that cursor with its results.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Final

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from plaza.moderation.commits import read_posts
from plaza.moderation.moderator import Post
from plaza.services.identities import Identities

log = logging.getLogger("plaza.labeler")

MAX_FRAME_BYTES: Final = 5_000_000
MAX_BATCH: Final = 500

OnPosts = Callable[[list[Post], int], Awaitable[None]]


class PostFeed:
    def __init__(
        self,
        url: str,
        identities: Identities,
        on_posts: OnPosts,
        *,
        cursor: int = 0,
        max_backoff_s: float = 30.0,
    ) -> None:
        self.url = url.rstrip("/")
        self.identities = identities
        self.on_posts = on_posts
        self.seq = cursor
        self.max_backoff_s = max_backoff_s
        self.dropped = 0

    async def run(self) -> None:
        pause = 0.1
        base = self.url.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
        while True:
            url = f"{base}/xrpc/com.atproto.sync.subscribeRepos?cursor={self.seq}"
            try:
                async with connect(url, max_size=MAX_FRAME_BYTES, compression=None) as ws:
                    pause = 0.1
                    await self._consume(ws)
            except (TimeoutError, OSError, WebSocketException) as exc:
                log.info("firehose %s dropped: %s", self.url, exc)
            await asyncio.sleep(pause)
            pause = min(pause * 2, self.max_backoff_s)

    async def _consume(self, ws: ClientConnection) -> None:
        frames: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=4 * MAX_BATCH)

        async def read() -> None:
            try:
                async for frame in ws:
                    if isinstance(frame, bytes):
                        await frames.put(frame)
            finally:
                with contextlib.suppress(asyncio.QueueFull):
                    frames.put_nowait(None)

        reader = asyncio.create_task(read())
        try:
            while (first := await frames.get()) is not None:
                batch = [first]
                while len(batch) < MAX_BATCH and not frames.empty():
                    more = frames.get_nowait()
                    if more is None:
                        break
                    batch.append(more)
                await self.handle_batch(batch)
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, WebSocketException, OSError):
                await reader

    async def handle_batch(self, frames: list[bytes]) -> None:
        read = await read_posts(frames, self.identities, after=self.seq)
        self.dropped += read.dropped
        if read.last > self.seq:
            await self.on_posts(read.posts, read.last)
            self.seq = read.last
