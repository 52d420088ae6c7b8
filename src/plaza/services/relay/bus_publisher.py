"""The relay's events onto the bus (``plaza serve relay --bus nats://...``).

Theory of operation. The publisher follows the relay's own stream the way a firehose
subscriber does (:meth:`~plaza.services.relay.outbox.Outbox.read_after`, then
:meth:`~plaza.services.relay.outbox.Outbox.wait_after`), so only events already durable
in the relay's store are published, in sequence order. It starts after the newest
sequence number the stream holds (:meth:`~plaza.services.bus.client.Bus.last_seq`), so
a restarted relay neither skips nor repeats; a run whose publish fails is sent again
after a pause, and JetStream drops the copies it stored already (same ``Nats-Msg-Id``).
The WebSocket firehose keeps running beside it, for subscribers that are not on the bus.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final

from plaza.errors import PlazaError
from plaza.services.bus.client import Bus
from plaza.services.relay.outbox import Outbox

log = logging.getLogger("plaza.relay.bus")

PAGE: Final = 500


class BusPublisher:
    """Publishes a relay's stream to the bus (see the module docstring)."""

    def __init__(self, outbox: Outbox, bus: Bus, *, retry_s: float = 0.5) -> None:
        self.outbox = outbox
        self.bus = bus
        self.retry_s = retry_s
        self.published = 0  # the last relay sequence number stored on the bus
        self.failures = 0
        self._advanced = asyncio.Condition()

    async def published_up_to(self, seq: int) -> None:
        """Return once every event up to ``seq`` is on the bus."""
        async with self._advanced:
            await self._advanced.wait_for(lambda: self.published >= seq)

    async def run(self) -> None:
        """Publish until cancelled."""
        cursor = await self._start()
        while True:
            rows = self.outbox.read_after(cursor, PAGE)
            if not rows:
                await self.outbox.wait_after(cursor)
                continue
            try:
                await self.bus.publish([(r.seq, r.did, r.frame) for r in rows])
            except PlazaError as exc:
                self.failures += 1
                log.warning("relay: publishing to the bus failed, will retry: %s", exc)
                await asyncio.sleep(self.retry_s)
                continue
            cursor = rows[-1].seq
            async with self._advanced:
                self.published = cursor
                self._advanced.notify_all()

    async def _start(self) -> int:
        while True:
            try:
                last = await self.bus.last_seq()
                break
            except PlazaError as exc:
                log.warning("relay: the bus is not answering, will retry: %s", exc)
                await asyncio.sleep(self.retry_s)
        async with self._advanced:
            self.published = last
            self._advanced.notify_all()
        return last
