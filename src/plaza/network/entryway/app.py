"""The entryway as an ASGI app: account creation and sign-in at one URL.

``create_app(settings, agent)`` opens the accounts store and the escrow, and serves the
methods of :data:`plaza.network.entryway.handlers.METHODS` under ``/xrpc/``, plus
``/_health``. ``agent`` is the DAO's agent as the agents' loop sees it (the market
under its DAO, the agent's identity, the live network): sign-ups are placed through it,
its key is the DAO's recovery key on every account made here, and only it may read
host credentials. Every error answers ``{"error": code, "message": ...}`` with the
error's status; a failure of the entryway itself names no internals.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import plaza
from plaza.agents.runner import LiveAgent
from plaza.asgi import has_lone_surrogate, internal_error, read_body
from plaza.db import private_dirs
from plaza.errors import PlazaError
from plaza.network.entryway.credentials import HostCredentials
from plaza.network.entryway.directory import Directory
from plaza.network.entryway.errors import InvalidRequestError
from plaza.network.entryway.escrow import Escrow
from plaza.network.entryway.handlers import METHODS, Entryway, Handler
from plaza.network.entryway.sessions import Sessions
from plaza.network.entryway.settings import EntrywaySettings
from plaza.network.entryway.signup import SignUps
from plaza.network.entryway.store import AccountStore
from plaza.services.buckets import TokenBuckets
from plaza.services.errors import RateLimitedError


def _now_ms() -> int:
    return int(time.time() * 1000)


def create_app(
    settings: EntrywaySettings,
    agent: LiveAgent,
    *,
    clock_ms: Callable[[], int] = _now_ms,
    monotonic: Callable[[], float] = time.monotonic,
) -> Starlette:
    """The entryway; its store opens now and closes at shutdown."""
    private_dirs(settings.data_dir)
    store = AccountStore.open(settings.database)
    escrow = Escrow.open(settings.data_dir)
    http = httpx.Client(timeout=httpx.Timeout(30.0))
    directory = Directory(settings.directory_url, http)
    signer = agent.signer
    ew = Entryway(
        settings=settings,
        signups=SignUps(store, escrow, agent, signer.key, directory, clock_ms=clock_ms),
        sessions=Sessions(store, escrow, directory, http),
        credentials=HostCredentials(
            store,
            escrow,
            service_did=settings.did,
            agent_did=signer.did,
            agent_key=signer.key.public_key,
        ),
        login_limit=TokenBuckets(settings.login_per_s, settings.login_burst, monotonic),
        signup_limit=TokenBuckets(settings.signup_per_s, settings.signup_burst, monotonic),
    )

    def endpoint(verb: str, handler: Handler) -> Callable[[Request], Any]:
        async def run(request: Request) -> Response:
            if request.method != verb:
                raise InvalidRequestError(f"this method takes {verb}")

            async def body() -> dict[str, Any]:
                return await _json_body(request, settings.max_body_bytes)

            return JSONResponse(await handler(ew, request, body))

        return run

    async def health(request: Request) -> Response:
        try:
            store.check()
        except PlazaError:
            return JSONResponse({"version": plaza.__version__, "error": "Service Unavailable"}, 503)
        return JSONResponse({"version": plaza.__version__})

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            http.close()
            store.close()

    routes = [Route("/_health", health, methods=["GET"])]
    routes.append(Route("/xrpc/_health", health, methods=["GET"]))
    for nsid, (verb, handler) in METHODS.items():
        routes.append(Route(f"/xrpc/{nsid}", endpoint(verb, handler), methods=["GET", "POST"]))
    app = Starlette(
        routes=routes,
        exception_handlers={
            PlazaError: _plaza_error,
            HTTPException: _http_error,
            Exception: _internal_error,
        },
        lifespan=lifespan,
    )
    app.state.entryway = ew
    app.state.store = store
    return app


async def _json_body(request: Request, limit: int) -> dict[str, Any]:
    raw = await read_body(
        request, limit, lambda n: InvalidRequestError(f"request body is larger than {n} bytes")
    )
    try:
        value = json.loads(raw) if raw else {}
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise InvalidRequestError("request body is not valid JSON") from exc
    if not isinstance(value, dict):
        raise InvalidRequestError("request body must be a JSON object")
    if has_lone_surrogate(value):
        raise InvalidRequestError("request body holds a lone surrogate")
    return value


def _error(status: int, message: str, code: str) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status)


async def _plaza_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PlazaError)
    if exc.status >= 500 and not exc.code.startswith(("NoCapacity", "UpstreamFailure")):
        return internal_error(exc, request.scope, service="entryway", code=exc.code, status=500)
    response = _error(exc.status, exc.message, exc.code)
    if isinstance(exc, RateLimitedError):
        response.headers["Retry-After"] = str(math.ceil(exc.retry_after_s))
    return response


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "MethodNotImplemented", 405: "MethodNotAllowed"}.get(
        exc.status_code, "InvalidRequest"
    )
    return _error(exc.status_code, str(exc.detail), code)


async def _internal_error(request: Request, exc: Exception) -> Response:
    return internal_error(
        exc, request.scope, service="entryway", code="InternalServerError", status=500
    )
