"""Request-head limits over real sockets: size, field count, time to send, and the
bytes a connection can make the server hold; WebSockets still pass."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket
from websockets.sync.client import connect as ws_connect

from plaza.services.limits import HeadLimits, HeadStats
from plaza.services.runner import ServedApp, ServerThread

LIMITS = HeadLimits(max_bytes=4096, max_fields=20, timeout_s=0.5)
DEADLINE_S = 10.0  # bound on any wait for the server; far above LIMITS.timeout_s


class Served:
    def __init__(self, host: str, port: int, stats: HeadStats, seen: list[str]) -> None:
        self.host, self.port, self.stats, self.seen = host, port, stats, seen

    def connect(self) -> socket.socket:
        sock = socket.create_connection((self.host, self.port), timeout=DEADLINE_S)
        return sock


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    seen: list[str] = []

    async def echo(request: Request) -> PlainTextResponse:
        body = await request.body()
        seen.append(request.url.path)
        return PlainTextResponse(f"{request.url.path} {len(body)}")

    async def ws_echo(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_text(await ws.receive_text())
        await ws.close()

    app = Starlette(
        routes=[
            Route("/{path:path}", echo, methods=["GET", "POST"]),
            WebSocketRoute("/ws", ws_echo),
        ]
    )
    thread = ServerThread([ServedApp("echo", app)], head_limits=LIMITS)
    with thread as (url,):
        host, port = url.removeprefix("http://").split(":")
        yield Served(host, int(port), thread.head_stats, seen)


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (bounded wait)."""
    out = b""
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            return out
        out += chunk
    return out


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def error_of(response: bytes) -> str:
    return str(json.loads(response.split(b"\r\n\r\n", 1)[1])["error"])


def request(path: str, headers: dict[str, str] | None = None, body: bytes = b"") -> bytes:
    lines = [f"{'POST' if body else 'GET'} {path} HTTP/1.1", "Host: x"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def head_of_size(path: str, size: int) -> bytes:
    """A complete GET head of exactly ``size`` bytes (padded in one header)."""
    bare = request(path, {"X-Pad": ""})
    return request(path, {"X-Pad": "a" * (size - len(bare))})


def test_a_head_at_the_limit_is_served_and_one_byte_more_is_431(served: Served) -> None:
    with served.connect() as sock:
        head = head_of_size("/at-limit", LIMITS.max_bytes)
        assert len(head) == LIMITS.max_bytes
        sock.sendall(head + request("/after", {"Connection": "close"}))
        response = read_until_closed(sock)
    assert response.startswith(b"HTTP/1.1 200") and b"/after 0" in response
    with served.connect() as sock:
        sock.sendall(head_of_size("/over-limit", LIMITS.max_bytes + 1))
        response = read_until_closed(sock)
    assert status_of(response) == 431
    assert error_of(response) == "RequestHeaderFieldsTooLarge"
    assert b"connection: close" in response
    assert "/over-limit" not in served.seen


def test_a_huge_header_sent_whole_is_431_and_closed(served: Served) -> None:
    with served.connect() as sock:
        sock.sendall(request("/huge", {"X-Big": "b" * 1_000_000}))
        response = read_until_closed(sock)
    assert status_of(response) == 431
    assert "/huge" not in served.seen


def test_too_many_header_fields_is_431(served: Served) -> None:
    fields = {f"X-F{i}": "1" for i in range(LIMITS.max_fields)}  # plus Host: one too many
    with served.connect() as sock:
        sock.sendall(request("/many", fields))
        response = read_until_closed(sock)
    assert status_of(response) == 431
    assert b"header fields" in response
    assert "/many" not in served.seen
    fields.popitem()
    fields.popitem()  # Host, these and Connection: exactly the limit
    with served.connect() as sock:
        sock.sendall(request("/enough", {**fields, "Connection": "close"}))
        assert read_until_closed(sock).startswith(b"HTTP/1.1 200")


def test_a_slow_unfinished_head_is_cut_after_the_timeout(served: Served) -> None:
    before = served.stats.timed_out
    with served.connect() as sock:
        started = time.monotonic()
        sock.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        response = read_until_closed(sock)
        elapsed = time.monotonic() - started
    assert status_of(response) == 408
    assert error_of(response) == "RequestTimeout"
    assert LIMITS.timeout_s * 0.9 <= elapsed < DEADLINE_S
    assert served.stats.timed_out == before + 1
    assert "/slow" not in served.seen


def test_a_connection_that_sends_nothing_is_closed_after_the_timeout(served: Served) -> None:
    with served.connect() as sock:
        assert status_of(read_until_closed(sock)) == 408


def test_the_timeout_starts_again_for_the_next_request_on_a_kept_connection(
    served: Served,
) -> None:
    with served.connect() as sock:
        sock.sendall(request("/first"))
        first = b""
        deadline = time.monotonic() + DEADLINE_S
        while not first.endswith(b"/first 0") and time.monotonic() < deadline:
            first += sock.recv(65536)  # the response, however it is split
        assert first.startswith(b"HTTP/1.1 200") and first.endswith(b"/first 0")
        sock.sendall(b"GET /second HTTP/1.1\r\nHost: x\r\n")  # never finished
        assert status_of(read_until_closed(sock)) == 408
    assert "/second" not in served.seen


def test_a_body_after_the_head_in_the_same_chunk_is_passed_whole(served: Served) -> None:
    body = b"z" * 200_000
    with served.connect() as sock:
        sock.sendall(request("/body", {"Connection": "close"}, body))
        response = read_until_closed(sock)
    assert response.startswith(b"HTTP/1.1 200")
    assert response.endswith(b"/body 200000")


def test_pipelined_requests_are_each_served(served: Served) -> None:
    with served.connect() as sock:
        sock.sendall(request("/p1") + request("/p2", {"Connection": "close"}))
        response = read_until_closed(sock)
    assert response.count(b"HTTP/1.1 200") == 2
    assert response.endswith(b"/p2 0")


def test_a_pipelined_oversized_head_is_refused_too(served: Served) -> None:
    big = request("/p-big", {"X-Big": "b" * (2 * LIMITS.max_bytes)})
    with served.connect() as sock:
        sock.sendall(request("/p-ok") + big)
        response = read_until_closed(sock)
    assert b"HTTP/1.1 431" in response
    assert "/p-big" not in served.seen


def test_a_head_arriving_with_the_previous_body_is_checked_by_its_lines(
    served: Served,
) -> None:
    """The second head comes in the chunk that ends the first request's body, so only
    the parser's callbacks see it: they refuse it all the same."""
    head = b"POST /p-body HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n"
    big = request("/p-big-2", {"X-Big": "b" * (2 * LIMITS.max_bytes)})
    with served.connect() as sock:
        sock.sendall(head)
        assert sock.recv(65536).startswith(b"HTTP/1.1 100")  # the server waits for the body
        sock.sendall(b"abc" + big)
        response = read_until_closed(sock)
    assert b"HTTP/1.1 431" in response
    assert "/p-big-2" not in served.seen


def test_unfinished_huge_heads_on_many_sockets_stay_within_the_bound(served: Served) -> None:
    before = served.stats.too_large
    socks = [served.connect() for _ in range(8)]
    try:
        chunk = b"a" * 65536
        for sock in socks:
            sock.sendall(b"GET /flood HTTP/1.1\r\nHost: x\r\nX-Flood: ")
        for sock in socks:
            sent = 0
            with pytest.raises((BrokenPipeError, ConnectionResetError)):  # closed under us
                while sent < 40_000_000:
                    sock.sendall(chunk)
                    sent += len(chunk)
            assert sent < 40_000_000
        responses = [read_until_closed(sock) for sock in socks]
    finally:
        for sock in socks:
            sock.close()
    assert all(status_of(r) == 431 for r in responses if r)
    assert served.stats.too_large - before == 8
    assert served.stats.largest_head <= LIMITS.max_bytes
    assert "/flood" not in served.seen


def test_websockets_pass_through_the_limited_protocol(served: Served) -> None:
    with ws_connect(f"ws://{served.host}:{served.port}/ws", open_timeout=DEADLINE_S) as ws:
        ws.send("hello")
        assert ws.recv(timeout=DEADLINE_S) == "hello"
