"""The app view as one Starlette app: ``create_app(settings)``.

Routes: the health check (``/xrpc/_health`` and ``/_health``, with the firehose cursor
indexed so far), every XRPC method through one dispatcher (the method table is the
explicit list below), and the service's ``did:web`` document naming it as
``#bsky_appview``. The lifespan runs the firehose follower
(:mod:`plaza.services.appview.follower`) when a source is configured, and closes the
store on shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from plaza.services.appview.handlers import (
    actor,
    discovery,
    feed,
    feedgen,
    graph,
    interactions,
    notification,
)
from plaza.services.appview.service import Appview
from plaza.services.appview.settings import AppviewSettings
from plaza.services.appview.store import AppviewStore
from plaza.services.appview.xrpc import Dispatcher, Method

METHODS: list[Method] = [
    *actor.METHODS,
    *feed.METHODS,
    *graph.METHODS,
    *notification.METHODS,
    *interactions.METHODS,
    *discovery.METHODS,
    *feedgen.METHODS,
]


def create_app(settings: AppviewSettings) -> Starlette:
    """The app view over its store (opened now; migrated to the latest schema)."""
    store = AppviewStore.for_data_dir(settings.data_dir, settings.db)
    av = Appview(settings, store)
    dispatcher = Dispatcher(av, METHODS)

    async def health(request: Request) -> Response:
        sources = [
            {
                "url": f.source_url,
                "seq": f.seq,
                "events": f.events,
                "backfills": f.backfills,
                "pending_backfills": f.pending_backfills,
                "runs": f.runs,
                "dropped": dict(f.dropped),
                "connected": f.connected.is_set(),
            }
            for f in av.followers
        ]
        labelers = [
            {"did": s.did, "seq": s.seq, "dropped": av.labels.dropped, "bad_frames": s.bad_frames}
            for s in av.label_streams
        ]
        return JSONResponse(
            {"status": "ok", "did": settings.did, "sources": sources, "labelers": labelers}
        )

    async def did_json(request: Request) -> Response:
        did = settings.did
        return JSONResponse(
            {
                "@context": [
                    "https://www.w3.org/ns/did/v1",
                    "https://w3id.org/security/multikey/v1",
                ],
                "id": did,
                "verificationMethod": [
                    {
                        "id": f"{did}#atproto",
                        "type": "Multikey",
                        "controller": did,
                        "publicKeyMultibase": av.key.public_key.multikey(),
                    }
                ],
                "service": [
                    {
                        "id": "#bsky_fg",
                        "type": "BskyFeedGenerator",
                        "serviceEndpoint": settings.public_url,
                    },
                    {
                        "id": "#bsky_appview",
                        "type": "BskyAppView",
                        "serviceEndpoint": settings.public_url,
                    },
                ],
            }
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(f.run()) for f in av.followers if settings.follow]
        tasks += [asyncio.create_task(s.run()) for s in av.label_streams if settings.follow]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await av.aclose()

    app = Starlette(
        routes=[
            Route("/xrpc/_health", health),
            Route("/_health", health),
            Route("/xrpc/{nsid}", dispatcher.handle, methods=["GET", "HEAD", "POST"]),
            Route("/.well-known/did.json", did_json),
        ],
        lifespan=lifespan,
    )
    app.state.appview = av
    return app
