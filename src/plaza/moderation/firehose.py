"""Posts read from a firehose (``com.atproto.sync.subscribeRepos`` of a relay or a PDS).

:class:`PostFeed` keeps one WebSocket open from the stored cursor (reconnecting with a
growing pause), verifies each ``#commit`` against its account's key from the directory
(:func:`plaza.atproto.sync.verify_commit_body`; a signature that fails refreshes the
key once), and hands the ``app.bsky.feed.post`` records it creates, as
:class:`~plaza.moderation.moderator.Post`, to ``on_posts`` together with the sequence
number of the last frame of the batch; ``on_posts`` stores that cursor with its
results. A frame that fails its checks is dropped and counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from plaza.atproto import cbor
from plaza.atproto.errors import AtprotoError, BadSignatureError
from plaza.atproto.sync import VerifiedCommit, verify_commit_body
from plaza.errors import PlazaError
from plaza.moderation.moderator import Post
from plaza.services.identities import Identities

log = logging.getLogger("plaza.labeler")

MAX_FRAME_BYTES: Final = 5_000_000
MAX_BATCH: Final = 500
MAX_TEXT: Final = 3000
POST: Final = "app.bsky.feed.post"

OnPosts = Callable[[list[Post], int], Awaitable[None]]


def _decode(frame: bytes) -> tuple[Any, Any]:
    header, end = cbor.decode_first(frame)
    return header, cbor.decode(frame[end:])


def posts_of(verified: VerifiedCommit) -> list[Post]:
    """The posts a verified commit creates (records that do not decode are skipped)."""
    out = []
    for op in verified.ops:
        if op.action != "create" or not op.path.startswith(POST + "/") or op.cid is None:
            continue
        block = verified.record_block(op)
        try:
            record = cbor.decode(block) if block is not None else None
        except AtprotoError:
            continue
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            continue
        uri = f"at://{verified.did}/{op.path}"
        out.append(Post(uri, str(op.cid), verified.did, record["text"][:MAX_TEXT]))
    return out


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
        posts: list[Post] = []
        last = self.seq
        for frame in frames:
            try:
                header, body = _decode(frame)
            except AtprotoError:
                self.dropped += 1
                continue
            if not isinstance(header, dict) or not isinstance(body, dict):
                self.dropped += 1
                continue
            seq = body.get("seq")
            if type(seq) is not int or seq <= last:
                continue
            last = seq
            if header.get("t") == "#commit":
                posts += await self._posts(body)
        if last > self.seq:
            await self.on_posts(posts, last)
            self.seq = last

    async def _posts(self, body: dict[str, Any]) -> list[Post]:
        did = body.get("repo")
        if not isinstance(did, str):
            self.dropped += 1
            return []
        try:
            ident = await self.identities.get(did)
            if ident.key is None:
                raise PlazaError(f"{did[:80]} has no signing key")
            try:
                verified = verify_commit_body(body, ident.key, require_prev_data=False)
            except BadSignatureError:
                ident = await self.identities.refresh(did, force=True)
                verified = verify_commit_body(body, ident.key, require_prev_data=False)
        except (AtprotoError, PlazaError) as exc:
            log.info("commit from %s dropped: %s", did[:80], exc)
            self.dropped += 1
            return []
        return posts_of(verified)
