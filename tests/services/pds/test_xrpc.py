"""The XRPC edge of a live PDS: request bodies are read against a running limit, and
input that would make a parser recurse without end is a 400, never a 500."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from plaza.services.pds import PdsSettings, create_app
from plaza.services.runner import ServedApp, ServerThread
from tests.services.pds.streaming import chunked_until_answered

LIMIT = 100_000


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root: Path = tmp_path_factory.mktemp("xrpc")
    settings = PdsSettings(
        data_dir=root, public_url="http://127.0.0.1:1", directory_url="-", max_json_bytes=LIMIT
    )
    with ServerThread([ServedApp("pds", create_app(settings))]) as (served,):
        yield served


def test_a_body_without_content_length_is_refused_while_it_streams(url: str) -> None:
    total = 40 * LIMIT
    sent, response = chunked_until_answered(url, "com.atproto.server.createSession", total)
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
