"""The blob fetcher: keeps every blob an archived record links.

The store lists the blobs each DID should hold (``wanted``). For each one due, the
fetcher reuses the file when another DID already holds the same blob, else it asks the
directory for the DID's current PDS and streams ``com.atproto.sync.getBlob`` into
:class:`~plaza.services.archive.blobs.BlobFiles`, which keeps the bytes only if they
hash to the CID and stay within the size limit. The MIME type kept is the one the host
served (a well-formed ``type/subtype``, else ``application/octet-stream``). A blob over
the limit is ``refused`` for good; any other failure (host unreachable, an error, bytes
that do not match) is tried again after a doubling delay, and what is held stays held.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Final

import httpx

from plaza.services.archive.blobs import BlobFiles, BlobTooLargeError
from plaza.services.archive.errors import FetchError
from plaza.services.archive.hosts import pds_of
from plaza.services.archive.metrics import ArchiveMetrics
from plaza.services.archive.retry import backoff
from plaza.services.archive.settings import ArchiveSettings
from plaza.services.archive.store import ArchiveStore, BlobRow
from plaza.services.pds.identity import DirectoryClient

DEFAULT_MIME: Final = "application/octet-stream"
_MIME = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,63}$")


def clean_mime(header: str | None) -> str:
    """The ``type/subtype`` of a Content-Type header, or the default when malformed."""
    value = (header or "").split(";", 1)[0].strip().lower()
    return value if _MIME.match(value) else DEFAULT_MIME


class BlobFetcher:
    """Fetches the wanted blobs (see the module docstring)."""

    def __init__(
        self,
        settings: ArchiveSettings,
        store: ArchiveStore,
        blobs: BlobFiles,
        directory: DirectoryClient,
        *,
        http: httpx.AsyncClient,
        metrics: ArchiveMetrics,
        clock: Callable[[], float],
    ) -> None:
        self.settings = settings
        self.store = store
        self.blobs = blobs
        self.directory = directory
        self.http = http
        self.metrics = metrics
        self.clock = clock

    def next_due(self) -> float | None:
        return self.store.next_blob_try()

    async def run_once(self) -> int:
        """Fetch the blobs due now (a few at once); return how many were tried."""
        due = self.store.blobs_due(self.clock(), self.settings.fetch_concurrency)
        await asyncio.gather(*(self.fetch(row) for row in due))
        return len(due)

    async def fetch(self, row: BlobRow) -> bool:
        """Fetch one wanted blob; True if the DID now holds it."""
        held = self.store.blob_held_anywhere(row.cid)
        if held is not None and self.blobs.has(row.cid):
            self.store.blob_held(row.did, row.cid, *held)
            self.metrics.blobs_fetched += 1
            return True
        try:
            host = await pds_of(self.directory, row.did)
            mime, size = await self._download(host, row)
        except BlobTooLargeError as exc:
            self.store.blob_failed(row.did, row.cid, exc.message, self.clock(), refuse=True)
            self.metrics.blobs_refused += 1
            return False
        except FetchError as exc:
            delay = backoff(row.attempts, self.settings.retry_base_s, self.settings.retry_max_s)
            self.store.blob_failed(
                row.did, row.cid, f"{exc.code}: {exc.message}", self.clock() + delay, refuse=False
            )
            self.metrics.blobs_failed += 1
            return False
        # The file is in place: record it now, with no await in between, so no orphan
        # sweep of another DID can come between the two.
        if self.store.blob_held(row.did, row.cid, mime, size):
            self.metrics.blobs_fetched += 1
            return True
        if self.store.blob_held_anywhere(row.cid) is None:
            self.blobs.delete(row.cid)  # no longer wanted while it was on its way
        return False

    async def _download(self, host: str, row: BlobRow) -> tuple[str, int]:
        url = f"{host}/xrpc/com.atproto.sync.getBlob"
        try:
            async with self.http.stream(
                "GET", url, params={"did": row.did, "cid": str(row.cid)}
            ) as resp:
                if resp.status_code != 200:
                    body = await resp.aread()
                    raise FetchError(f"{url} answered {resp.status_code}: {body[:200]!r}")
                mime = clean_mime(resp.headers.get("content-type"))
                size = await self.blobs.put_stream(
                    row.cid, resp.aiter_bytes(), self.settings.max_blob_bytes
                )
        except httpx.HTTPError as exc:
            raise FetchError(f"could not reach {url}: {exc!r}") from exc
        return mime, size
