"""Plaza's HTTP error shape, request-body limit, JSON text check and ``/docs`` page,
shared by its HTTP services.

Error shape (the FastAPI services: the DAO's and the market's):

Every error answers ``{"error": code, "message": ...}`` with the error's HTTP status:
Plaza's own errors, FastAPI's validation errors (400 ``InvalidRequest``), unknown routes
(404) and methods (405). A failure of the server itself — an exception nothing turned
into a response (a bug, a broken store), or a Plaza error of a 5xx status (storage
unavailable) — answers with its code and a message that names no internals: exception
text can hold paths, SQL and hosts, so the message gives only a reference to the
server's log line, which holds the exception and its traceback.

Body limit (every service): :func:`body_chunks` and :func:`read_body` refuse a request
body past a limit as soon as it is known to pass it — by its declared Content-Length
before anything is read, or while it streams in when it declares none — so an
oversized body is never held in memory. The error is the caller's (each package names
its own: ``PayloadTooLarge``, ``BlobTooLarge``, ``OperationTooLarge``).
:class:`BodyLimit` is the same check as ASGI middleware, for an app whose handlers
read the body themselves.

``/docs`` is a plain HTML list of the endpoints (:func:`install_docs_page`), made from the
OpenAPI document (``/openapi.json``) and loading nothing from elsewhere.

JSON text (every service): JSON may spell a lone UTF-16 surrogate (``"\\ud800"``), which
Python parses into a ``str`` that no UTF-8 store, hash or response can encode. Every
service refuses such a body at the edge with 400 ``InvalidRequest``
(:func:`has_lone_surrogate` over the parsed value; :class:`BodyLimit` does it for the
apps that read JSON through FastAPI), before any handler sees it.
"""

from __future__ import annotations

import html
import json
import logging
import secrets
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from plaza.errors import InvalidInputError, NotFoundError, PlazaError

__all__ = [
    "BodyLimit",
    "InternalErrors",
    "TooLarge",
    "body_chunks",
    "docs_page",
    "has_lone_surrogate",
    "install_docs_page",
    "install_json_errors",
    "internal_error",
    "read_body",
]

_HTTP_CODES = {405: "MethodNotAllowed", 400: "InvalidRequest", 401: "AuthRequired"}


def internal_error(
    exc: BaseException, scope: Scope, *, service: str, code: str, status: int
) -> JSONResponse:
    """Log ``exc`` with its traceback under a fresh reference (logger
    ``plaza.<service>.api``); answer ``code`` with a message giving only that reference."""
    ref = secrets.token_hex(6)
    logging.getLogger(f"plaza.{service}.api").error(
        "%s API: %s %s failed (reference %s)",
        service,
        scope.get("method", "?"),
        scope.get("path", "?"),
        ref,
        exc_info=exc,
    )
    message = f"the {service} could not handle this request (reference {ref} in its log)"
    return JSONResponse({"error": code, "message": message}, status_code=status)


def docs_page(openapi: dict[str, Any]) -> str:
    """One self-contained HTML page listing the endpoints of an OpenAPI document: method,
    path, summary, parameters, and a link to the document itself. No script, style sheet,
    font or image comes from anywhere else (the page works with no network)."""
    info = openapi.get("info", {})
    title = html.escape(f"{info.get('title', 'API')} {info.get('version', '')}".strip())
    rows = []
    for path, ops in sorted(openapi.get("paths", {}).items()):
        for method, op in ops.items():
            params = ", ".join(
                f"{p.get('name', '')} ({p.get('in', '')})" for p in op.get("parameters", [])
            )
            if "requestBody" in op:
                params = f"{params}, JSON body" if params else "JSON body"
            rows.append(
                f"<tr><td><code>{html.escape(method.upper())}</code></td>"
                f"<td><code>{html.escape(path)}</code></td>"
                f"<td>{html.escape(op.get('summary', ''))}</td>"
                f"<td>{html.escape(params)}</td></tr>"
            )
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{title}</title><style>"
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}"
        f"</style></head><body><h1>{title}</h1>"
        '<p>The OpenAPI document: <a href="openapi.json">openapi.json</a>. Errors answer '
        '<code>{"error": code, "message": ...}</code> with the HTTP status.</p>'
        "<table><tr><th>method</th><th>path</th><th>what</th><th>parameters</th></tr>"
        + "".join(rows)
        + "</table></body></html>\n"
    )


def install_docs_page(app: FastAPI) -> None:
    """Serve :func:`docs_page` of ``app``'s OpenAPI document at ``/docs``, with a content
    security policy that lets the page load nothing. Build ``app`` with
    ``docs_url=None, redoc_url=None``: FastAPI's own pages load Swagger UI from a CDN."""
    policy = "default-src 'none'; style-src 'unsafe-inline'"

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse(docs_page(app.openapi()), headers={"Content-Security-Policy": policy})


class InternalErrors:
    """ASGI middleware: an exception no handler turned into a response becomes a JSON 500
    ``InternalServerError`` (logged here, not re-raised to the server, which would answer
    plain text). If the response had already started, the exception is logged and
    re-raised so the server drops the connection."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception as exc:
            if started:
                logging.getLogger(f"plaza.{self.service}.api").error(
                    "%s API: %s failed mid-response", self.service, scope.get("path"), exc_info=exc
                )
                raise
            response = internal_error(
                exc, scope, service=self.service, code="InternalServerError", status=500
            )
            await response(scope, receive, send)


def install_json_errors(app: FastAPI, service: str) -> None:
    """Give ``app`` the shape above: the middleware (add it after any other middleware,
    so that it is the outermost and covers them) and the exception handlers."""
    app.add_middleware(InternalErrors, service=service)

    @app.exception_handler(PlazaError)
    async def plaza_error(request: Request, exc: PlazaError) -> JSONResponse:
        if exc.status >= 500:  # the server's failure: its message may describe internals
            return internal_error(
                exc, request.scope, service=service, code=exc.code, status=exc.status
            )
        return JSONResponse(exc.to_dict(), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        message = f"{where}: {first.get('msg', 'invalid request')}" if where else "invalid request"
        return JSONResponse(InvalidInputError(message).to_dict(), status_code=400)

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        err: PlazaError = (
            NotFoundError(str(exc.detail))
            if exc.status_code == 404
            else PlazaError(str(exc.detail), code=_HTTP_CODES.get(exc.status_code, "Error"))
        )
        return JSONResponse(err.to_dict(), status_code=exc.status_code, headers=exc.headers)


TooLarge = Callable[[int], PlazaError]
"""Builds the error for a body over a limit (given the limit in bytes)."""

_MAX_DIGITS = 18  # longer Content-Length values pass every limit (and int() would be slow)


def body_chunks(request: Request, limit: int, too_large: TooLarge) -> AsyncIterator[bytes]:
    """The body of ``request`` chunk by chunk. ``too_large(limit)`` is raised here, at
    the call, when the declared Content-Length passes ``limit`` (or is not a number: it
    cannot be shown to be within it), else by the iterator as soon as the chunks read so
    far pass it."""
    declared = request.headers.get("content-length")
    if declared is not None and not (
        0 < len(declared) <= _MAX_DIGITS
        and declared.isascii()
        and declared.isdigit()
        and int(declared) <= limit
    ):
        raise too_large(limit)
    return _counted(request.stream(), limit, too_large)


async def _counted(
    chunks: AsyncIterator[bytes], limit: int, too_large: TooLarge
) -> AsyncIterator[bytes]:
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        yield chunk


async def read_body(request: Request, limit: int, too_large: TooLarge) -> bytes:
    """The whole body of ``request``, read through :func:`body_chunks`."""
    chunks = [chunk async for chunk in body_chunks(request, limit, too_large)]
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def has_lone_surrogate(value: Any) -> bool:
    """True when a string anywhere in the parsed JSON ``value`` (keys included) holds a
    UTF-16 surrogate code point, which no valid Unicode text contains."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if not item.isascii() and _not_utf8(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _not_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _json_with_lone_surrogate(scope: Scope, body: bytes) -> bool:
    content_type = ""
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            content_type = value.decode("latin-1").split(";", 1)[0].strip().lower()
    if not (content_type == "application/json" or content_type.endswith("+json")):
        return False
    try:
        return has_lone_surrogate(json.loads(body))
    except (ValueError, UnicodeDecodeError, RecursionError):
        return False  # not JSON at all: the application refuses it in its own words


class BodyLimit:
    """ASGI middleware: read the whole request body first (:func:`read_body`), answering
    ``too_large(limit)`` as JSON before the application sees any of it, and 400
    ``InvalidRequest`` for a JSON body holding a lone surrogate."""

    def __init__(self, app: ASGIApp, limit: int, too_large: TooLarge) -> None:
        self.app = app
        self.limit = limit
        self.too_large = too_large

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            body = await read_body(Request(scope, receive), self.limit, self.too_large)
        except ClientDisconnect:
            return
        except PlazaError as exc:
            await JSONResponse(exc.to_dict(), status_code=exc.status)(scope, receive, send)
            return
        if _json_with_lone_surrogate(scope, body):
            err = InvalidInputError("the request body holds invalid Unicode (a lone surrogate)")
            await JSONResponse(err.to_dict(), status_code=err.status)(scope, receive, send)
            return
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
