"""The archive as one Starlette app: ``create_app(settings)``.

Routes: ``/_health`` (also ``/xrpc/_health``), ``/_metrics`` (JSON), and the read
methods of :mod:`plaza.services.archive.xrpc` under ``/xrpc/{nsid}``. The lifespan
runs the three workers — the firehose :class:`~plaza.services.archive.follower.Follower`,
the :class:`~plaza.services.archive.repo_fetch.RepoFetcher` and the
:class:`~plaza.services.archive.blob_fetch.BlobFetcher` — and on shutdown stops them
and closes the store. Everything a worker stores is committed before it moves on, so
stopping at any moment loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from plaza.services.archive.backfill import backfill
from plaza.services.archive.blob_fetch import BlobFetcher
from plaza.services.archive.blobs import BlobFiles
from plaza.services.archive.follower import Follower
from plaza.services.archive.metrics import ArchiveMetrics
from plaza.services.archive.repo_fetch import RepoFetcher
from plaza.services.archive.retry import run_queue
from plaza.services.archive.settings import ArchiveSettings
from plaza.services.archive.store import ArchiveStore
from plaza.services.archive.xrpc import Reads, dispatch
from plaza.services.pds.identity import DirectoryClient

VERSION = "plaza-archive/0.1"


@dataclass
class Archive:
    """The archive's parts, as the app and the tests reach them."""

    settings: ArchiveSettings
    store: ArchiveStore
    blobs: BlobFiles
    metrics: ArchiveMetrics
    clock: Callable[[], float]

    def metrics_json(self) -> dict[str, Any]:
        """Sizes of what is archived, and the workers' counters."""
        counts = self.store.counts()
        store_bytes = self.store.store_bytes()
        return {
            "repos": counts.repos,
            "records": counts.records,
            "blocks": counts.blocks,
            "block_bytes": counts.block_bytes,
            "blobs": counts.blobs,
            "blob_bytes": counts.blob_bytes,
            "blobs_wanted": counts.blobs_wanted,
            "resyncs_pending": counts.resyncs_pending,
            "store_bytes": store_bytes,
            "bytes_per_record": round(store_bytes / counts.records, 1) if counts.records else None,
            "cursor": self.store.cursor(),
            **self.metrics.as_json(),
        }


def open_archive(settings: ArchiveSettings, *, clock: Callable[[], float] = time.time) -> Archive:
    """Open (or create) the store and the blob folder of ``settings``."""
    store = ArchiveStore.open(settings.database_url, settings.firehose_url)
    return Archive(settings, store, BlobFiles(settings.blob_dir), ArchiveMetrics(), clock)


def create_app(settings: ArchiveSettings, *, clock: Callable[[], float] = time.time) -> Starlette:
    """An archive over ``settings``: its store opens now, its workers start with the
    app's lifespan. ``clock`` gives the times retries are scheduled by."""
    archive = open_archive(settings, clock=clock)
    reads = Reads(archive.store, archive.blobs)

    async def xrpc(request: Request) -> Response:
        return await dispatch(reads, request)

    async def health(request: Request) -> Response:
        return JSONResponse(
            {"status": "ok", "version": VERSION, "firehose": archive.metrics.connected}
        )

    async def metrics(request: Request) -> Response:
        return JSONResponse(archive.metrics_json())

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        async with httpx.AsyncClient(timeout=settings.fetch_timeout_s) as http:
            tasks = start_workers(archive, http)
            try:
                yield {}
            finally:
                for task in tasks:
                    task.cancel()
                for task in tasks:
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                archive.store.close()

    routes = [
        Route("/_health", health),
        Route("/xrpc/_health", health),
        Route("/_metrics", metrics),
        Route("/xrpc/{nsid}", xrpc, methods=["GET", "HEAD", "POST"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.archive = archive
    return app


def start_workers(archive: Archive, http: httpx.AsyncClient) -> list[asyncio.Task[None]]:
    """Start the follower and the two fetchers on the running loop."""
    settings, store, clock = archive.settings, archive.store, archive.clock
    directory = DirectoryClient(settings.directory_url, http)
    wake_repos, wake_blobs = asyncio.Event(), asyncio.Event()
    files, counters = archive.blobs, archive.metrics
    repos = RepoFetcher(
        settings, store, files, directory,
        http=http, metrics=counters, wake_blobs=wake_blobs.set, clock=clock,
    )  # fmt: skip
    blobs = BlobFetcher(settings, store, files, directory, http=http, metrics=counters, clock=clock)
    follower = Follower(
        settings, store, archive.blobs, directory, archive.metrics,
        wake_resync=wake_repos.set, wake_blobs=wake_blobs.set, clock=clock,
    )  # fmt: skip
    first_start = store.cursor() is None

    async def follow() -> None:
        if first_start:
            counters.backfilled = await backfill(settings, store, http, clock=clock)
            wake_repos.set()
        await follower.run()

    return [
        asyncio.create_task(follow(), name="archive-follower"),
        asyncio.create_task(
            run_queue(repos.run_once, repos.next_due, wake_repos, clock), name="archive-repos"
        ),
        asyncio.create_task(
            run_queue(blobs.run_once, blobs.next_due, wake_blobs, clock), name="archive-blobs"
        ),
    ]
