"""The web client as one Starlette app: an explicit route table over the page handlers.

Every response carries a Content Security Policy that allows scripts and styles only
from this site (no inline script, no eval), forbids framing, and sends no referrer to
other sites. Static files (the stylesheet, htmx) are served from ``/static`` and
cached; pages are compressed when the browser accepts gzip.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from plaza.services.buckets import TokenBuckets
from plaza.web import auth, members, membership, network, relations, reports, social
from plaza.web.context import HERE, Handler, Web, environment, page
from plaza.web.sessions import Sessions, load_key
from plaza.web.settings import WebSettings
from plaza.web.upstream import Upstream

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' https: http: data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "object-src 'none'"
)
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
]


class SecurityHeaders:
    """Adds :data:`HEADERS` to every HTTP response, and a cache lifetime to static files."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = str(scope.get("path", "")).startswith("/static/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", [])) + HEADERS
                if static:
                    headers.append((b"cache-control", b"public, max-age=3600"))
                else:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


def create_app(settings: WebSettings, upstream: Upstream | None = None) -> Starlette:
    """The web client over the services ``settings`` names (its session key from
    ``settings.data_dir``, made there on first use)."""
    key = load_key(settings.data_dir) if settings.data_dir else secrets.token_bytes(32)
    share = settings.workers
    web = Web(
        settings=settings,
        upstream=upstream or Upstream(cache_ttl_s=settings.cache_ttl_s),
        sessions=Sessions(key),
        templates=environment(),
        signin_limits=TokenBuckets(
            settings.signin_rate_per_s / share, max(1, math.ceil(settings.signin_burst / share))
        ),
    )

    if settings.labeler is not None:
        web.templates.globals["report_reasons"] = reports.REASONS

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        await web.upstream.close()

    def get(path: str, handler: Handler) -> Route:
        return Route(path, page(web, handler), methods=["GET"])

    def post(path: str, handler: Handler) -> Route:
        return Route(path, page(web, handler), methods=["POST"])

    routes = [
        get("/", social.home),
        get("/signin", auth.signin_form),
        post("/signin", auth.signin),
        get("/signup", auth.signup_form),
        post("/signup", auth.signup),
        post("/signout", auth.signout),
        post("/compose", social.compose),
        post("/like", social.like),
        post("/repost", social.repost),
        post("/follow", social.follow),
        post("/report", reports.report),
        get("/profile/{actor}", social.profile),
        get("/settings/profile", relations.edit_form),
        post("/settings/profile", relations.edit),
        post("/block", relations.block),
        post("/mute", relations.mute),
        get("/post/{did}/{rkey}", social.thread),
        get("/notifications", social.notifications),
        get("/search", social.search),
        get("/governance", members.governance),
        get("/governance/proposals/{pid:int}", members.proposal),
        post("/governance/proposals/{pid:int}/vote", members.vote),
        post("/governance/motions/{mid:int}/veto", members.veto),
        post("/governance/delegate", members.delegate),
        get("/governance/actions", members.actions),
        get("/governance/members", membership.members_page),
        post("/governance/members/vouch", membership.vouch),
        post("/governance/members/admit", membership.admit),
        get("/governance/receipt", membership.receipt),
        get("/governance/charter", membership.charter),
        get("/governance/treasury", members.treasury),
        get("/network", network.network),
        Route("/_health", health, methods=["GET"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    return Starlette(
        routes=routes,
        middleware=[
            Middleware(SecurityHeaders),
            Middleware(GZipMiddleware, minimum_size=500, compresslevel=5),
        ],
        lifespan=lifespan,
    )


async def health(_: object) -> object:
    from starlette.responses import JSONResponse

    return JSONResponse({"status": "ok"})
