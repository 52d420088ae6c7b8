"""One process's share of the bus: leases, balancing, one durable consumer per partition.

Theory of operation. Every ``lease_s / 3`` the worker announces itself, renews the
leases it holds (:class:`~plaza.services.bus.leases.Leases`) and balances: with ``n``
workers of its group alive it holds at most ``ceil(partitions / n)`` partitions,
releasing the rest and taking free ones (a dead worker's lapse ``lease_s`` after its
last renewal).

Each partition it holds is opened with the caller's ``open_partition(p)``, an async
context manager that yields the partition's batch handler, and has one durable pull
consumer (``<group>-p<p>``). On taking a partition the consumer is made again to start
after the last message acknowledged: messages a dead worker had fetched but not
acknowledged come at once, not after the acknowledgement timeout. A batch of frames
goes to the handler and only then is acknowledged (:attr:`AckPolicy.ALL`: the last
message acknowledges the batch), so a crash between the two delivers the batch again;
the handler makes a second delivery change nothing (it stores the partition's cursor,
:meth:`~plaza.services.bus.layout.BusLayout.source`, with its results). One account's
events are on one partition, consumed by one worker at a time, in order.

Batches of one process are handled one at a time (the handlers share one database
connection); the partitions' fetches wait on the network meanwhile. A handler that
raises gives its partition up (not acknowledged: taken again, here or elsewhere, from
the last acknowledged message).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Final

import nats.errors
import nats.js.errors
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.client import JetStreamContext

from plaza.services.bus.client import NATS_ERRORS, Bus
from plaza.services.bus.layout import check_group, partition_of
from plaza.services.bus.leases import Leases

log = logging.getLogger("plaza.bus")

DEFAULT_LEASE_S: Final = 6.0
DEFAULT_BATCH: Final = 500
FETCH_WAIT_S: Final = 1.0
RETRY_S: Final = 0.2

Handler = Callable[[list[bytes]], Awaitable[None]]
"""Handles one batch of a partition's frames, in order; returns once they are stored."""
OpenPartition = Callable[[int], AbstractAsyncContextManager[Handler]]
"""Opens partition ``p`` for this worker: yields its handler, closes on release."""


class PartitionWorker:
    """One process's share of a consumer group's partitions (see the module docstring)."""

    def __init__(
        self,
        bus: Bus,
        open_partition: OpenPartition,
        *,
        group: str,
        worker_id: str | None = None,
        lease_s: float = DEFAULT_LEASE_S,
        batch: int = DEFAULT_BATCH,
    ) -> None:
        self.bus = bus
        self.layout = bus.layout
        self.open_partition = open_partition
        self.group = check_group(group)
        self.worker_id = worker_id or uuid.uuid4().hex[:12]
        self.lease_s = lease_s
        self.batch = batch
        self.handled = 0  # messages acknowledged after their batch was handled
        self.failures = 0  # partitions given up on an unexpected error
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._halts: dict[int, asyncio.Event] = {}
        self._serial = asyncio.Lock()
        self._ticked = asyncio.Condition()
        self.ticks = 0
        self.leases: Leases | None = None

    @property
    def owned(self) -> set[int]:
        return set(self._tasks)

    async def run(self) -> None:
        """Hold and handle a share of the partitions until cancelled; on the way out give
        the leases back so the others take over at once."""
        self.leases = await Leases.open(self.bus, self.worker_id, self.lease_s, group=self.group)
        try:
            while True:
                await self._tick(self.leases)
                for p, task in list(self._tasks.items()):
                    if task.done():
                        del self._tasks[p]
                        self._halts.pop(p, None)
                        await self.leases.release(p)
                        if not task.cancelled() and task.exception() is not None:
                            self.failures += 1
                            log.error("bus: partition %d failed: %r", p, task.exception())
                async with self._ticked:
                    self.ticks += 1
                    self._ticked.notify_all()
                await asyncio.sleep(self.lease_s / 3)
        finally:
            for p in list(self._tasks):
                await self._stop(p)
            with contextlib.suppress(*NATS_ERRORS):
                await asyncio.wait_for(self.leases.leave(), 2.0)

    async def ticked(self, count: int) -> None:
        """Return once the balancing loop has run ``count`` times."""
        async with self._ticked:
            await self._ticked.wait_for(lambda: self.ticks >= count)

    async def _tick(self, leases: Leases) -> None:
        try:
            alive = await leases.heartbeat()
            for p in list(self._tasks):
                if not await leases.renew(p):
                    log.warning("bus: lease on partition %d lost", p)
                    await self._stop(p)
            target = math.ceil(self.layout.partitions / alive)
            while len(self._tasks) > target:
                p = max(self._tasks)
                await self._stop(p)
                await leases.release(p)
            if len(self._tasks) < target:
                start = partition_of(self.worker_id, self.layout.partitions)
                for k in range(self.layout.partitions):
                    p = (start + k) % self.layout.partitions
                    if p not in self._tasks and await leases.claim(p):
                        self._halts[p] = halt = asyncio.Event()
                        self._tasks[p] = asyncio.create_task(self._partition(p, halt))
                    if len(self._tasks) >= target:
                        break
        except (*NATS_ERRORS,) as exc:
            log.info("bus: balancing skipped: %r", exc)

    async def _stop(self, p: int) -> None:
        task = self._tasks.pop(p, None)
        halt = self._halts.pop(p, None)
        if halt is not None:
            halt.set()  # a fetch may swallow the cancellation; the loop sees this
        if task is not None:
            task.cancel()
            await asyncio.wait({task}, timeout=FETCH_WAIT_S * 3)
            if task.done() and not task.cancelled() and task.exception() is not None:
                log.warning("bus: partition %d stopped on %r", p, task.exception())

    async def _consumer(self, p: int) -> JetStreamContext.PullSubscription:
        """The partition's durable consumer, made again to start after the last message
        acknowledged (see the module docstring)."""
        js, stream = self.bus.js, self.layout.stream
        name = self.layout.consumer(self.group, p)
        start = 0
        try:
            info = await js.consumer_info(stream, name)
            if info.ack_floor is not None:
                start = info.ack_floor.stream_seq + 1
            await js.delete_consumer(stream, name)
        except nats.js.errors.NotFoundError:
            pass
        config = ConsumerConfig(
            durable_name=name,
            filter_subject=self.layout.subject(p),
            ack_policy=AckPolicy.ALL,
            ack_wait=max(30.0, self.lease_s * 5),
            max_ack_pending=self.batch * 4,
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE if start > 1 else DeliverPolicy.ALL,
            opt_start_seq=start if start > 1 else None,
        )
        await js.add_consumer(stream, config)
        return await js.pull_subscribe_bind(durable=name, stream=stream)

    async def _partition(self, p: int, halt: asyncio.Event) -> None:
        async with self.open_partition(p) as handle:
            sub = None
            while not halt.is_set():
                try:
                    if sub is None:
                        sub = await self._consumer(p)
                    msgs = await sub.fetch(self.batch, timeout=FETCH_WAIT_S)
                except (nats.errors.TimeoutError, TimeoutError):
                    continue  # nothing new on the partition
                except (*NATS_ERRORS,) as exc:
                    log.info("bus: partition %d: %r; retrying", p, exc)
                    sub = None
                    await asyncio.sleep(RETRY_S)
                    continue
                if not msgs or halt.is_set():
                    continue  # (halted: what was fetched comes again to the next owner)
                async with self._serial:
                    await handle([m.data for m in msgs])
                with contextlib.suppress(*NATS_ERRORS):
                    await msgs[-1].ack()  # acknowledges the batch (AckPolicy.ALL)
                self.handled += len(msgs)
