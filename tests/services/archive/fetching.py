"""The fetchers driven directly, round by round, with a clock the test sets."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import httpx

from plaza.services.archive import ArchiveSettings, open_archive
from plaza.services.archive.app import Archive
from plaza.services.archive.blob_fetch import BlobFetcher
from plaza.services.archive.repo_fetch import RepoFetcher
from plaza.services.pds.identity import DirectoryClient

T = TypeVar("T")


@dataclass
class Fetchers:
    """An archive's parts and its two fetchers, on a clock at ``now``."""

    settings: ArchiveSettings
    archive: Archive = field(init=False)
    now: float = 1000.0

    def __post_init__(self) -> None:
        self.archive = open_archive(self.settings, clock=lambda: self.now)

    def run(self, step: Callable[[RepoFetcher, BlobFetcher], Awaitable[T]]) -> T:
        """Run ``step`` with fresh fetchers on a fresh event loop."""

        async def go() -> T:
            a = self.archive
            async with httpx.AsyncClient(timeout=10) as http:
                directory = DirectoryClient(self.settings.directory_url, http)
                repos = RepoFetcher(
                    self.settings, a.store, a.blobs, directory,
                    http=http, metrics=a.metrics, wake_blobs=lambda: None, clock=a.clock,
                )  # fmt: skip
                blobs = BlobFetcher(
                    self.settings, a.store, a.blobs, directory,
                    http=http, metrics=a.metrics, clock=a.clock,
                )  # fmt: skip
                return await step(repos, blobs)

        return asyncio.run(go())

    def repos_round(self) -> int:
        return self.run(lambda repos, _: repos.run_once())

    def blobs_round(self) -> int:
        return self.run(lambda _, blobs: blobs.run_once())
