"""The directory's HTTP API: the same routes and bodies as the public PLC directory.

``POST /{did}`` submits a signed operation; ``GET /{did}`` resolves the DID document;
``/{did}/data``, ``/{did}/log``, ``/{did}/log/audit`` and ``/{did}/log/last`` show the
state and the log; ``/export`` pages through every operation as JSON lines. Errors are
``{"message": ...}`` (the reference's shape) plus ``"error"``, the machine-readable code.

Genesis operations (those creating a DID) are limited per client address by a token
bucket (``genesis_burst`` at once, refilled at ``genesis_per_s``): past it, ``POST``
answers 429 ``RateLimitExceeded`` with ``Retry-After``. The address is the
connection's peer unless the server names trusted proxies
(:class:`~plaza.services.runner.ServedApp`).

The directory is also the network's handle authority
(:mod:`plaza.services.directory.handles`): an operation claiming a handle of the
network's domains that another live DID claims is refused (409 ``HandleNotAvailable``),
and ``GET /xrpc/com.atproto.identity.resolveHandle?handle=H`` answers ``{"did": ...}``
for such a handle, or 400 ``HandleNotFound``, in the XRPC method's own shape.

A tombstoned DID answers 404 ``DID not available`` on ``GET /{did}`` and ``/data``, as
the reference server does (its OpenAPI file says 410; the running code and the atproto
SDK's resolver, which treats only 404 as "no document", agree on 404).

Handlers are ``async`` but call the synchronous store directly: each request's
transaction runs to the end without yielding, so requests in one process never
interleave inside a write. The clock is read here and handed to the protocol code.
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

import plaza
from plaza.asgi import read_body
from plaza.atproto.plc import (
    PlcState,
    PlcTooLargeError,
    did_data,
    did_document,
    format_timestamp,
    is_did_plc,
    parse_operation,
    parse_timestamp,
)
from plaza.errors import InvalidInputError, NotFoundError, PlazaError
from plaza.services.buckets import TokenBuckets, address_key
from plaza.services.directory.handles import DEFAULT_HANDLE_DOMAINS
from plaza.services.directory.store import MAX_EXPORT_COUNT, MAX_OPS_PER_DID, DirectoryStore
from plaza.services.errors import RateLimitedError

DEFAULT_PORT: Final = 2582
DB_FILE: Final = "directory.db"
_MAX_SEQ: Final = 2**63 - 1


@dataclass(frozen=True)
class DirectorySettings:
    """What a directory needs to run: where its log lives, and its request limits."""

    db_url: str
    max_body_bytes: int = 64 * 1024
    max_ops_per_did: int = MAX_OPS_PER_DID
    # New DIDs per client address: a burst at once, then a steady rate. A PDS creates
    # its accounts' DIDs from its own address, so this bounds its sign-ups too.
    genesis_burst: int = 100
    genesis_per_s: float = 1.0

    # The network's handle domains: a handle under one is claimed by one DID at most.
    handle_domains: tuple[str, ...] = DEFAULT_HANDLE_DOMAINS

    @classmethod
    def for_data_dir(cls, data_dir: Path, db_url: str | None = None) -> DirectorySettings:
        """``db_url`` if given, else SQLite at ``data_dir/directory.db``."""
        return cls(db_url=db_url or f"sqlite:///{Path(data_dir).resolve() / DB_FILE}")


def utc_now() -> datetime:
    return datetime.now(UTC)


def create_app(
    settings: DirectorySettings, *, clock: Callable[[], datetime] = utc_now
) -> Starlette:
    """The directory as an ASGI app; its store opens now and closes at shutdown."""
    store = DirectoryStore.open(
        settings.db_url,
        max_ops_per_did=settings.max_ops_per_did,
        handle_domains=settings.handle_domains,
    )
    genesis = TokenBuckets(
        settings.genesis_per_s, settings.genesis_burst, lambda: clock().timestamp()
    )

    def _state(request: Request) -> PlcState:
        return store.state(_did(request))

    def _registered(request: Request) -> PlcState:
        state = _state(request)
        if not state.exists:
            raise NotFoundError(f"DID not registered: {state.did}")
        return state

    def _live(request: Request) -> PlcState:
        state = _registered(request)
        if state.tombstoned:
            raise NotFoundError(f"DID not available: {state.did}")
        return state

    async def submit(request: Request) -> Response:
        did = _did(request)
        op = parse_operation(_json(await read_body(request, settings.max_body_bytes, _too_large)))
        if op.prev is None:
            _spend(genesis, request)
        store.submit(did, op, clock())
        return PlainTextResponse("OK")

    async def resolve(request: Request) -> Response:
        state = _live(request)
        return JSONResponse(did_document(state.did, state), media_type="application/did+ld+json")

    async def data(request: Request) -> Response:
        return JSONResponse(did_data(_live(request)))

    async def log(request: Request) -> Response:
        return JSONResponse([e.operation.to_json() for e in _registered(request).active])

    async def audit(request: Request) -> Response:
        return JSONResponse([e.to_json() for e in _registered(request).entries])

    async def last(request: Request) -> Response:
        head = _registered(request).head
        assert head is not None  # a registered DID always has an active genesis
        return JSONResponse(head.operation.to_json())

    async def export(request: Request) -> Response:
        count = _count(request.query_params.get("count"))
        after = request.query_params.get("after")
        lines: list[dict[str, Any]]
        if after is not None and _is_uint(after):
            if int(after) > _MAX_SEQ:
                raise InvalidInputError("after is beyond any sequence number")
            lines = [
                {
                    "type": "sequenced_op",
                    "seq": row.seq,
                    "did": row.entry.did,
                    "operation": row.entry.operation.to_json(),
                    "cid": row.entry.cid,
                    "createdAt": format_timestamp(row.entry.created_at),
                }
                for row in store.export(int(after), count)
            ]
        else:
            since = None if after is None else _timestamp(after)
            lines = [e.to_json() for e in store.export_by_time(since, count)]
        body = "\n".join(json.dumps(x, separators=(",", ":"), ensure_ascii=False) for x in lines)
        return Response(body, media_type="application/jsonlines")

    async def resolve_handle(request: Request) -> Response:
        handle = request.query_params.get("handle")
        if not handle:
            raise InvalidInputError('Error: Params must have the property "handle"')
        return JSONResponse({"did": store.resolve_handle(handle)})

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
            store.close()

    app = Starlette(
        routes=[
            Route("/_health", health, methods=["GET"]),
            Route("/export", export, methods=["GET"]),
            Route("/xrpc/com.atproto.identity.resolveHandle", resolve_handle, methods=["GET"]),
            Route("/{did}", resolve, methods=["GET"]),
            Route("/{did}", submit, methods=["POST"]),
            Route("/{did}/data", data, methods=["GET"]),
            Route("/{did}/log", log, methods=["GET"]),
            Route("/{did}/log/audit", audit, methods=["GET"]),
            Route("/{did}/log/last", last, methods=["GET"]),
        ],
        exception_handlers={
            PlazaError: _plaza_error,
            HTTPException: _http_error,
            Exception: _internal_error,
        },
        lifespan=lifespan,
    )
    app.state.store = store
    return app


def _spend(buckets: TokenBuckets, request: Request) -> None:
    """One token of the client's bucket, or :class:`RateLimitedError`."""
    client = request.client
    wait = buckets.take(address_key(client.host) if client else "unknown")
    if wait > 0:
        raise RateLimitedError(
            f"too many new DIDs from this address; try again in {math.ceil(wait)} s",
            retry_after_s=wait,
        )


def _did(request: Request) -> str:
    did: str = request.path_params["did"]
    if not is_did_plc(did):
        raise InvalidInputError(f"not a did:plc identifier: {did[:80]!r}")
    return did


def _too_large(limit: int) -> PlcTooLargeError:
    return PlcTooLargeError(f"request body is larger than {limit} bytes")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise InvalidInputError(f"JSON object repeats the key {key!r}")
        out[key] = value
    return out


def _reject_constant(name: str) -> Any:
    raise InvalidInputError(f"JSON constant {name} is not allowed")


def _json(body: bytes) -> Any:
    try:
        value = json.loads(body, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"request body is not valid JSON: {exc}") from exc
    except RecursionError as exc:  # the stdlib parser recurses once per nesting level
        raise InvalidInputError("request body is not valid JSON: nested too deeply") from exc
    return value  # a lone surrogate in it fails the operation's own checks (400)


def _is_uint(raw: str) -> bool:
    # str.isdigit() accepts superscripts that int() refuses, and int() refuses more than
    # 4300 digits; a sequence number or count has at most 19.
    return raw.isascii() and raw.isdigit() and len(raw) <= 19


def _count(raw: str | None) -> int:
    if raw is None:
        return MAX_EXPORT_COUNT
    if not _is_uint(raw) or int(raw) < 1:
        raise InvalidInputError("count must be a positive integer")
    return min(int(raw), MAX_EXPORT_COUNT)


def _timestamp(raw: str) -> datetime:
    try:
        return parse_timestamp(raw)
    except PlazaError as exc:
        raise InvalidInputError("after must be a sequence number or an RFC 3339 timestamp") from exc


def _error(status: int, message: str, code: str) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status)


async def _plaza_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PlazaError)
    response = _error(exc.status, exc.message, exc.code)
    if isinstance(exc, RateLimitedError):
        response.headers["Retry-After"] = str(math.ceil(exc.retry_after_s))
    return response


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "NotFound", 405: "MethodNotAllowed"}.get(exc.status_code, "InvalidRequest")
    return _error(exc.status_code, str(exc.detail), code)


async def _internal_error(request: Request, exc: Exception) -> Response:
    return _error(500, "Internal Server Error", "InternalServerError")
