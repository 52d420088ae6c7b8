"""The simulated hosts of ``plaza bench relay``: one process, one loopback port per host.

Run as ``python -m plaza.bench.relay_hosts FIXTURE_DIR HOSTS FRAMES`` by the harness.
Each host serves ``com.atproto.sync.subscribeRepos`` as a real WebSocket endpoint (no
compression), plus the reads a relay may make of a host: ``/_health``,
``describeServer``, ``listRepos``, ``getLatestCommit``, ``getRepoStatus`` and
``getRepo`` (the repository at the host's current position, exported with the real
repository code from the initial CAR and the commits sent so far).

Theory of operation. The hosts verify nothing and encode nothing while they run: every
frame was pre-built (:mod:`plaza.bench.relay_fixture`). One scheduler task releases
frames at the offered total rate, round-robin over the hosts (global frame ``g`` is
frame ``g // hosts`` of host ``g % hosts``), and records for each frame the moment it
was *scheduled*, so the lag the harness measures includes any time the frame waits in
a host because the relay reads slowly (no coordinated omission). A host's subscribers
each send from their own position up to what has been released, as the PDS firehose
does; a subscriber with a cursor first gets what it missed (a cursor past the newest
frame starts at the newest, where a PDS would answer ``FutureCursor``).

Control is one JSON line per command on stdin, one JSON line per answer on stdout:
``{"cmd": "status"}``, ``{"cmd": "rate", "rate": R}`` (frames/s in total from now; 0
pauses), ``{"cmd": "times", "path": P}`` (write the scheduled send times, monotonic
seconds, NaN for frames not yet released, as a ``.npy`` array hosts x frames) and
``{"cmd": "stop"}``. The first line printed is ``{"urls": [...]}`` once every port
listens.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

import numpy as np
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from plaza.atproto import cbor
from plaza.atproto.car import read_car
from plaza.atproto.cid import CID
from plaza.atproto.repo import export_car
from plaza.bench.relay_fixture import HostFrames, load_host

TICK_S: Final = 0.002
SUBSCRIBE: Final = "/xrpc/com.atproto.sync.subscribeRepos"


@dataclass
class SimHost:
    """One host: its pre-built frames and how many of them are released."""

    index: int
    data: HostFrames
    released: int = 0
    subscribers: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    url: str = ""

    def release(self, upto: int) -> None:
        self.released = upto
        changed, self.changed = self.changed, asyncio.Event()
        changed.set()

    def head(self, account: int) -> tuple[CID, str, dict[CID, bytes]]:
        """The account's current commit, rev and every block it has had (for getRepo)."""
        car = read_car(self.data.cars[account])
        blocks = dict(car.blocks)
        head, rev = car.root, ""
        for k in range(self.released):
            if self.data.owners[k] == account:
                _, body = cbor.decode_multi(self.data.frames[k])
                blocks.update(read_car(body["blocks"]).blocks)
                head, rev = body["commit"], body["rev"]
        return head, rev or _initial_rev(blocks, head), blocks


def _initial_rev(blocks: dict[CID, bytes], head: CID) -> str:
    rev: str = cbor.decode(blocks[head])["rev"]
    return rev


class Hosts:
    """Every simulated host, the scheduler and the control loop (see module doc)."""

    def __init__(self, hosts: list[SimHost]) -> None:
        self.hosts = hosts
        self.width = max(len(h.data.frames) for h in hosts)
        self.sent_at = np.full((len(hosts), self.width), np.nan)
        self.rate = 0.0
        self.base_count = 0.0  # frames due when the current rate started
        self.base_time = time.monotonic()
        self.next_frame = 0
        self.total = sum(len(h.data.frames) for h in hosts)
        self._servers: list[Server] = []

    # -- the firehose -------------------------------------------------------------------
    async def subscribe(self, host: SimHost, ws: ServerConnection) -> None:
        cursor = parse_qs(urlsplit(ws.request.path if ws.request else "").query).get("cursor")
        pos = host.released
        if cursor and cursor[0].isdigit():
            pos = min(int(cursor[0]), host.released)
        host.subscribers += 1
        try:
            while True:
                upto = host.released
                while pos < upto:
                    await ws.send(host.data.frames[pos])
                    pos += 1
                if pos == host.released:
                    await host.changed.wait()
        except ConnectionClosed:
            pass
        finally:
            host.subscribers -= 1

    async def schedule(self) -> None:
        n = len(self.hosts)
        while True:
            await asyncio.sleep(TICK_S)
            if self.rate <= 0:
                continue
            now = time.monotonic()
            due = min(self.total, int(self.base_count + self.rate * (now - self.base_time)))
            touched: set[int] = set()
            for g in range(self.next_frame, due):
                h, k = g % n, g // n
                host = self.hosts[h]
                if k >= len(host.data.frames):
                    continue
                self.sent_at[h, k] = self.base_time + (g + 1 - self.base_count) / self.rate
                touched.add(h)
                host.released = k + 1
            self.next_frame = max(self.next_frame, due)
            for h in touched:
                self.hosts[h].release(self.hosts[h].released)

    def set_rate(self, rate: float) -> None:
        now = time.monotonic()
        if self.rate > 0:
            self.base_count += self.rate * (now - self.base_time)
        self.base_count = max(self.base_count, float(self.next_frame))
        self.base_time, self.rate = now, rate

    # -- HTTP reads ---------------------------------------------------------------------
    def http(self, host: SimHost, ws: ServerConnection, request: Request) -> Response | None:
        url = urlsplit(request.path)
        if url.path == SUBSCRIBE:
            return None
        params = {k: v[0] for k, v in parse_qs(url.query).items()}
        dids = {a.did: i for i, a in enumerate(host.data.accounts)}
        method = url.path.removeprefix("/xrpc/")
        if url.path in ("/_health", "/xrpc/_health"):
            return _json(ws, {"version": "plaza-bench-host"})
        if method == "com.atproto.server.describeServer":
            return _json(
                ws,
                {
                    "did": f"did:web:h{host.index}.bench.test",
                    "availableUserDomains": [".bench.test"],
                    "inviteCodeRequired": False,
                },
            )
        if method == "com.atproto.sync.listRepos":
            repos = []
            for i, sim in enumerate(host.data.accounts):
                head, rev, _ = host.head(i)
                repos.append({"did": sim.did, "head": str(head), "rev": rev, "active": True})
            return _json(ws, {"repos": repos})
        if method in (
            "com.atproto.sync.getLatestCommit",
            "com.atproto.sync.getRepoStatus",
            "com.atproto.sync.getRepo",
        ):
            number = dids.get(params.get("did", ""))
            if number is None:
                return _json(ws, {"error": "RepoNotFound", "message": "no such repo"}, 400)
            head, rev, blocks = host.head(number)
            if method.endswith("getLatestCommit"):
                return _json(ws, {"cid": str(head), "rev": rev})
            if method.endswith("getRepoStatus"):
                return _json(ws, {"did": params["did"], "active": True, "rev": rev})
            body = export_car(blocks, head)
            return Response(
                200,
                "OK",
                Headers(
                    {"Content-Type": "application/vnd.ipld.car", "Content-Length": str(len(body))}
                ),
                body,
            )
        return _json(ws, {"error": "MethodNotImplemented", "message": url.path}, 501)

    # -- the process ------------------------------------------------------------------
    async def start(self) -> list[str]:
        for host in self.hosts:

            async def handler(ws: ServerConnection, host: SimHost = host) -> None:
                await self.subscribe(host, ws)

            def process(ws: ServerConnection, req: Request, host: SimHost = host) -> Any:
                return self.http(host, ws, req)

            server = await serve(
                handler,
                "127.0.0.1",
                0,
                compression=None,
                process_request=process,
                max_size=2**16,
                ping_interval=None,
            )
            port = next(iter(server.sockets)).getsockname()[1]
            host.url = f"http://127.0.0.1:{port}"
            self._servers.append(server)
        return [h.url for h in self.hosts]

    def command(self, cmd: dict[str, Any]) -> dict[str, Any]:
        kind = cmd.get("cmd")
        if kind == "status":
            return {
                "subscribers": [h.subscribers for h in self.hosts],
                "released": self.next_frame,
                "total": self.total,
                "t": time.monotonic(),
            }
        if kind == "rate":
            self.set_rate(float(cmd["rate"]))
            return {"ok": True, "t": time.monotonic()}
        if kind == "times":
            np.save(cmd["path"], self.sent_at)
            return {"ok": True}
        return {"error": f"unknown command {kind!r}"}


def _json(ws: ServerConnection, value: Any, status: int = 200) -> Response:
    response = ws.respond(HTTPStatus(status), json.dumps(value))
    del response.headers["Content-Type"]
    response.headers["Content-Type"] = "application/json"
    return response


async def _main(fixture: Path, hosts: int, frames: int) -> None:
    loop = asyncio.get_running_loop()
    sims = [SimHost(h, load_host(fixture, h, frames=frames)) for h in range(hosts)]
    server = Hosts(sims)
    urls = await server.start()
    scheduler = asyncio.create_task(server.schedule())
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    print(json.dumps({"urls": urls}), flush=True)
    try:
        while line := await reader.readline():
            cmd = json.loads(line)
            if cmd.get("cmd") == "stop":
                break
            print(json.dumps(server.command(cmd)), flush=True)
    finally:
        scheduler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await scheduler


def main(argv: list[str]) -> None:
    """``FIXTURE_DIR HOSTS FRAMES``: serve the first FRAMES frames of each of HOSTS hosts."""
    fixture, hosts, frames = Path(argv[0]), int(argv[1]), int(argv[2])
    if hosts <= 0 or frames <= 0:
        raise SystemExit("HOSTS and FRAMES must be positive")
    asyncio.run(_main(fixture, hosts, frames))


if __name__ == "__main__":
    main(sys.argv[1:])
