"""A small live network for the custom-feed and label tests: a directory, one PDS, an
app view following it (allowed to call services on loopback), and a tiny third-party
feed generator server (:class:`FeedGen`) that checks the app view's service token the
way a real generator does (the issuer's key from its DID document)."""

from __future__ import annotations

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
from starlette.routing import Route

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


@dataclass
class FeedNet:
    net: Net
    feedgen: FeedGen
    appview_did: str
    appview_app: Any


def feed_network(root: Path, *, labelers: tuple[str, ...] = ()) -> Iterator[FeedNet]:
    """Start the network (see the module docstring); yields it, stops it after."""
    dport, p1, av, fg = (_free_port() for _ in range(4))
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
            labelers=labelers,
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
    ]
    try:
        with ServerThread(apps) as urls:
            net = Net(urls[0], [urls[1]], urls[2], [pds])
            yield FeedNet(net, feedgen, service_did_for(av_url), appview)
    finally:
        if schema is not None:
            import psycopg

            with psycopg.connect(PG_URL, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
