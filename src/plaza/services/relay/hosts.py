"""Finding hosts and following each: seeds, ``requestCrawl`` and the market.

:class:`Hosts` keeps the registry of followed hosts (persisted in the store, with their
cursors) and one :class:`~plaza.services.relay.subscriber.HostSubscriber` task per host.
A host comes from the settings' seeds, from ``requestCrawl``, or from the market's list
of registered hosting providers (``GET {market}/market/providers?service=hosting``,
polled). Before a host from ``requestCrawl`` or the market is followed it must answer
``com.atproto.server.describeServer`` with a JSON object naming a ``did``; loopback and
private addresses are refused unless the settings allow them (a local network); and
no more than ``max_hosts`` are followed. Seeds are followed as given.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from collections.abc import Callable
from typing import Any, Final
from urllib.parse import urlsplit

import httpx

from plaza.errors import PlazaError
from plaza.services.buckets import TokenBuckets
from plaza.services.relay.errors import (
    HostBannedError,
    HostUnreachableError,
    InvalidRequestError,
    TooManyHostsError,
)
from plaza.services.relay.relay import Relay
from plaza.services.relay.settings import host_url, hostname_of
from plaza.services.relay.state import BANNED, IDLE, HostState
from plaza.services.relay.store import RelayStore
from plaza.services.relay.subscriber import HostSubscriber

log = logging.getLogger("plaza.relay")

CHECK_TIMEOUT_S: Final = 10.0
MAX_MARKET_BYTES: Final = 4 * 1024 * 1024


class Hosts:
    """The followed hosts and their subscribers (see the module docstring)."""

    def __init__(
        self,
        relay: Relay,
        store: RelayStore,
        http: httpx.AsyncClient,
        *,
        clock: Callable[[], float],
    ) -> None:
        self.relay = relay
        self.store = store
        self.http = http
        self.clock = clock
        s = relay.settings
        self.buckets = TokenBuckets(s.host_rate_per_s, s.host_burst)
        self.subscribers: dict[str, HostSubscriber] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._lock = asyncio.Lock()

    def load(self) -> None:
        """Read the stored hosts into the relay (before :meth:`start`)."""
        for row in self.store.hosts():
            self.relay.hosts[row.hostname] = HostState(
                row.hostname,
                row.url,
                cursor=row.cursor,
                status=BANNED if row.status == BANNED else IDLE,
                source=row.source,
                added_s=row.added_s,
            )

    def start(self) -> None:
        """Follow every known host that is not banned."""
        for host in self.relay.hosts.values():
            if host.status != BANNED:
                self._follow(host)

    def _follow(self, host: HostState) -> None:
        if host.hostname in self._tasks:
            return
        sub = HostSubscriber(self.relay, host, self.buckets)
        self.subscribers[host.hostname] = sub
        self._tasks[host.hostname] = asyncio.create_task(sub.run(), name=f"relay-{host.hostname}")

    async def add(self, name: str, source: str, *, check: bool = True) -> HostState:
        """Follow the host ``name`` (hostname[:port] or URL) unless it is followed
        already; ``check`` asks it ``describeServer`` first (see the module docstring)."""
        url = host_url(name)
        hostname = hostname_of(url)
        known = self.relay.hosts.get(hostname)
        if known is not None:
            if known.status == BANNED:
                raise HostBannedError(f"{hostname} is banned from this relay")
            return known
        async with self._lock:
            known = self.relay.hosts.get(hostname)
            if known is not None:
                return known
            if len(self.relay.hosts) >= self.relay.settings.max_hosts:
                raise TooManyHostsError(
                    f"this relay follows at most {self.relay.settings.max_hosts} hosts"
                )
            if check:
                await self._check(url)
            now = int(self.clock())
            self.store.add_host(hostname, url, source, now)
            host = HostState(hostname, url, source=source, added_s=now)
            self.relay.hosts[hostname] = host
        log.info("relay: following %s (%s)", hostname, source)
        self._follow(host)
        return host

    async def _check(self, url: str) -> None:
        host = urlsplit(url).hostname or ""
        if not self.relay.settings.allow_private_hosts and await _is_private(host):
            raise InvalidRequestError(f"{host} is a private or loopback address")
        try:
            response = await self.http.get(
                f"{url}/xrpc/com.atproto.server.describeServer", timeout=CHECK_TIMEOUT_S
            )
            body = response.json() if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError) as exc:
            raise HostUnreachableError(f"{url} did not answer describeServer: {exc}") from exc
        if not isinstance(body, dict) or not isinstance(body.get("did"), str):
            raise HostUnreachableError(f"{url} does not answer describeServer as a host does")

    async def poll_market(self, market_url: str, every_s: float) -> None:
        """Follow the market's hosting providers, asking again every ``every_s``."""
        while True:
            try:
                for endpoint in await self._market_endpoints(market_url):
                    try:
                        await self.add(endpoint, "market")
                    except PlazaError as exc:
                        log.info("relay: market provider %s not followed: %s", endpoint, exc)
            except (PlazaError, httpx.HTTPError, ValueError) as exc:
                log.warning("relay: reading the market's providers failed: %s", exc)
            await asyncio.sleep(every_s)

    async def _market_endpoints(self, market_url: str) -> list[str]:
        url = f"{market_url.rstrip('/')}/market/providers"
        response = await self.http.get(url, params={"service": "hosting"}, timeout=CHECK_TIMEOUT_S)
        if response.status_code != 200 or len(response.content) > MAX_MARKET_BYTES:
            raise HostUnreachableError(f"{url} answered HTTP {response.status_code}")
        items: Any = response.json()
        if not isinstance(items, list):
            raise HostUnreachableError(f"{url} did not answer a list")
        return [
            item["endpoint"]
            for item in items
            if isinstance(item, dict) and isinstance(item.get("endpoint"), str)
        ]

    async def aclose(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()


async def _is_private(host: str) -> bool:
    """True if ``host`` is, or resolves to, a loopback, private or link-local address."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None)
    except OSError:
        return False  # unresolvable: the describeServer check fails on its own
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if address.is_private or address.is_loopback or address.is_link_local:
            return True
    return False
