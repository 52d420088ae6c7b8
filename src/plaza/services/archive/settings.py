"""Settings of one archive, read once at the edge (``plaza serve archive`` flags) and
passed to :func:`plaza.services.archive.create_app`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

DEFAULT_PORT: Final = 2586
DB_FILE: Final = "archive.db"


@dataclass(frozen=True)
class ArchiveSettings:
    """Everything an archive needs to run.

    ``relay_url`` is any ``com.atproto.sync.subscribeRepos`` source (normally the
    relay's, a PDS's works too), as an ``http(s)://`` or ``ws(s)://`` base URL.
    ``db`` is a PostgreSQL URL; without it the store is SQLite at
    ``data_dir/archive.db``. Blobs are files under ``data_dir/blobs``.
    """

    data_dir: Path
    relay_url: str
    directory_url: str
    public_url: str = f"http://127.0.0.1:{DEFAULT_PORT}"
    db: str | None = None
    max_frame_bytes: int = 5_000_000
    max_repo_bytes: int = 100_000_000
    max_blob_bytes: int = 50_000_000
    fetch_timeout_s: float = 30.0
    # Retries of a repository or blob fetch that failed: doubling from the first delay
    # up to the ceiling; the firehose connection backs off the same way.
    retry_base_s: float = 1.0
    retry_max_s: float = 600.0
    fetch_concurrency: int = 4

    @property
    def database_url(self) -> str:
        return self.db or f"sqlite://{Path(self.data_dir).resolve() / DB_FILE}"

    @property
    def blob_dir(self) -> Path:
        return Path(self.data_dir) / "blobs"

    @property
    def source_http_url(self) -> str:
        """``relay_url`` as an ``http(s)://`` base URL, for its other XRPC methods."""
        base = self.relay_url.rstrip("/").removesuffix("/xrpc/com.atproto.sync.subscribeRepos")
        if base.startswith("ws://"):
            return "http://" + base[len("ws://") :]
        if base.startswith("wss://"):
            return "https://" + base[len("wss://") :]
        return base

    @property
    def firehose_url(self) -> str:
        """The WebSocket URL of ``relay_url``'s ``subscribeRepos``."""
        base = self.relay_url.rstrip("/")
        if base.startswith("http://"):
            base = "ws://" + base[len("http://") :]
        elif base.startswith("https://"):
            base = "wss://" + base[len("https://") :]
        if not base.endswith("/xrpc/com.atproto.sync.subscribeRepos"):
            base += "/xrpc/com.atproto.sync.subscribeRepos"
        return base
