"""Settings of one relay, read once at the edge (``plaza serve relay`` flags) and passed
to :func:`plaza.services.relay.create_app`.

Hosts are named the way ``com.atproto.sync.requestCrawl`` names them: a hostname with an
optional port (``pds.example.com``, ``127.0.0.1:2583``) or a full URL.
:func:`host_url` turns either into the base URL the relay dials, and
:func:`hostname_of` into the name it files the host under (``listHosts``, metrics): a
bare name is ``http://`` when it is loopback or ``localhost`` (a local network) and
``https://`` otherwise.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from plaza.errors import InvalidInputError, PlazaError

DEFAULT_PORT: Final = 2585
DB_FILE: Final = "relay.db"


@dataclass(frozen=True)
class RelaySettings:
    """Everything one relay needs to run (see the module docstring for hosts)."""

    data_dir: Path
    directory_url: str
    public_url: str = f"http://127.0.0.1:{DEFAULT_PORT}"
    db: str | None = None
    """PostgreSQL URL; None keeps the store in SQLite under ``data_dir``."""
    hosts: tuple[str, ...] = ()
    """Hosts to crawl from the start (hostnames or URLs)."""
    market_url: str | None = None
    """A market whose registered hosting providers are crawled too (polled)."""
    market_poll_s: float = 60.0
    max_frame_bytes: int = 4 * 1024 * 1024
    """A host's frame longer than this is refused and the connection dropped."""
    host_rate_per_s: float = 5000.0
    host_burst: int = 10000
    """Events a host may send per second (steady) and at once (burst) before its
    connection is paused (throttled)."""
    replay_window: int = 1_000_000
    """Events of the relay's own stream kept on disk for cursor replay."""
    max_hosts: int = 1000
    """Hosts the relay follows at most; ``requestCrawl`` past it is refused."""
    max_subscribers: int = 1000
    crawl_rate: tuple[float, int] = (0.2, 20)
    """``requestCrawl`` per client address: per second, and at once."""
    flush_every_s: float = 0.004
    """Group commit: the longest an accepted event waits before its transaction."""
    resync_backoff_s: tuple[float, float] = (1.0, 300.0)
    """First and longest pause between attempts to resync a desynchronized account."""
    reconnect_backoff_s: tuple[float, float] = (0.5, 60.0)
    identity_refresh_s: float = 30.0
    """A DID's document is fetched again at most this often on suspicion (a bad
    signature, an event from another host); ``#identity`` always refreshes it."""
    verify_workers: int = 0
    """Worker processes that verify commits (0: verify in the event loop's process)."""
    bus: str | None = None
    """A NATS URL (``nats://host:4222``): publish every event to JetStream too
    (:mod:`plaza.services.relay.bus_publisher`); None keeps the stream in-process."""
    bus_stream: str = "PLAZA_FIREHOSE"
    bus_partitions: int = 16
    allow_private_hosts: bool = True
    """Let ``requestCrawl`` add loopback and private addresses (local networks)."""

    @property
    def database_url(self) -> str:
        return self.db or f"sqlite://{self.data_dir / DB_FILE}"


def _is_local(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_url(name: str) -> str:
    """The base URL of a host named by hostname[:port] or URL (see the module docstring).

    Raises :class:`~plaza.errors.InvalidInputError` for anything else (paths, queries,
    credentials, other schemes).
    """
    text = name.strip()
    if not text or len(text) > 300 or not text.isascii() or any(c.isspace() for c in text):
        raise InvalidInputError(f"not a hostname or URL: {name[:100]!r}")
    raw = text if "://" in text else f"//{text}"
    try:
        parts = urlsplit(raw)
        host = parts.hostname
        port = parts.port
    except ValueError as exc:
        raise InvalidInputError(f"not a hostname or URL: {name[:100]!r}") from exc
    if (
        not host
        or parts.username is not None
        or parts.password is not None
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
    ):
        raise InvalidInputError(f"not a hostname or URL: {name[:100]!r}")
    scheme = parts.scheme or ("http" if _is_local(host) else "https")
    if scheme not in ("http", "https"):
        raise InvalidInputError(f"a host is reached over http or https, not {scheme}")
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    return f"{scheme}://{netloc}"


def hostname_of(url: str) -> str:
    """The name a host is filed under: ``host[:port]`` of its URL, lowercased, without
    the scheme's default port."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    netloc = f"[{host}]" if ":" in host else host
    port = parts.port
    if port is not None and (parts.scheme, port) not in (("http", 80), ("https", 443)):
        netloc += f":{port}"
    return netloc


def endpoint_host(endpoint: str) -> str | None:
    """The name a DID document's PDS endpoint is filed under (:func:`hostname_of`), or
    None when it names no usable host."""
    try:
        return hostname_of(host_url(endpoint))
    except PlazaError:
        return None
