"""The relay as one Starlette app: ``create_app(settings)``.

Routes: ``/_health`` (also ``/xrpc/_health``), ``/_metrics`` (JSON counters), the
combined firehose at ``/xrpc/com.atproto.sync.subscribeRepos``, and the XRPC methods
of :mod:`plaza.services.relay.xrpc`. The store opens when the app is made; the
lifespan follows the seed hosts and every stored one, polls the market when one is set,
resumes the resync of accounts left desynchronized, and runs the group commit (every
``flush_every_s``) and the pruning of the replay window. Shutdown stops the
subscribers, writes what is pending and closes the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Final

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from plaza.errors import PlazaError
from plaza.services.buckets import TokenBuckets
from plaza.services.bus import Bus, BusLayout
from plaza.services.identities import Identities
from plaza.services.relay.bus_publisher import BusPublisher
from plaza.services.relay.firehose import Firehose
from plaza.services.relay.hosts import Hosts
from plaza.services.relay.outbox import Outbox
from plaza.services.relay.pool import PoolVerifier
from plaza.services.relay.relay import Relay
from plaza.services.relay.settings import RelaySettings, endpoint_host
from plaza.services.relay.state import DESYNCHRONIZED
from plaza.services.relay.store import RelayStore
from plaza.services.relay.verifier import InlineVerifier, Verifier
from plaza.services.relay.xrpc import RelayApi, dispatch

log = logging.getLogger("plaza.relay")

VERSION: Final = "plaza-relay/0.1"
PRUNE_EVERY_S: Final = 60.0


@dataclass
class RelayComponents:
    """The parts of one relay, for the app and for tests that look inside."""

    settings: RelaySettings
    store: RelayStore
    outbox: Outbox
    relay: Relay
    hosts: Hosts
    firehose: Firehose
    http: httpx.AsyncClient
    publisher: BusPublisher | None = None

    def metrics(self) -> dict[str, Any]:
        return self.relay.counters.to_json(
            self.relay.hosts,
            seq=self.outbox.last_seq,
            accounts=len(self.relay.accounts),
            subscribers=self.firehose.open,
            flushes=self.outbox.flushes,
            flush_failures=self.outbox.flush_failures,
            identity_lookups=self.relay.identities.lookups,
        )


def open_components(
    settings: RelaySettings,
    *,
    clock: Callable[[], float] = time.time,
    verifier: Verifier | None = None,
) -> RelayComponents:
    """Open the store and build every part (nothing runs until :func:`run_components`)."""
    if settings.replay_window < 1:
        raise PlazaError("the replay window must keep at least one event", code="InvalidConfig")
    store = RelayStore.open(settings.database_url)
    outbox = Outbox(store)
    http = httpx.AsyncClient(timeout=10.0, follow_redirects=False)
    identities = Identities(
        settings.directory_url,
        http,
        refresh_s=settings.identity_refresh_s,
        host_of=endpoint_host,
    )
    accounts = {a.did: a for a in store.accounts()}
    if verifier is None:
        verifier = (
            PoolVerifier(settings.verify_workers) if settings.verify_workers else InlineVerifier()
        )
    relay = Relay(
        settings,
        outbox,
        identities,
        verifier,
        http=http,
        accounts=accounts,
        clock=clock,
    )
    hosts = Hosts(relay, store, http, clock=clock)
    hosts.load()
    return RelayComponents(
        settings, store, outbox, relay, hosts, Firehose(outbox, settings.max_subscribers), http
    )


@contextlib.asynccontextmanager
async def run_components(parts: RelayComponents) -> AsyncIterator[None]:
    """Run the relay's background work for the duration of the block."""
    settings = parts.settings
    tasks = [
        asyncio.create_task(_flusher(parts), name="relay-flush"),
        asyncio.create_task(_pruner(parts), name="relay-prune"),
    ]
    for seed in settings.hosts:
        try:
            await parts.hosts.add(seed, "seed", check=False)
        except PlazaError as exc:
            log.error("relay: seed host %s not followed: %s", seed, exc.message)
    parts.hosts.start()
    if settings.market_url:
        tasks.append(
            asyncio.create_task(
                parts.hosts.poll_market(settings.market_url, settings.market_poll_s)
            )
        )
    for did, acct in parts.relay.accounts.items():
        if acct.status == DESYNCHRONIZED:
            parts.relay.start_resync(did)
    bus = None
    if settings.bus:
        bus = await Bus.connect(
            settings.bus, BusLayout(settings.bus_stream, settings.bus_partitions)
        )
        await bus.ensure_stream(settings.replay_window)
        parts.publisher = BusPublisher(parts.outbox, bus)
        tasks.append(asyncio.create_task(parts.publisher.run(), name="relay-bus"))
    try:
        yield
    finally:
        await parts.hosts.aclose()
        await parts.relay.aclose()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        parts.outbox.flush()
        if bus is not None:
            await bus.close()
        await parts.http.aclose()
        parts.store.close()


async def _flusher(parts: RelayComponents) -> None:
    every = parts.settings.flush_every_s
    while True:
        await asyncio.sleep(every)
        try:
            parts.outbox.flush()
        except Exception:  # the group commit must outlive any one failure
            log.exception("relay: flushing failed; retrying")


async def _pruner(parts: RelayComponents) -> None:
    while True:
        await asyncio.sleep(PRUNE_EVERY_S)
        try:
            parts.store.prune_events(parts.settings.replay_window)
        except Exception:
            log.exception("relay: pruning the replay window failed")


def create_app(
    settings: RelaySettings,
    *,
    clock: Callable[[], float] = time.time,
    verifier: Verifier | None = None,
) -> Starlette:
    """A relay over ``settings``; its store opens now, its hosts are followed while the
    app runs (see the module docstring). ``app.state.relay`` holds its parts."""
    parts = open_components(settings, clock=clock, verifier=verifier)
    api = RelayApi(parts.relay, parts.hosts, parts.store, TokenBuckets(*settings.crawl_rate))

    async def health(request: Request) -> Response:
        return JSONResponse(
            {
                "status": "ok",
                "version": VERSION,
                "hosts": len(parts.relay.hosts),
                "seq": parts.outbox.last_seq,
            }
        )

    async def metrics(request: Request) -> Response:
        return JSONResponse(parts.metrics())

    async def subscribe_repos(websocket: WebSocket) -> None:
        await parts.firehose.serve(websocket)

    async def xrpc(request: Request) -> Response:
        return await dispatch(api, request)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        async with run_components(parts):
            yield {}

    app = Starlette(
        routes=[
            Route("/_health", health),
            Route("/xrpc/_health", health),
            Route("/_metrics", metrics),
            WebSocketRoute("/xrpc/com.atproto.sync.subscribeRepos", subscribe_repos),
            Route("/xrpc/{nsid}", xrpc, methods=["GET", "HEAD", "POST"]),
        ],
        lifespan=lifespan,
    )
    app.state.relay = parts
    return app
