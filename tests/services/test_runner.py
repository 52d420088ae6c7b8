"""The service runner: real sockets, several apps in one loop, clean stop, clear bind errors."""

from __future__ import annotations

import socket
from contextlib import asynccontextmanager

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from plaza.services.errors import BindError
from plaza.services.runner import ServedApp, ServerThread, bind, url_for


def _app(name: str, events: list[str]) -> Starlette:
    async def hello(request: Request) -> PlainTextResponse:
        return PlainTextResponse(name)

    @asynccontextmanager
    async def lifespan(app: Starlette):  # type: ignore[no-untyped-def]
        events.append(f"{name} started")
        yield
        events.append(f"{name} stopped")

    return Starlette(routes=[Route("/", hello)], lifespan=lifespan)


def test_two_apps_in_one_group_start_and_stop_cleanly(free_port: int) -> None:
    events: list[str] = []
    apps = [
        ServedApp("one", _app("one", events), port=free_port),
        ServedApp("two", _app("two", events)),
    ]
    with ServerThread(apps) as urls:
        assert urls[0] == url_for("127.0.0.1", free_port)
        assert urls[1] != urls[0]
        assert [httpx.get(u).text for u in urls] == ["one", "two"]
    assert sorted(events) == ["one started", "one stopped", "two started", "two stopped"]
    with pytest.raises(httpx.ConnectError):
        httpx.get(urls[0])


def test_a_taken_port_is_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(BindError, match=r"cannot listen on http://127\.0\.0\.1"):
            bind("127.0.0.1", port)
        with pytest.raises(BindError), ServerThread([ServedApp("x", _app("x", []), port=port)]):
            pass


def test_url_for_brackets_ipv6() -> None:
    assert url_for("::1", 80) == "http://[::1]:80"
    assert url_for("127.0.0.1", 80) == "http://127.0.0.1:80"


def test_bound_sockets_are_tcp_so_asyncio_sets_nodelay() -> None:
    # asyncio enables TCP_NODELAY only for sockets whose proto is IPPROTO_TCP; without
    # it every small response stalls on a delayed ACK (about 40 ms on loopback).
    sock = bind("127.0.0.1", 0)
    try:
        assert sock.proto == socket.IPPROTO_TCP
    finally:
        sock.close()


def _client_app() -> Starlette:
    async def client(request: Request) -> PlainTextResponse:
        assert request.client is not None
        return PlainTextResponse(request.client.host)

    return Starlette(routes=[Route("/", client)])


def test_forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy() -> None:
    spoofed = {"x-forwarded-for": "203.0.113.50"}
    apps = [
        ServedApp("open", _client_app()),
        ServedApp("proxied", _client_app(), trusted_proxies=("127.0.0.1",)),
        ServedApp("elsewhere", _client_app(), trusted_proxies=("192.0.2.1",)),
    ]
    with ServerThread(apps) as (open_url, proxied_url, elsewhere_url):
        assert httpx.get(open_url, headers=spoofed).text == "127.0.0.1"
        assert httpx.get(proxied_url, headers=spoofed).text == "203.0.113.50"
        assert httpx.get(elsewhere_url, headers=spoofed).text == "127.0.0.1"
