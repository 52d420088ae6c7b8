"""Following one labeler's ``com.atproto.label.subscribeLabels`` stream.

:meth:`LabelStream.run` resolves the labeler's DID (its ``#atproto_labeler`` service
endpoint, through :class:`~plaza.services.appview.remote.Remote`: SSRF-checked), keeps
one WebSocket open to it starting after the stored cursor (``ingest`` row
``labels:<did>``), and reconnects with a growing pause when it drops. Each ``#labels``
frame is checked by :meth:`Labels.check <plaza.services.appview.labels.Labels.check>`
(shape, source, signature) and its good labels stored in one transaction with the
cursor; ``#info`` frames are logged; a frame that does not decode is dropped.
:meth:`indexed` waits until the cursor reaches a sequence number.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final

from websockets.asyncio.client import connect
from websockets.exceptions import WebSocketException

from plaza.services.appview.follower import FrameError, decode_frame
from plaza.services.appview.labels import Labels
from plaza.services.appview.remote import RemoteError

log = logging.getLogger("plaza.appview")

MAX_FRAME_BYTES: Final = 1_000_000
NSID: Final = "com.atproto.label.subscribeLabels"


class LabelStream:
    """Stores the labels of one labeler (see the module docstring)."""

    def __init__(self, labels: Labels, did: str, *, max_backoff_s: float = 30.0) -> None:
        self.labels = labels
        self.did = did
        self.store = labels.store
        self.source = f"labels:{did}"
        self.max_backoff_s = max_backoff_s
        self.bad_frames = 0
        self._seq = self.store.cursor(self.source) or 0
        self._advanced = asyncio.Condition()

    @property
    def seq(self) -> int:
        return self._seq

    async def indexed(self, seq: int) -> None:
        async with self._advanced:
            await self._advanced.wait_for(lambda: self._seq >= seq)

    async def run(self) -> None:
        """Follow the labeler until cancelled."""
        pause = 0.1
        while True:
            try:
                doc = await self.labels.remote.did_document(self.did, fresh=pause > 0.1)
                endpoint = doc.services.get("atproto_labeler")
                if endpoint is None:
                    raise RemoteError(f"{self.did} names no labeler service")
                if not self.labels.remote.allow_private and not endpoint.startswith("https://"):
                    raise RemoteError(f"labeler endpoint must use https: {endpoint[:100]}")
                base = endpoint.rstrip("/").replace("https://", "wss://", 1)
                base = base.replace("http://", "ws://", 1)
                url = f"{base}/xrpc/{NSID}?cursor={self._seq}"
                async with connect(url, max_size=MAX_FRAME_BYTES, compression=None) as ws:
                    pause = 0.1
                    async for frame in ws:
                        if isinstance(frame, bytes):
                            await self.handle(frame)
            except (TimeoutError, OSError, WebSocketException, RemoteError) as exc:
                log.info("labeler %s: %s", self.did, exc)
            await asyncio.sleep(pause)
            pause = min(pause * 2, self.max_backoff_s)

    async def handle(self, frame: bytes) -> None:
        """Store the labels of one frame (see the module docstring)."""
        try:
            kind, body = decode_frame(frame)
        except FrameError:
            self.bad_frames += 1
            return
        if kind != "#labels":
            if kind == "#info" or kind is None:
                log.info("labeler %s says %s", self.did, body)
            return
        seq, raws = body.get("seq"), body.get("labels")
        if type(seq) is not int or seq <= self._seq or not isinstance(raws, list):
            self.bad_frames += int(type(seq) is not int or not isinstance(raws, list))
            return
        good = await self.labels.check(self.did, raws)
        with self.store.transaction():
            self.labels.store_labels(good)
            self.store.set_cursor(self.source, seq)
        async with self._advanced:
            self._seq = seq
            self._advanced.notify_all()
