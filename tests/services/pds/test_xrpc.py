"""The XRPC edge of a live PDS: request bodies are read against a running limit, and
input that would make a parser recurse without end is a 400, never a 500."""

from __future__ import annotations

import select
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from plaza.services.pds import PdsSettings, create_app
from plaza.services.runner import ServedApp, ServerThread

LIMIT = 100_000


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root: Path = tmp_path_factory.mktemp("xrpc")
    settings = PdsSettings(
        data_dir=root, public_url="http://127.0.0.1:1", directory_url="-", max_json_bytes=LIMIT
    )
    with ServerThread([ServedApp("pds", create_app(settings))]) as (served,):
        yield served


def _chunked_until_answered(url: str, nsid: str, total: int) -> tuple[int, bytes]:
    """POST a chunked body (no Content-Length) of up to ``total`` bytes, stopping as
    soon as the server answers; returns the bytes sent by then and the response."""
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=10)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
    head = (
        f"POST /xrpc/{nsid} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    sock.sendall(head.encode())
    chunk = b"[" * 16_384
    frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    sent = 0
    try:
        while sent < total:
            if select.select([sock], [], [], 0)[0]:
                break  # the server answered while the body was still coming
            sock.sendall(frame)
            sent += len(chunk)
        else:
            sock.sendall(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass  # it stopped reading and closed: the answer is already on its way
    response = b""
    try:
        while b"\r\n\r\n" not in response or len(response) < 200:
            data = sock.recv(65536)
            if not data:
                break
            response += data
    except (ConnectionResetError, TimeoutError):
        pass
    sock.close()
    return sent, response


def test_a_body_without_content_length_is_refused_while_it_streams(url: str) -> None:
    total = 40 * LIMIT
    sent, response = _chunked_until_answered(url, "com.atproto.server.createSession", total)
    assert response.startswith(b"HTTP/1.1 413"), response[:200]
    assert b'"error":"PayloadTooLarge"' in response
    assert sent < total // 2, "the server read the whole body before refusing it"


def test_a_declared_length_over_the_limit_is_refused(url: str) -> None:
    resp = httpx.post(
        f"{url}/xrpc/com.atproto.server.createSession",
        content=b"{" + b" " * LIMIT + b"}",
        headers={"content-type": "application/json"},
    )
    assert resp.status_code == 413 and resp.json()["error"] == "PayloadTooLarge"


@pytest.mark.parametrize("depth", [2_000, 40_000], ids=["deep", "very-deep"])
def test_deeply_nested_json_is_an_invalid_request(url: str, depth: int) -> None:
    body = b'{"identifier":' + b"[" * depth + b"]" * depth + b', "password": "x"}'
    resp = httpx.post(
        f"{url}/xrpc/com.atproto.server.createSession",
        content=body,
        headers={"content-type": "application/json"},
    )
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"] == "InvalidRequest"
