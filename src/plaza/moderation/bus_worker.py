"""A labeler worker on the bus (``plaza serve labeler-worker``): one of N processes that
share the relay's partitions and label into one shared store.

The leases, the balancing and the consumers are a
:class:`~plaza.services.bus.worker.PartitionWorker`'s (group ``labeler``). A batch of a
partition's frames is read with :func:`~plaza.moderation.commits.read_posts` (each
``#commit`` verified, every frame at or below the partition's stored cursor skipped),
its posts judged by the :class:`~plaza.moderation.moderator.Moderator`, and in ONE
transaction the decisions applied (:meth:`~plaza.moderation.labeler.Labeler.apply`:
labels, strikes, review items) and the partition's cursor stored (``ingest`` source
``bus:<stream>:<p>``); the batch is acknowledged only after that commits. So a batch
delivered twice changes nothing: no second label, no second strike. The transaction
takes the label log's lock first and reads the cursor again under it: if another
process (a worker whose lease lapsed, still running) moved it meanwhile, the batch is
read again past the new cursor.

The worker signs with the labeler's label key and issues under its DID, read from the
labeler's data dir (:func:`~plaza.moderation.identity.read_identity`). With a DAO it
follows the mandate as the API server does (:class:`~plaza.moderation.dao_sync.DaoSync`,
learning only: the API server issues the labels the DAO authorized). The moderator's
cross-post signals (same text from new accounts, bursts) are this process's: each
worker sees the accounts of the partitions it holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Final

import httpx

from plaza.db import connect
from plaza.moderation.commits import read_posts
from plaza.moderation.dao_sync import DaoSync
from plaza.moderation.identity import read_identity
from plaza.moderation.labeler import Labeler
from plaza.moderation.moderator import Moderator
from plaza.moderation.policy import Policy
from plaza.moderation.store import LabelerStore
from plaza.services.bus.client import Bus
from plaza.services.bus.layout import BusLayout
from plaza.services.bus.worker import DEFAULT_LEASE_S, Handler, PartitionWorker
from plaza.services.identities import Identities

if TYPE_CHECKING:
    from plaza.moderation.classifier import Classifier

log = logging.getLogger("plaza.labeler")

DEFAULT_GROUP: Final = "labeler"
MAX_BATCH: Final = 500


class LabelerWorker:
    """One labeler worker's share of the bus (see the module docstring)."""

    def __init__(
        self,
        bus: Bus,
        labeler: Labeler,
        moderator: Moderator,
        identities: Identities,
        *,
        group: str = DEFAULT_GROUP,
        worker_id: str | None = None,
        lease_s: float = DEFAULT_LEASE_S,
        batch: int = MAX_BATCH,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.layout = bus.layout
        self.labeler = labeler
        self.moderator = moderator
        self.identities = identities
        self.clock = clock
        self.dropped = 0  # frames that failed their checks
        self.worker = PartitionWorker(
            bus, self._open, group=group, worker_id=worker_id, lease_s=lease_s, batch=batch
        )

    @property
    def handled(self) -> int:
        """Messages acknowledged after their batch was stored."""
        return self.worker.handled

    async def run(self) -> None:
        """Label a share of the partitions until cancelled."""
        await self.worker.run()

    @contextlib.asynccontextmanager
    async def _open(self, p: int) -> AsyncIterator[Handler]:
        source = self.layout.source(p)

        async def handle(frames: list[bytes]) -> None:
            await self.handle(source, frames)

        yield handle

    async def handle(self, source: str, frames: list[bytes]) -> None:
        """Judge and store one batch of ``source``'s frames with its cursor (see the
        module docstring)."""
        store = self.labeler.store
        cursor = store.cursor(source)
        while True:
            read = await read_posts(frames, self.identities, after=cursor)
            if read.last <= cursor:
                return
            decisions = self.moderator.judge(read.posts, self.clock())
            with store.db.transaction():
                store.lock_labels()
                stored = store.cursor(source)
                if stored == cursor:
                    self.labeler.apply(decisions)
                    store.set_cursor(source, read.last)
                    self.dropped += read.dropped
                    return
            cursor = stored  # another process stored part of it meanwhile


async def serve_worker(
    bus_url: str,
    db_url: str,
    data_dir: Path,
    directory_url: str,
    load_classifier: Callable[[], Classifier],
    *,
    stream: str,
    partitions: int,
    dao_url: str | None = None,
    dao_poll_s: float = 5.0,
    account_strikes: int = 3,
    group: str = DEFAULT_GROUP,
    worker_id: str | None = None,
    lease_s: float = DEFAULT_LEASE_S,
) -> None:
    """Run one labeler worker until cancelled (``plaza serve labeler-worker``)."""
    layout = BusLayout(stream, partitions)
    did, key = read_identity(data_dir)
    classifier = await asyncio.to_thread(load_classifier)
    store = LabelerStore(connect(db_url))
    labeler = Labeler(store, did, key, account_strikes=account_strikes, policy=Policy(did))
    try:
        bus = await Bus.connect(bus_url, layout, name=f"plaza-labeler-{worker_id or ''}")
        try:
            await bus.ensure_stream_exists()
            async with httpx.AsyncClient(timeout=30.0) as http:
                dao = DaoSync(labeler, http, dao_url, issue=False)
                await dao.sync()  # the mandate before the first label
                following = asyncio.create_task(dao.follow(dao_poll_s))
                worker = LabelerWorker(
                    bus,
                    labeler,
                    Moderator(classifier),
                    Identities(directory_url, http),
                    group=group,
                    worker_id=worker_id,
                    lease_s=lease_s,
                )
                log.info("labeler-worker %s: following %s", worker.worker.worker_id, stream)
                try:
                    await worker.run()
                finally:
                    following.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await following
        finally:
            await bus.close()
    finally:
        store.close()
