"""The repo fetcher: gives a DID marked for a resync its whole repository as the base.

For each DID the follower marked (no base yet, or its chain broke), it asks the
directory for the DID's current PDS and key, reads ``com.atproto.sync.getRepo`` from
that PDS, verifies the CAR in full (:func:`plaza.atproto.repo_verify.import_car`: every
hash, the signature, the whole tree) and stores it as the DID's archived copy
(:meth:`ArchiveStore.rebase`). A repository older than the archived one is refused, so
a host that went back in time cannot take what the archive holds. Any failure leaves
the archived copy as it was and the DID marked, to be tried again after a doubling
delay (:func:`plaza.services.archive.retry.backoff`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import httpx

from plaza.atproto.errors import AtprotoError
from plaza.atproto.repo_verify import import_car
from plaza.services.archive.blobs import BlobFiles
from plaza.services.archive.changes import RepoBase, repo_base
from plaza.services.archive.errors import FetchError
from plaza.services.archive.hosts import pds_of, signing_key
from plaza.services.archive.metrics import ArchiveMetrics
from plaza.services.archive.retry import backoff, get_bytes
from plaza.services.archive.settings import ArchiveSettings
from plaza.services.archive.store import ArchiveStore, StaleHeadError
from plaza.services.pds.identity import DirectoryClient

log = logging.getLogger("plaza.archive")


class RepoFetcher:
    """Resyncs the DIDs the store marks (see the module docstring)."""

    def __init__(
        self,
        settings: ArchiveSettings,
        store: ArchiveStore,
        blobs: BlobFiles,
        directory: DirectoryClient,
        *,
        http: httpx.AsyncClient,
        metrics: ArchiveMetrics,
        wake_blobs: Callable[[], None],
        clock: Callable[[], float],
    ) -> None:
        self.settings = settings
        self.store = store
        self.blobs = blobs
        self.directory = directory
        self.http = http
        self.metrics = metrics
        self.wake_blobs = wake_blobs
        self.clock = clock

    def next_due(self) -> float | None:
        return self.store.next_resync()

    async def run_once(self) -> int:
        """Resync the DIDs due now (a few at once); return how many were tried."""
        due = self.store.resyncs_due(self.clock(), self.settings.fetch_concurrency)
        await asyncio.gather(*(self.resync(did, attempts) for did, attempts in due))
        return len(due)

    async def resync(self, did: str, attempts: int = 0) -> bool:
        """Fetch and store ``did``'s repository; True if it is now the archived copy."""
        head = self.store.head(did)
        expected = None if head is None else head.commit_cid
        try:
            base = await self.fetch(did)
            if head is not None and head.rev is not None and base.rev < head.rev:
                raise FetchError(
                    f"the host's repository (rev {base.rev}) is older than the archive's"
                )
            orphans = self.store.rebase(base, expected)
        except (FetchError, AtprotoError, StaleHeadError) as exc:
            delay = backoff(attempts, self.settings.retry_base_s, self.settings.retry_max_s)
            log.info("archive: resync of %s failed (retry in %.0fs): %s", did, delay, exc.message)
            self.store.resync_failed(did, f"{exc.code}: {exc.message}", self.clock() + delay)
            self.metrics.resyncs_failed += 1
            return False
        self.metrics.resyncs_done += 1
        for cid in orphans:
            self.blobs.delete(cid)
        if base.blob_refs:
            self.wake_blobs()
        return True

    async def fetch(self, did: str) -> RepoBase:
        """``did``'s whole repository from its current PDS, verified."""
        host = await pds_of(self.directory, did, refresh=True)
        key = await signing_key(self.directory, did, refresh=True)
        data = await get_bytes(
            self.http,
            f"{host}/xrpc/com.atproto.sync.getRepo",
            {"did": did},
            self.settings.max_repo_bytes,
        )
        max_bytes = self.settings.max_repo_bytes

        def verify() -> RepoBase:
            return repo_base(import_car(data, did=did, key=key, max_bytes=max_bytes))

        return await asyncio.to_thread(verify)
