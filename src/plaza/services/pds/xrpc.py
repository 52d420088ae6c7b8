"""XRPC over HTTP: the method table, dispatch, parameter parsing and error rendering.

A :class:`Method` names an NSID, whether it is a query (GET) or a procedure (POST), its
handler, the credentials it needs and how its body is read. :class:`XrpcDispatcher` is
the ASGI endpoint behind ``/xrpc/{nsid}``: it looks the method up, checks the HTTP verb,
authenticates, reads and parses the body (refusing JSON that holds a lone UTF-16
surrogate: every method's input is valid Unicode), calls the handler and renders the
result. Query parameters need no such check: Starlette decodes them with invalid UTF-8
replaced by U+FFFD, so they never hold a surrogate.
Every :class:`~plaza.errors.PlazaError` becomes ``{"error": code, "message": message}``
with its status; errors of the protocol core (malformed CIDs, records failing their
Lexicon, ...) are the caller's fault and render as ``InvalidRequest`` (400).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from starlette.requests import Request
from starlette.responses import Response

from plaza.asgi import TooLarge, has_lone_surrogate, read_body
from plaza.atproto import syntax
from plaza.atproto.errors import AtprotoError
from plaza.errors import PlazaError
from plaza.services.pds.auth import Auth, Authenticator, Credentials
from plaza.services.pds.errors import (
    InvalidRequestError,
    MethodNotImplementedError,
    PayloadTooLargeError,
)

log = logging.getLogger("plaza.pds")

JSON_TYPE = "application/json"


Body = Literal["none", "json", "optional", "raw"]


C = TypeVar("C")


@dataclass
class XrpcCall(Generic[C]):
    """One incoming call as a handler sees it: ``pds`` is the app-level object the
    dispatcher was built with (the parts of the service handlers use)."""

    pds: C
    nsid: str
    request: Request
    creds: Credentials | None
    # parsed JSON for ``json`` methods (``raw`` bodies are streamed); out of ``repr``:
    # it can hold a password
    body: Any = dataclasses.field(default=None, repr=False)
    account_did: str | None = None  # whose usage this call counts against

    @property
    def params(self) -> Any:
        return self.request.query_params

    def param(self, name: str, *, required: bool = True) -> str | None:
        value = self.request.query_params.get(name)
        if value is None or value == "":
            if required:
                raise InvalidRequestError(f'Error: Params must have the property "{name}"')
            return None
        return value

    def req_param(self, name: str) -> str:
        value = self.param(name)
        assert value is not None
        return value

    def int_param(self, name: str, default: int, lo: int, hi: int) -> int:
        """A non-negative integer parameter in ``[lo, hi]``: ASCII digits only."""
        raw = self.request.query_params.get(name)
        if raw is None or raw == "":
            return default
        if not is_ascii_digits(raw):
            raise InvalidRequestError(f"{name} must be an integer")
        value = int(raw)
        if not lo <= value <= hi:
            raise InvalidRequestError(f"{name} must be between {lo} and {hi}")
        return value

    def tid_param(self, name: str) -> str | None:
        """An optional revision (TID) parameter."""
        raw = self.param(name, required=False)
        if raw is not None:
            try:
                syntax.validate_tid(raw)
            except AtprotoError as exc:
                raise InvalidRequestError(f"{name} must be a revision (TID)") from exc
        return raw

    def bool_param(self, name: str, default: bool = False) -> bool:
        raw = self.request.query_params.get(name)
        if raw is None or raw == "":
            return default
        if raw in ("true", "1"):
            return True
        if raw in ("false", "0"):
            return False
        raise InvalidRequestError(f"{name} must be true or false")

    def field(
        self, name: str, kind: type | tuple[type, ...] = str, *, required: bool = True
    ) -> Any:
        """A top-level field of the JSON body, type-checked."""
        body = self.body if isinstance(self.body, dict) else {}
        value = body.get(name)
        if value is None:
            if required:
                raise InvalidRequestError(f'Input must have the property "{name}"')
            return None
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise InvalidRequestError(f"Input/{name} has the wrong type")
        return value

    def str_field(self, name: str) -> str:
        value: str = self.field(name, str)
        return value

    def opt_str(self, name: str) -> str | None:
        value: str | None = self.field(name, str, required=False)
        return value

    @property
    def client_ip(self) -> str:
        client = self.request.client
        return client.host if client else "unknown"


Handler = Callable[[XrpcCall[Any]], Awaitable[Any]]


@dataclass(frozen=True)
class Method:
    nsid: str
    kind: Literal["query", "procedure", "any"]
    handler: Handler
    auth: Auth = Auth.NONE
    body: Body = "none"


def query(nsid: str, handler: Handler, auth: Auth = Auth.NONE) -> Method:
    return Method(nsid, "query", handler, auth, "none")


def procedure(nsid: str, handler: Handler, auth: Auth = Auth.NONE, body: Body = "json") -> Method:
    return Method(nsid, "procedure", handler, auth, body)


def json_response(value: Any, status: int = 200) -> Response:
    body = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
    return Response(body, status_code=status, media_type=JSON_TYPE)


def error_response(err: PlazaError) -> Response:
    code, status = err.code, err.status
    if isinstance(err, AtprotoError):
        code, status = "InvalidRequest", 400
    resp = json_response({"error": code, "message": err.message}, status)
    if status == 401:
        resp.headers["WWW-Authenticate"] = 'Bearer realm="xrpc"'
    return resp


_EMPTY = Response(b"", status_code=200)


Fallback = Callable[[str, bool], Method | None]


def _no_fallback(nsid: str, named: bool) -> Method | None:
    return None


class XrpcDispatcher(Generic[C]):
    """The ``/xrpc/{nsid}`` endpoint over a fixed method table.

    Each call is checked by ``auth``, its JSON body bounded by ``max_json_bytes``, and
    handed to its handler with ``pds``. A method not in the table, or any method when
    the request names a target in ``atproto-proxy``, is looked up with
    ``fallback(nsid, named)`` (the PDS forwards such calls to an app view).
    """

    def __init__(
        self,
        pds: C,
        methods: Iterable[Method],
        *,
        auth: Authenticator,
        max_json_bytes: int,
        fallback: Fallback = _no_fallback,
    ) -> None:
        self.pds = pds
        self.auth = auth
        self.max_json_bytes = max_json_bytes
        self.fallback = fallback
        self.methods: dict[str, Method] = {}
        for m in methods:
            if m.nsid in self.methods:
                raise ValueError(f"duplicate XRPC method {m.nsid}")
            self.methods[m.nsid] = m

    async def handle(self, request: Request) -> Response:
        nsid: str = request.path_params["nsid"]
        call: XrpcCall[C] | None = None
        try:
            method = self.methods.get(nsid)
            named = "atproto-proxy" in request.headers
            if named:
                # An explicit proxy target wins even over what this PDS serves itself.
                method = self.fallback(nsid, True) or method
            if method is None:
                fallback = self.fallback(nsid, named)
                if fallback is None:
                    raise MethodNotImplementedError("Method Not Implemented")
                method = fallback
            verb = request.method
            if method.kind == "query" and verb not in ("GET", "HEAD"):
                raise InvalidRequestError(f"Incorrect HTTP method ({verb}) expected GET")
            if method.kind == "procedure" and verb != "POST":
                raise InvalidRequestError(f"Incorrect HTTP method ({verb}) expected POST")
            creds = await self.auth.authenticate(request, method.auth)
            call = XrpcCall(self.pds, nsid, request, creds)
            if creds is not None:
                call.account_did = creds.did
            if method.body == "json":
                call.body = await self._json_body(request, required=True)
            elif method.body == "optional":
                call.body = await self._json_body(request, required=False)
            result = await method.handler(call)
        except PlazaError as err:
            response = error_response(err)
        except Exception:
            log.exception("XRPC %s failed", nsid)
            response = json_response(
                {"error": "InternalServerError", "message": "Internal Server Error"}, 500
            )
        else:
            if result is None:
                response = _EMPTY
            elif isinstance(result, Response):
                response = result
            else:
                response = json_response(result)
        request.state.account_did = call.account_did if call is not None else None
        return response

    async def _json_body(self, request: Request, *, required: bool) -> Any:
        raw = await read_body(request, self.max_json_bytes, _JSON_TOO_LARGE)
        if not raw.strip():
            if required:
                raise InvalidRequestError("Request body is required")
            return {}
        ctype = request.headers.get("content-type", JSON_TYPE).split(";", 1)[0].strip()
        if ctype not in (JSON_TYPE, "text/json"):
            raise InvalidRequestError(f"Wrong request encoding (Content-Type): {ctype}")
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidRequestError(f"Request body is not valid JSON: {exc}") from exc
        except RecursionError as exc:  # the stdlib parser recurses once per nesting level
            raise InvalidRequestError("Request body is nested too deeply") from exc
        if not isinstance(body, dict):
            raise InvalidRequestError("Request body must be a JSON object")
        if has_lone_surrogate(body):
            # Parsed, but not text: no store, hash or response could encode it.
            raise InvalidRequestError("Request body holds invalid Unicode (a lone surrogate)")
        return body


def body_too_large(what: str = "request body", code: str = "PayloadTooLarge") -> TooLarge:
    """The error :func:`plaza.asgi.read_body` raises past a limit: 413 ``code``."""
    return lambda limit: PayloadTooLargeError(f"{what} is larger than {limit} bytes", code=code)


_JSON_TOO_LARGE = body_too_large()


def is_ascii_digits(text: str, max_len: int = 18) -> bool:
    """True iff ``text`` is 1 to ``max_len`` ASCII digits (``str.isdigit`` and ``int``
    also accept other scripts' digits, superscripts and underscores)."""
    return 0 < len(text) <= max_len and text.isascii() and text.isdigit()
