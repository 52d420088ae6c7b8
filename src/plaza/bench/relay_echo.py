"""A pass-through stand-in for the relay: the harness's own floor.

``python -m plaza.bench.relay_echo --port P --crawl URL [--crawl URL ...]`` subscribes to
each host's ``subscribeRepos`` and forwards every frame, unchanged and unverified, to
its own subscribers; it serves ``/_health`` and a ``/_metrics`` of the relay's shape
(every forwarded ``#commit`` counted as ``verified``). ``plaza bench relay --target
echo`` measures it with the same hosts and accounting as the real relay, which tells
how much of the lag and CPU is the harness's rather than the relay's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from http import HTTPStatus
from typing import Any

from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response


class Echo:
    """Frames from every host, in arrival order, to every subscriber."""

    def __init__(self) -> None:
        self.subscribers: set[asyncio.Queue[bytes]] = set()
        self.forwarded = 0
        self.hosts: dict[str, int] = {}

    async def follow(self, url: str) -> None:
        ws_url = url.replace("http://", "ws://", 1) + "/xrpc/com.atproto.sync.subscribeRepos"
        self.hosts[url] = 0
        async with connect(ws_url, compression=None, max_size=None, ping_interval=None) as ws:
            async for frame in ws:
                if not isinstance(frame, bytes):
                    continue
                self.hosts[url] += 1
                self.forwarded += 1
                for queue in self.subscribers:
                    queue.put_nowait(frame)

    async def serve_one(self, ws: ServerConnection) -> None:
        queue: asyncio.Queue[bytes] = asyncio.Queue()
        self.subscribers.add(queue)
        try:
            while True:
                await ws.send(await queue.get())
        except ConnectionClosed:
            pass
        finally:
            self.subscribers.discard(queue)

    def http(self, ws: ServerConnection, request: Request) -> Response | None:
        path = request.path.partition("?")[0]
        if path == "/xrpc/com.atproto.sync.subscribeRepos":
            return None
        body: Any
        if path == "/_health":
            body = {"status": "ok"}
        elif path == "/_metrics":
            body = {
                "verified": self.forwarded,
                "dropped": {},
                "hosts": {h: {"events": n, "dropped": {}} for h, n in self.hosts.items()},
                "seq": self.forwarded,
            }
        else:
            return ws.respond(HTTPStatus.NOT_FOUND, "not found\n")
        response = ws.respond(HTTPStatus.OK, json.dumps(body))
        del response.headers["Content-Type"]
        response.headers["Content-Type"] = "application/json"
        return response


async def _main(port: int, hosts: list[str]) -> None:
    echo = Echo()
    server = await serve(
        echo.serve_one,
        "127.0.0.1",
        port,
        compression=None,
        process_request=echo.http,
        ping_interval=None,
    )
    followers = [asyncio.create_task(echo.follow(h)) for h in hosts]
    try:
        await server.serve_forever()
    finally:
        for task in followers:
            task.cancel()
        server.close(close_connections=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--crawl", action="append", default=[])
    args, _ = parser.parse_known_args()
    asyncio.run(_main(args.port, args.crawl))


if __name__ == "__main__":
    main()
