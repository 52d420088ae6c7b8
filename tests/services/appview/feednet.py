"""A small live network for the custom-feed and label tests: a directory, one PDS, an
app view following it (allowed to call services on loopback), and a tiny third-party
feed generator server (:class:`FeedGen`) that checks the app view's service token the
way a real generator does (the issuer's key from its DID document)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from plaza.atproto import cbor
from plaza.atproto.crypto import PrivateKey
from plaza.atproto.plc import PlcOperation, Service, did_for_genesis, sign_operation
from plaza.errors import PlazaError
from plaza.services.appview import AppviewSettings
from plaza.services.appview import create_app as create_appview
from plaza.services.appview.remote import parse_did_doc
from plaza.services.directory import DirectorySettings
from plaza.services.directory import create_app as create_directory
from plaza.services.pds import PdsSettings, create_app, service_did_for
from plaza.services.runner import ServedApp, ServerThread
from plaza.services.service_jwt import parse, verify_service_jwt
from tests.conftest import PG_URL
from tests.services.appview.conftest import ON_PG, Net, _free_port


@dataclass
class FeedGen:
    """A third-party feed generator: answers ``getFeedSkeleton`` with ``answer`` (a JSON
    body, or raw bytes) after verifying the caller's token; records each caller."""

    did: str
    url: str
    answer: Any = field(default_factory=lambda: {"feed": []})
    callers: list[dict[str, Any]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    def app(self) -> Starlette:
        async def did_json(request: Request) -> Response:
            return JSONResponse(
                {
                    "@context": ["https://www.w3.org/ns/did/v1"],
                    "id": self.did,
                    "service": [
                        {
                            "id": "#bsky_fg",
                            "type": "BskyFeedGenerator",
                            "serviceEndpoint": self.url,
                        }
                    ],
                }
            )

        async def skeleton(request: Request) -> Response:
            header = request.headers.get("authorization", "")
            try:
                jwt = parse(header.removeprefix("Bearer "))
                iss = str(jwt.payload["iss"])
                host = iss.removeprefix("did:web:").replace("%3A", ":")
                async with httpx.AsyncClient() as http:
                    doc = (await http.get(f"http://{host}/.well-known/did.json")).json()
                key = parse_did_doc(iss, doc).keys["atproto"]
                payload = verify_service_jwt(
                    jwt,
                    key,
                    aud=self.did,
                    lxm="app.bsky.feed.getFeedSkeleton",
                    now=time.time(),
                )
            except (PlazaError, KeyError, ValueError, httpx.HTTPError) as exc:
                self.refused.append(repr(exc))
                return JSONResponse({"error": "AuthRequired", "message": "bad token"}, 401)
            self.callers.append({**payload, "params": dict(request.query_params)})
            if isinstance(self.answer, bytes):
                return Response(self.answer, media_type="application/json")
            return Response(json.dumps(self.answer), media_type="application/json")

        return Starlette(
            routes=[
                Route("/.well-known/did.json", did_json),
                Route("/xrpc/app.bsky.feed.getFeedSkeleton", skeleton),
            ]
        )


class Labeler:
    """A labeler: a ``did:plc`` naming ``#atproto_label`` and ``#atproto_labeler``, and
    a ``subscribeLabels`` WebSocket that replays every frame after the cursor and then
    each one :meth:`publish` adds."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.key = PrivateKey.generate()
        self.rotation = PrivateKey.generate()
        op = sign_operation(
            PlcOperation(
                rotation_keys=(self.rotation.did_key(),),
                verification_methods={"atproto_label": self.key.did_key()},
                also_known_as=("at://labeler.test",),
                services={"atproto_labeler": Service("AtprotoLabeler", url)},
                prev=None,
            ),
            self.rotation,
        )
        self.genesis = op
        self.did = did_for_genesis(op)
        self.frames: list[bytes] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._changed: asyncio.Condition | None = None

    def register(self, directory: str) -> None:
        r = httpx.post(f"{directory}/{self.did}", json=self.genesis.to_json(), timeout=10)
        assert r.status_code == 200, r.text

    def label(
        self, uri: str, val: str, *, key: PrivateKey | None = None, **extra: Any
    ) -> dict[str, Any]:
        """A signed label (``key``: sign with another key, for a forgery)."""
        label: dict[str, Any] = {
            "ver": 1,
            "src": self.did,
            "uri": uri,
            "val": val,
            "cts": "2026-01-01T00:00:00.000Z",
            **extra,
        }
        label["sig"] = (key or self.key).sign(cbor.encode(label))
        return label

    def publish(self, *labels: dict[str, Any]) -> int:
        """Add a ``#labels`` frame; its sequence number."""
        seq = len(self.frames) + 1
        header = cbor.encode({"op": 1, "t": "#labels"})
        self.frames.append(header + cbor.encode({"seq": seq, "labels": list(labels)}))
        if self._loop is not None:
            asyncio.run_coroutine_threadsafe(self._notify(), self._loop).result(timeout=10)
        return seq

    async def _notify(self) -> None:
        assert self._changed is not None
        async with self._changed:
            self._changed.notify_all()

    def app(self) -> Starlette:
        async def subscribe(ws: WebSocket) -> None:
            if self._changed is None:
                self._loop = asyncio.get_running_loop()
                self._changed = asyncio.Condition()
            cursor = int(ws.query_params.get("cursor") or 0)
            await ws.accept()
            changed = self._changed
            closed = asyncio.Event()

            async def watch() -> None:  # the client going away ends the wait below
                await ws.receive()
                closed.set()
                async with changed:
                    changed.notify_all()

            watcher = asyncio.create_task(watch())
            sent = cursor
            try:
                while not closed.is_set():
                    async with changed:
                        await changed.wait_for(
                            lambda n=sent: len(self.frames) > n or closed.is_set()
                        )
                    while sent < len(self.frames) and not closed.is_set():
                        await ws.send_bytes(self.frames[sent])
                        sent += 1
            except WebSocketDisconnect:
                return
            finally:
                watcher.cancel()

        return Starlette(
            routes=[WebSocketRoute("/xrpc/com.atproto.label.subscribeLabels", subscribe)]
        )


@dataclass
class FeedNet:
    net: Net
    feedgen: FeedGen
    appview_did: str
    appview_app: Any
    labeler: Labeler


def feed_network(root: Path) -> Iterator[FeedNet]:
    """Start the network (see the module docstring); yields it, stops it after. The app
    view accepts the labels of the network's :class:`Labeler`."""
    dport, p1, av, fg, lb = (_free_port() for _ in range(5))
    labeler = Labeler(f"http://127.0.0.1:{lb}")
    directory = f"http://127.0.0.1:{dport}"
    pds_url = f"http://127.0.0.1:{p1}"
    av_url = f"http://127.0.0.1:{av}"
    fg_url = f"http://127.0.0.1:{fg}"
    schema = f"avf_{uuid.uuid4().hex[:10]}" if ON_PG else None
    pg = f"{PG_URL}?schema={schema}" if schema else None
    pds = create_app(
        PdsSettings(
            data_dir=root / "pds",
            public_url=pds_url,
            directory_url=directory,
            appview_url=av_url,
            appview_did=service_did_for(av_url),
        )
    )
    appview = create_appview(
        AppviewSettings(
            data_dir=root / "appview",
            public_url=av_url,
            directory_url=directory,
            relay_urls=(pds_url,),
            db=pg,
            labelers=(labeler.did,),
            remote_allow_private=True,
            remote_timeout_s=10.0,
            remote_max_bytes=64 * 1024,
        )
    )
    feedgen = FeedGen(service_did_for(fg_url), fg_url)
    apps = [
        ServedApp(
            "directory", create_directory(DirectorySettings.for_data_dir(root / "d")), port=dport
        ),
        ServedApp("pds", pds, port=p1),
        ServedApp("appview", appview, port=av),
        ServedApp("feedgen", feedgen.app(), port=fg),
        ServedApp("labeler", labeler.app(), port=lb),
    ]
    try:
        with ServerThread(apps) as urls:
            net = Net(urls[0], [urls[1]], urls[2], [pds])
            labeler.register(urls[0])
            yield FeedNet(net, feedgen, service_did_for(av_url), appview, labeler)
    finally:
        if schema is not None:
            import psycopg

            with psycopg.connect(PG_URL, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
