"""The shared request-body limit (:mod:`plaza.asgi`), over a real socket: a body past
the limit is refused by its declared length before it is read, and while it streams
in when it declares none, both by :func:`read_body` in a handler and by the
:class:`BodyLimit` middleware."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from plaza.asgi import BodyLimit, has_lone_surrogate, read_body
from plaza.errors import PlazaError
from plaza.services.runner import ServedApp, ServerThread
from tests.services.pds.streaming import chunked_until_answered

LIMIT = 4096


class TooLargeError(PlazaError):
    code = "PayloadTooLarge"
    status = 413


def _too_large(limit: int) -> PlazaError:
    return TooLargeError(f"a body is at most {limit} bytes")


def _reading_app() -> Starlette:
    """Reads the body in its handler with read_body."""

    async def echo(request: Request) -> Response:
        try:
            body = await read_body(request, LIMIT, _too_large)
        except PlazaError as exc:
            return JSONResponse(exc.to_dict(), status_code=exc.status)
        return JSONResponse({"size": len(body)})

    return Starlette(routes=[Route("/xrpc/{nsid}", echo, methods=["POST"])])


def _middleware_app() -> BodyLimit:
    """Reads the body in BodyLimit before the handler sees it."""

    async def echo(request: Request) -> Response:
        return JSONResponse({"size": len(await request.body())})

    app = Starlette(routes=[Route("/xrpc/{nsid}", echo, methods=["POST"])])
    return BodyLimit(app, LIMIT, _too_large)


@pytest.fixture(scope="module")
def urls() -> Iterator[dict[str, str]]:
    apps = [ServedApp("reading", _reading_app()), ServedApp("middleware", _middleware_app())]
    with ServerThread(apps) as (reading, middleware):
        yield {"read_body": reading, "BodyLimit": middleware}


KINDS = ["read_body", "BodyLimit"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_body_within_the_limit_arrives_whole(urls: dict[str, str], kind: str) -> None:
    r = httpx.post(f"{urls[kind]}/xrpc/x.y.z", content=b"a" * LIMIT)
    assert r.status_code == 200 and r.json() == {"size": LIMIT}, r.text

    def chunks() -> Iterator[bytes]:
        yield b"a" * (LIMIT // 2)
        yield b"a" * (LIMIT // 2)

    r = httpx.post(f"{urls[kind]}/xrpc/x.y.z", content=chunks())
    assert "content-length" not in r.request.headers
    assert r.status_code == 200 and r.json() == {"size": LIMIT}, r.text


@pytest.mark.parametrize("kind", KINDS)
def test_a_declared_length_past_the_limit_is_refused(urls: dict[str, str], kind: str) -> None:
    r = httpx.post(f"{urls[kind]}/xrpc/x.y.z", content=b"a" * (LIMIT + 1))
    assert r.request.headers["content-length"] == str(LIMIT + 1)
    assert (r.status_code, r.json()["error"]) == (413, "PayloadTooLarge"), r.text


@pytest.mark.parametrize("kind", KINDS)
def test_a_chunked_body_is_refused_while_it_streams(urls: dict[str, str], kind: str) -> None:
    total = 200 * LIMIT
    sent, response = chunked_until_answered(urls[kind], "x.y.z", total)
    assert response.startswith(b"HTTP/1.1 413"), response[:200]
    assert b'"error":"PayloadTooLarge"' in response
    assert sent < total // 2, "the server read the whole body before refusing it"


@pytest.mark.parametrize(
    ("value", "bad"),
    [
        ("plain", False),
        ("smile \U0001f600", False),  # a surrogate pair in JSON: valid text
        ("x\ud800", True),
        ("\udc00x", True),
        ({"k\ud800": 1}, True),
        ({"a": [1, {"b": ["ok", "\udfff"]}]}, True),
        ({"a": [1, {"b": ["ok", None, 2.5, True]}]}, False),
    ],
    ids=["ascii", "pair", "high", "low", "key", "nested", "clean-nested"],
)
def test_has_lone_surrogate_finds_a_surrogate_anywhere(value: object, bad: bool) -> None:
    assert has_lone_surrogate(value) is bad


def test_the_middleware_refuses_json_with_a_lone_surrogate(urls: dict[str, str]) -> None:
    url = urls["BodyLimit"] + "/xrpc/x"
    r = httpx.post(url, content=b'{"a": "\\ud800"}', headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "InvalidRequest" and "Unicode" in r.json()["message"]
    # Not declared as JSON, or valid text: the application decides.
    r = httpx.post(url, content=b'{"a": "\\ud800"}', headers={"Content-Type": "text/plain"})
    assert r.status_code == 200
    r = httpx.post(
        url, content=b'{"a": "\\ud83d\\ude00"}', headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 200
