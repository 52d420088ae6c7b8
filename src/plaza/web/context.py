"""What every page handler receives: the web client's parts and the request's session.

:class:`Web` holds the long-lived parts (settings, the upstream client, the session
table, the templates, the sign-in limiter). :func:`page` wraps a handler: it finds the
visitor's session from the cookie, runs the handler with a :class:`Page`, turns a
:class:`~plaza.errors.PlazaError` into an error page with its status, and sets the
session cookie on the way out. Forms are read with :meth:`Page.form`, which refuses a
missing or wrong CSRF token before anything else happens.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)

from plaza.asgi import read_body
from plaza.errors import PlazaError
from plaza.services.buckets import TokenBuckets
from plaza.web.errors import CsrfError, NotSignedInError, UpstreamError, WebError
from plaza.web.sessions import COOKIE, Account, Session, Sessions, csrf_ok
from plaza.web.settings import WebSettings
from plaza.web.tokens import renew, runs_out
from plaza.web.upstream import Upstream

HERE = Path(__file__).parent
MAX_FORM_FIELDS = 50
MAX_FORM_BYTES = 64 * 1024
MAX_UPLOAD_BYTES = 4_000_000
MAX_FILES = 4
_log = logging.getLogger(__name__)


def _too_large(limit: int) -> WebError:
    return WebError(f"a form is at most {limit} bytes", code="PayloadTooLarge", status=413)


class _Environment(Environment):
    """Looks a name up in a dict first: the pages render JSON from the services, and
    Jinja's default tries an attribute (an exception per lookup) before the key."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        if type(obj) is dict:
            try:
                return obj[attribute]
            except KeyError:
                pass
        return super().getattr(obj, attribute)


def environment() -> Environment:
    env = _Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(["html"], default=True),
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,  # templates ship with the package: no stat() per render
    )
    return env


@dataclass
class Web:
    settings: WebSettings
    upstream: Upstream
    sessions: Sessions
    templates: Environment
    signin_limits: TokenBuckets


def local_path(value: object, default: str = "/") -> str:
    """``value`` if it is a path on this site (``/x``, not ``//host`` or a URL), else
    ``default``: where a form may send the browser back to."""
    if not isinstance(value, str) or not value.startswith("/") or value.startswith("//"):
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or "\\" in value:
        return default
    return value


class Page:
    """One request: the visitor's session and the ways to answer."""

    def __init__(self, web: Web, request: Request, session: Session) -> None:
        self.web = web
        self.request = request
        self.session = session

    @property
    def account(self) -> Account | None:
        return self.session.account

    def require_account(self) -> Account:
        if self.session.account is None:
            raise NotSignedInError("sign in first")
        return self.session.account

    @property
    def wants_json(self) -> bool:
        """The page's own script asking (``static/sign.js``): answers and errors as JSON."""
        return self.request.headers.get("accept") == "application/json"

    @property
    def htmx(self) -> bool:
        return self.request.headers.get("hx-request") == "true"

    async def form(self) -> dict[str, str]:
        """The posted form's fields (text only), after checking the CSRF token."""
        kind = self.request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "application/x-www-form-urlencoded":
            raise WebError("send the form as application/x-www-form-urlencoded")
        raw = await read_body(self.request, MAX_FORM_BYTES, _too_large)
        try:
            pairs = parse_qsl(
                raw.decode("utf-8", "strict"),
                keep_blank_values=True,
                strict_parsing=False,
                max_num_fields=MAX_FORM_FIELDS,
            )
        except (UnicodeDecodeError, ValueError) as exc:
            raise WebError("the form is malformed or has too many fields") from exc
        data = dict(pairs)
        if not csrf_ok(self.session, data.get("csrf")):
            raise CsrfError("the form's security token is missing or stale: reload the page")
        return data

    async def upload_form(self) -> tuple[dict[str, str], list[tuple[str, bytes, str]]]:
        """A ``multipart/form-data`` form (CSRF checked): its text fields, and its files
        as ``(field name, bytes, declared type)``, at most :data:`MAX_UPLOAD_BYTES` in all.
        A form sent urlencoded (no file chosen, or no multipart support) reads as usual."""
        kind = self.request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "multipart/form-data":
            return await self.form(), []
        declared = self.request.headers.get("content-length", "")
        if not declared.isdigit() or len(declared) > 12 or int(declared) > MAX_UPLOAD_BYTES:
            raise WebError(
                f"a post with images is at most {MAX_UPLOAD_BYTES // 1_000_000} MB",
                code="PayloadTooLarge",
                status=413,
            )
        data = await self.request.form(
            max_files=MAX_FILES, max_fields=MAX_FORM_FIELDS, max_part_size=MAX_UPLOAD_BYTES
        )
        if not csrf_ok(self.session, data.get("csrf")):
            raise CsrfError("the form's security token is missing or stale: reload the page")
        fields = {k: v for k, v in data.items() if isinstance(v, str)}
        files = []
        for name, value in data.multi_items():
            if isinstance(value, UploadFile):
                content = await value.read()
                if content:
                    files.append((name, content, value.content_type or ""))
        return fields, files

    def _values(self, flash: str | None, values: dict[str, Any]) -> dict[str, Any]:
        return {
            "account": self.session.account,
            "csrf": self.session.csrf,
            "path": self.request.url.path,
            "flash": flash,
            "settings": self.web.settings,
            **values,
        }

    def render(self, template: str, status: int = 200, **values: Any) -> HTMLResponse:
        flash, self.session.flash = self.session.flash, None
        html = self.web.templates.get_template(template).render(self._values(flash, values))
        return HTMLResponse(html, status_code=status)

    async def stream(
        self, template: str, fetch: Callable[[], Awaitable[dict[str, Any]]], **values: Any
    ) -> StreamingResponse:
        """The page ``template``, streamed: its head (everything up to ``<main>``: the
        stylesheet, the scripts, the navigation) at once, its body once ``fetch()``
        returns the rest of its values. ``values`` (the title, at least) are known
        before. The status is 200 whatever ``fetch`` does: when it fails, the body is
        the error page's (its heading and message), so the page always ends whole.

        The session cookie goes out with the head, so it is settled before: the
        member's access token is renewed first when it runs out within minutes."""
        await self._renew_if_due()
        flash, self.session.flash = self.session.flash, None
        first = self._values(flash, values)
        tpl = self.web.templates.get_template(template)
        head = tpl.render(first, part="head")

        async def body() -> AsyncIterator[str]:
            yield head
            try:
                more = await fetch()
                html = tpl.render(first, **more, part="body")
            except PlazaError as exc:
                html = self._error_body(first, exc)
            except Exception as exc:  # noqa: BLE001 - the page must end whole: logged, shown
                _log.exception("a streamed page failed after its head was sent")
                html = self._error_body(first, WebError(f"an error ({type(exc).__name__})",
                                                        status=500))  # fmt: skip
            yield html

        return StreamingResponse(body(), media_type="text/html; charset=utf-8")

    def _error_body(self, first: dict[str, Any], exc: PlazaError) -> str:
        status = exc.status if 400 <= exc.status < 600 else 500
        signin = isinstance(exc, NotSignedInError)
        title = "Something went wrong" if status >= 500 else "That did not work"
        error = self.web.templates.get_template("error.html")
        return error.render(first, title=title, message=exc.message, signin=signin, part="body")

    async def _renew_if_due(self) -> None:
        acct = self.session.account
        if acct is None or not runs_out(acct, self.web.sessions.clock()):
            return
        try:
            await renew(self.web.upstream, acct)
        except UpstreamError as exc:
            if exc.status >= 500:
                return  # the page's own reads will say what is wrong
            self.session.account = None
            self.session.flash = "Your sign-in has expired: sign in again."

    def back(self, to: object, flash: str | None = None) -> Response:
        """After a form: 303 to the local path ``to`` (the page the form was on)."""
        if flash is not None:
            self.session.flash = flash
        if self.wants_json:
            return JSONResponse({"next": local_path(to)})
        return RedirectResponse(local_path(to), status_code=303)


Handler = Callable[[Page], Awaitable[Response]]


def _client_error(page: Page, exc: PlazaError) -> Response:
    status = exc.status if 400 <= exc.status < 600 else 500
    if isinstance(exc, NotSignedInError) and page.request.method == "GET":
        return RedirectResponse("/signin", status_code=303)
    if page.wants_json:
        return JSONResponse(exc.to_dict(), status_code=status)
    title = "Something went wrong" if status >= 500 else "That did not work"
    return page.render("error.html", status=status, title=title, message=exc.message)


def page(web: Web, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """An endpoint running ``handler`` with the visitor's session."""

    async def endpoint(request: Request) -> Response:
        session, reseal = web.sessions.load(request.cookies.get(COOKIE))
        before = session.state()
        p = Page(web, request, session)
        try:
            response = await handler(p)
        except PlazaError as exc:
            response = _client_error(p, exc)
        if reseal or p.session.state() != before:
            response.set_cookie(
                COOKIE,
                web.sessions.seal(p.session),
                max_age=int(web.sessions.max_age_s),
                httponly=True,
                samesite="lax",
                secure=web.settings.secure_cookies,
                path="/",
            )
        return response

    return endpoint
