"""The bus over NATS JetStream: one connection, the stream, publishing, consumers.

:meth:`Bus.connect` opens a connection that reconnects by itself for as long as the
process runs (a restarted NATS server is found again; JetStream keeps the stream and the
durable consumers on disk). :meth:`Bus.ensure_stream` creates or updates the stream:
every partition subject (:class:`~plaza.services.bus.layout.BusLayout`), file storage,
at most ``max_msgs`` messages kept (the replay window; the oldest are dropped first) and
a duplicate window in which a second publish of the same relay sequence number is
ignored. :meth:`Bus.publish` sends a run of events and returns once JetStream has
stored every one of them; :meth:`Bus.last_seq` reads back the newest relay sequence
number stored, where a restarted publisher resumes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Final

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, StorageType, StreamConfig

from plaza.services.bus.errors import BusError
from plaza.services.bus.layout import BusLayout, check_url, headers, seq_of

DUPLICATE_WINDOW_S: Final = 120.0
PUBLISH_TIMEOUT_S: Final = 10.0
NATS_ERRORS: Final = (nats.errors.Error, nats.js.errors.Error, OSError, TimeoutError)
"""What a call to NATS may raise when the server is away or refuses."""


class Bus:
    """One NATS connection and the layout of the stream it carries."""

    def __init__(self, nc: Client, layout: BusLayout) -> None:
        self.nc = nc
        self.js: JetStreamContext = nc.jetstream()
        self.layout = layout

    @classmethod
    async def connect(cls, url: str, layout: BusLayout, *, name: str = "plaza") -> Bus:
        """Connect to ``url`` (``nats://host:port``, comma-separated for a cluster);
        :class:`BusError` if no server answers."""
        servers = [s.strip() for s in check_url(url).split(",")]
        try:
            nc = await nats.connect(
                servers=servers,
                name=name,
                connect_timeout=2,
                allow_reconnect=True,
                max_reconnect_attempts=-1,
                reconnect_time_wait=0.2,
            )
        except (*NATS_ERRORS,) as exc:
            raise BusError(f"cannot reach NATS at {url}: {exc!r}") from exc
        return cls(nc, layout)

    async def ensure_stream(self, max_msgs: int) -> None:
        """Create the stream, or bring its limits to ``max_msgs`` messages."""
        config = StreamConfig(
            name=self.layout.stream,
            subjects=[self.layout.subjects],
            max_msgs=max_msgs,
            discard=DiscardPolicy.OLD,
            storage=StorageType.FILE,
            duplicate_window=DUPLICATE_WINDOW_S,
        )
        try:
            try:
                info = await self.js.stream_info(self.layout.stream)
            except nats.js.errors.NotFoundError:
                await self.js.add_stream(config)
                return
            if info.config.max_msgs != max_msgs or info.config.subjects != config.subjects:
                await self.js.update_stream(config)
        except (*NATS_ERRORS,) as exc:
            raise BusError(f"cannot set up stream {self.layout.stream}: {exc!r}") from exc

    async def ensure_stream_exists(self) -> None:
        """Wait for nothing: create the stream with no limit when no relay made it yet
        (a relay with ``--bus`` sets its replay window when it starts)."""
        try:
            await self.js.stream_info(self.layout.stream)
        except nats.js.errors.NotFoundError:
            await self.ensure_stream(-1)
        except (*NATS_ERRORS,) as exc:
            raise BusError(f"cannot read stream {self.layout.stream}: {exc!r}") from exc

    async def publish(self, events: Sequence[tuple[int, str, bytes]]) -> None:
        """Store ``(seq, did, frame)`` events on their partitions, in order; return when
        JetStream acknowledged all. :class:`BusError` if it did not (send them again:
        the duplicate window drops what was stored already)."""
        try:
            acks = [
                await self.js.publish_async(
                    self.layout.subject_for(did),
                    frame,
                    headers=headers(seq, did),
                    stream=self.layout.stream,
                )
                for seq, did, frame in events
            ]
            await asyncio.wait_for(asyncio.gather(*acks), PUBLISH_TIMEOUT_S)
        except (*NATS_ERRORS,) as exc:
            raise BusError(f"publishing {len(events)} events failed: {exc!r}") from exc

    async def last_seq(self) -> int:
        """The newest relay sequence number in the stream (0 when it is empty)."""
        try:
            info = await self.js.stream_info(self.layout.stream)
            if not info.state.last_seq:
                return 0
            msg = await self.js.get_msg(self.layout.stream, info.state.last_seq)
        except (*NATS_ERRORS,) as exc:
            raise BusError(f"cannot read stream {self.layout.stream}: {exc!r}") from exc
        return seq_of(msg.headers)

    async def close(self) -> None:
        if not self.nc.is_closed:
            with contextlib.suppress(*NATS_ERRORS):
                await self.nc.flush(timeout=1)
            await self.nc.close()
