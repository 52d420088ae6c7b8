"""XRPC for the app view: the method table, parameters, and errors as XRPC bodies.

Every method is a query (GET) or a procedure (POST) with a handler taking a
:class:`Call`. Parameters are read through :class:`Call`'s helpers, which refuse bad
input with ``InvalidRequest``; any :class:`~plaza.errors.PlazaError` renders as
``{"error": code, "message": message}`` with its status (errors of the protocol core,
such as a malformed AT-URI, are the caller's: ``InvalidRequest``, 400).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from starlette.requests import Request
from starlette.responses import Response

from plaza.asgi import read_body
from plaza.atproto.errors import AtprotoError
from plaza.errors import InvalidInputError, PlazaError
from plaza.services.appview.labels import ACCEPTED, accepted_labelers
from plaza.services.appview.service import Appview

log = logging.getLogger("plaza.appview")

MAX_BODY_BYTES = 100_000


class MethodNotImplementedError(PlazaError):
    code = "MethodNotImplemented"
    status = 501


class AuthRequiredError(PlazaError):
    code = "AuthenticationRequired"
    status = 401


def invalid(message: str) -> InvalidInputError:
    return InvalidInputError(message)


@dataclass
class Call:
    """One call as a handler sees it: the app view, the request, the viewer's DID (from
    a verified inter-service token, or None) and the JSON body of a procedure."""

    av: Appview
    nsid: str
    request: Request
    viewer: str | None
    body: Any = field(default=None, repr=False)

    def param(self, name: str) -> str | None:
        value = self.request.query_params.get(name)
        return None if value is None or value == "" else value

    def req_param(self, name: str) -> str:
        value = self.param(name)
        if value is None:
            raise invalid(f'Error: Params must have the property "{name}"')
        return value

    def params(self, name: str) -> list[str]:
        return [v for v in self.request.query_params.getlist(name) if v]

    def int_param(self, name: str, default: int, lo: int, hi: int) -> int:
        raw = self.param(name)
        if raw is None:
            return default
        if not (raw.isascii() and raw.isdigit()) or len(raw) > 9:
            raise invalid(f"{name} must be an integer")
        value = int(raw)
        if not lo <= value <= hi:
            raise invalid(f"{name} must be between {lo} and {hi}")
        return value

    def limit(self, default: int = 50, hi: int = 100) -> int:
        return self.int_param("limit", default, 1, hi)

    def require_viewer(self) -> str:
        if self.viewer is None:
            raise AuthRequiredError("Authentication Required")
        return self.viewer


Handler = Callable[[Call], Awaitable[Any]]


@dataclass(frozen=True)
class Method:
    nsid: str
    kind: Literal["query", "procedure"]
    handler: Handler


def query(nsid: str, handler: Handler) -> Method:
    return Method(nsid, "query", handler)


def procedure(nsid: str, handler: Handler) -> Method:
    return Method(nsid, "procedure", handler)


def json_response(value: Any, status: int = 200) -> Response:
    body = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
    return Response(body, status_code=status, media_type="application/json")


def error_response(err: PlazaError) -> Response:
    code, status = err.code, err.status
    if isinstance(err, AtprotoError):
        code, status = "InvalidRequest", 400
    return json_response({"error": code, "message": err.message}, status)


def _too_large(limit: int) -> PlazaError:
    return PlazaError(f"request body over {limit} bytes", code="PayloadTooLarge", status=413)


class Dispatcher:
    """The ``/xrpc/{nsid}`` endpoint over a fixed method table."""

    def __init__(self, av: Appview, methods: Iterable[Method]) -> None:
        self.av = av
        self.methods: dict[str, Method] = {}
        for m in methods:
            if m.nsid in self.methods:
                raise ValueError(f"duplicate XRPC method {m.nsid}")
            self.methods[m.nsid] = m

    async def handle(self, request: Request) -> Response:
        nsid: str = request.path_params["nsid"]
        try:
            method = self.methods.get(nsid)
            if method is None:
                raise MethodNotImplementedError("Method Not Implemented")
            verb = request.method
            if method.kind == "query" and verb not in ("GET", "HEAD"):
                raise invalid(f"Incorrect HTTP method ({verb}) expected GET")
            if method.kind == "procedure" and verb != "POST":
                raise invalid(f"Incorrect HTTP method ({verb}) expected POST")
            viewer = await self.av.auth.viewer(request, nsid)
            labelers = accepted_labelers(
                request.headers.get("atproto-accept-labelers"), self.av.settings.labelers
            )
            ACCEPTED.set(labelers)
            call = Call(self.av, nsid, request, viewer)
            if method.kind == "procedure":
                raw = await read_body(request, MAX_BODY_BYTES, _too_large)
                try:
                    call.body = json.loads(raw) if raw.strip() else None
                except (ValueError, RecursionError) as exc:
                    raise invalid("request body is not JSON") from exc
            result = await method.handler(call)
        except PlazaError as err:
            return error_response(err)
        except Exception:
            log.exception("XRPC %s failed", nsid)
            return json_response(
                {"error": "InternalServerError", "message": "Internal Server Error"}, 500
            )
        if result is None:
            return Response(b"", status_code=200)
        response = json_response(result)
        if self.av.settings.labelers:
            response.headers["atproto-content-labelers"] = ",".join(labelers)
        return response
