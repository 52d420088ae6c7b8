"""An app view indexer that takes its events from the bus, sharing the partitions with
the other indexer processes (``plaza serve appview-indexer``).

The leases, the balancing and the consumers are a
:class:`~plaza.services.bus.worker.PartitionWorker`'s. Each partition it holds has its
own :class:`~plaza.services.appview.follower.Follower` whose source is the partition
(``bus:<stream>:<p>``, so its cursor is the last relay sequence number indexed from
that partition): a batch of frames goes through
:meth:`~plaza.services.appview.follower.Follower.handle_batch` (verified, written with
the partition's cursor in the same transaction) before it is acknowledged, and the
follower skips every event at or below its stored cursor (and every commit at or below
the account's indexed ``rev``): an event delivered twice changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Final

import httpx

from plaza.services.appview.follower import MAX_BATCH, Follower
from plaza.services.appview.indexer import Indexer
from plaza.services.bus.client import Bus
from plaza.services.bus.worker import DEFAULT_LEASE_S, Handler, PartitionWorker
from plaza.services.identities import Identities

log = logging.getLogger("plaza.appview.bus")

DEFAULT_GROUP: Final = "appview"


class BusIndexer:
    """One indexer process's share of the bus (see the module docstring)."""

    def __init__(
        self,
        bus: Bus,
        indexer: Indexer,
        identities: Identities,
        http: httpx.AsyncClient,
        *,
        group: str = DEFAULT_GROUP,
        worker_id: str | None = None,
        lease_s: float = DEFAULT_LEASE_S,
        batch: int = MAX_BATCH,
    ) -> None:
        self.layout = bus.layout
        self.indexer = indexer
        self.identities = identities
        self.http = http
        self.followers: dict[int, Follower] = {}
        self.worker = PartitionWorker(
            bus, self._open, group=group, worker_id=worker_id, lease_s=lease_s, batch=batch
        )

    @property
    def worker_id(self) -> str:
        return self.worker.worker_id

    @property
    def indexed(self) -> int:
        """Messages acknowledged after their batch was written."""
        return self.worker.handled

    @property
    def owned(self) -> set[int]:
        return self.worker.owned

    async def run(self) -> None:
        """Index a share of the partitions until cancelled."""
        await self.worker.run()

    @contextlib.asynccontextmanager
    async def _open(self, p: int) -> AsyncIterator[Handler]:
        follower = Follower(self.layout.source(p), self.indexer, self.identities, self.http)
        self.followers[p] = follower
        heard = asyncio.create_task(follower.follow_heard())
        try:
            yield follower.handle_batch
        finally:
            heard.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heard
            if self.followers.get(p) is follower:
                del self.followers[p]


async def serve_indexer(
    bus_url: str,
    db_url: str,
    directory_url: str,
    *,
    stream: str,
    partitions: int,
    group: str = DEFAULT_GROUP,
    worker_id: str | None = None,
    lease_s: float = DEFAULT_LEASE_S,
) -> None:
    """Run one indexer process until cancelled (``plaza serve appview-indexer``)."""
    from plaza.services.appview.store import AppviewStore
    from plaza.services.bus.layout import BusLayout

    layout = BusLayout(stream, partitions)
    store = AppviewStore.open(db_url)
    bus = await Bus.connect(bus_url, layout, name=f"plaza-indexer-{worker_id or ''}")
    try:
        await bus.ensure_stream_exists()
        async with httpx.AsyncClient(timeout=30.0) as http:
            worker = BusIndexer(
                bus,
                Indexer(store),
                Identities(directory_url, http),
                http,
                group=group,
                worker_id=worker_id,
                lease_s=lease_s,
            )
            log.info("appview-indexer %s: following %s", worker.worker_id, layout.stream)
            await worker.run()
    finally:
        await bus.close()
        store.close()
