"""A small, real, scriptable host for the relay tests: a uvicorn-served Starlette app
with a ``subscribeRepos`` WebSocket that sends exactly the frames the test pushes (from
the subscriber's cursor on), ``describeServer``, and a ``getRepo`` that fails until the
test gives it a repository. Accounts are real did:plc identities registered in a real
directory, with repositories built and signed by the protocol core, so every frame is
what a host could send — well-formed, forged or broken as the test chooses.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from plaza.atproto.cid import CID
from plaza.atproto.crypto import ES256K, PrivateKey
from plaza.atproto.plc import create_genesis, create_update
from plaza.atproto.plc.operations import PlcOperation
from plaza.atproto.repo import CommitResult, Repo, Write, export_car
from plaza.atproto.sync import encode_ops
from plaza.atproto.tid import TidClock
from plaza.services.relay.frames import encode_frame

_CLOCK_IDS = itertools.count(1)


class FakeHost:
    """The scriptable host (see the module docstring). ``url`` is set once served."""

    def __init__(self) -> None:
        self.url = ""
        self.frames: list[tuple[int, bytes]] = []
        self.seq = 0
        self.repos: dict[str, bytes] = {}
        self.repo_requests = 0
        self._requests = threading.Condition()
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self._lock = threading.Lock()

    # -- what the test does --------------------------------------------------------
    def push_raw(self, frame: bytes, seq: int | None = None) -> None:
        """Send ``frame`` to every subscriber (numbered ``seq``, default the next)."""
        with self._lock:
            if seq is None:
                self.seq += 1
                seq = self.seq
            self.frames.append((seq, frame))
            waiters = list(self._waiters)
        for loop, event in waiters:
            loop.call_soon_threadsafe(event.set)

    def push(self, kind: str, body: dict[str, Any]) -> int:
        """Send a message frame of ``kind`` with the next seq; return that seq."""
        with self._lock:
            self.seq += 1
            seq = self.seq
        self.push_raw(encode_frame(kind, {**body, "seq": seq}), seq)
        return seq

    def wait_repo_requests(self, n: int, timeout: float = 20.0) -> None:
        """Block until ``getRepo`` has been asked ``n`` times in all."""
        with self._requests:
            assert self._requests.wait_for(lambda: self.repo_requests >= n, timeout), n

    # -- the app ---------------------------------------------------------------------
    def app(self) -> Starlette:
        async def describe(request: Request) -> Response:
            return JSONResponse({"did": "did:web:fake.test", "availableUserDomains": []})

        async def get_repo(request: Request) -> Response:
            car = self.repos.get(request.query_params.get("did", ""))
            with self._requests:
                self.repo_requests += 1
                self._requests.notify_all()
            if car is None:
                return JSONResponse({"error": "RepoNotFound", "message": "not yet"}, 400)
            return Response(car, media_type="application/vnd.ipld.car")

        return Starlette(
            routes=[
                Route("/xrpc/com.atproto.server.describeServer", describe),
                Route("/xrpc/com.atproto.sync.getRepo", get_repo),
                WebSocketRoute("/xrpc/com.atproto.sync.subscribeRepos", self._subscribe),
            ]
        )

    async def _subscribe(self, ws: WebSocket) -> None:
        await ws.accept()
        cursor = int(ws.query_params.get("cursor") or 0)
        event = asyncio.Event()
        waiter = (asyncio.get_running_loop(), event)
        self._waiters.add(waiter)
        closed = asyncio.create_task(_until_closed(ws))
        sent = 0
        try:
            while not closed.done():
                event.clear()
                for seq, frame in self.frames[sent:]:
                    sent += 1
                    if seq > cursor:
                        await ws.send_bytes(frame)
                if sent < len(self.frames):
                    continue
                wake = asyncio.create_task(event.wait())
                await asyncio.wait({wake, closed}, return_when=asyncio.FIRST_COMPLETED)
                wake.cancel()
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass
        finally:
            self._waiters.discard(waiter)
            closed.cancel()


async def _until_closed(ws: WebSocket) -> None:
    with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
        while (await ws.receive())["type"] != "websocket.disconnect":
            pass


@dataclass
class FakeAccount:
    """A did:plc account whose repository the test builds, commit by commit."""

    directory: str
    host_url: str
    rotation: PrivateKey = field(default_factory=lambda: PrivateKey.generate(ES256K))
    key: PrivateKey = field(default_factory=lambda: PrivateKey.generate(ES256K))
    did: str = ""
    last_op: PlcOperation | None = None
    repo: Repo | None = None
    blocks: dict[CID, bytes] = field(default_factory=dict)
    tids: TidClock = field(
        default_factory=lambda: TidClock(lambda: time.time_ns() // 1000, next(_CLOCK_IDS) % 1024)
    )
    n: int = 0

    def register(self) -> FakeAccount:
        did, op = create_genesis(
            key=self.rotation,
            rotation_keys=[self.rotation.did_key()],
            signing_key=self.key.did_key(),
            handle=f"h{secrets.token_hex(4)}.example.com",
            pds_endpoint=self.host_url,
        )
        r = httpx.post(f"{self.directory}/{did}", json=op.to_json(), timeout=30)
        assert r.status_code == 200, r.text
        self.did, self.last_op = did, op
        return self

    def update_identity(self, *, key: PrivateKey | None = None, host: str | None = None) -> None:
        """Rotate the signing key and/or move the account, in the directory."""
        assert self.last_op is not None
        op = create_update(
            self.last_op,
            self.rotation,
            signing_key=key.did_key() if key is not None else None,
            pds_endpoint=host,
        )
        r = httpx.post(f"{self.directory}/{self.did}", json=op.to_json(), timeout=30)
        assert r.status_code == 200, r.text
        self.last_op = op
        if key is not None:
            self.key = key
        if host is not None:
            self.host_url = host

    def next_commit(self, *, key: PrivateKey | None = None, advance: bool = True) -> CommitResult:
        """A commit adding one post, signed by ``key`` (default the account's);
        ``advance`` makes it the repository's head."""
        self.n += 1
        write = Write.create(
            "app.bsky.feed.post",
            self.tids.next(),
            {"$type": "app.bsky.feed.post", "text": f"post {self.n}", "createdAt": _NOW},
        )
        signer = key or self.key
        if self.repo is None:
            result = Repo.create(self.did, signer, self.tids.next(), self.blocks, writes=[write])
        else:
            result = self.repo.apply_writes([write], signer, self.tids.next())
        if advance:
            self.repo = result.repo
            self.blocks.update(result.new_blocks)
        return result

    def car(self) -> bytes:
        """The whole repository at its head, as ``getRepo`` serves it."""
        assert self.repo is not None
        return export_car(self.blocks, self.repo.cid)


_NOW = "2026-01-01T00:00:00.000Z"


def commit_body(result: CommitResult, **override: Any) -> dict[str, Any]:
    """The ``#commit`` body a host emits for ``result`` (without ``seq``)."""
    body: dict[str, Any] = {
        "repo": result.commit.commit.did,
        "commit": result.cid,
        "rev": result.rev,
        "since": result.since,
        "blocks": result.car_slice,
        "ops": encode_ops(result.ops),
        "blobs": [],
        "rebase": False,
        "tooBig": False,
        "time": _NOW,
    }
    if result.prev_data is not None:
        body["prevData"] = result.prev_data
    body.update(override)
    return {k: v for k, v in body.items() if v is not _OMIT}


_OMIT = object()
OMIT: Any = _OMIT
"""Pass as an override to leave a field out."""
