"""Sign up, sign in and sign out, through the entryway (or a PDS: the same calls).

Sign-in attempts are limited per client address (a token bucket, see
:class:`~plaza.services.buckets.TokenBuckets`): past the burst, the form answers 429
with the wait, and nothing reaches the entryway. The buckets live in each web process;
with several processes on one port each holds its share of the limit
(:func:`plaza.web.app.create_app`), and the kernel spreads a client's connections over
them. Signing in or up starts a new session (a new CSRF token); signing out ends the
member's atproto session at their PDS too. A handle or password never appears in
a page, a redirect or a log line.
"""

from __future__ import annotations

import contextlib
import math

from starlette.responses import Response

from plaza.services.buckets import address_key
from plaza.web.atp import account_of
from plaza.web.context import Page
from plaza.web.errors import UpstreamError, WebError

MAX_FIELD = 256


def _field(form: dict[str, str], name: str, label: str) -> str:
    value = form.get(name, "").strip()
    if not value:
        raise WebError(f"{label} is required")
    if len(value) > MAX_FIELD:
        raise WebError(f"{label} is at most {MAX_FIELD} characters")
    return value


def _limit(page: Page) -> None:
    client = page.request.client
    wait = page.web.signin_limits.take(address_key(client.host if client else "unknown"))
    if wait > 0:
        raise WebError(
            f"too many sign-in attempts: try again in {math.ceil(wait)} s",
            code="RateLimitExceeded",
            status=429,
        )


async def signin_form(page: Page) -> Response:
    if page.account is not None:
        return page.back("/")
    return page.render("signin.html", title="Sign in")


async def signin(page: Page) -> Response:
    form = await page.form()
    _limit(page)
    handle = _field(form, "handle", "Handle").removeprefix("@")
    password = _field(form, "password", "Password")
    entryway = page.web.settings.entryway
    try:
        session = await page.web.upstream.procedure(
            entryway,
            "com.atproto.server.createSession",
            {"identifier": handle, "password": password},
        )
    except UpstreamError as exc:
        if exc.status >= 500:
            raise
        return page.render(
            "signin.html", status=401, title="Sign in", error="Wrong handle or password."
        )
    page.session = page.web.sessions.new(account_of(session, entryway))
    return page.back(form.get("next"))


async def signup_form(page: Page) -> Response:
    return page.render("signup.html", title="Create account")


async def signup(page: Page) -> Response:
    form = await page.form()
    _limit(page)
    body = {
        "handle": _field(form, "handle", "Handle").removeprefix("@"),
        "password": _field(form, "password", "Password"),
        "email": _field(form, "email", "Email"),
    }
    if form.get("invite"):
        body["inviteCode"] = form["invite"].strip()[:MAX_FIELD]
    entryway = page.web.settings.entryway
    try:
        session = await page.web.upstream.procedure(
            entryway, "com.atproto.server.createAccount", body
        )
    except UpstreamError as exc:
        if exc.status >= 500:
            raise
        return page.render("signup.html", status=400, title="Create account", error=exc.message)
    page.session = page.web.sessions.new(account_of(session, entryway))
    return page.back("/", flash="Welcome to Plaza.")


async def signout(page: Page) -> Response:
    await page.form()
    acct = page.account
    if acct is not None:
        # The cookie cannot be revoked, its atproto session can: a copy of the cookie
        # taken before now loses its refresh token (the PDS may be gone: signed out anyway).
        with contextlib.suppress(UpstreamError):
            await page.web.upstream.procedure(
                acct.pds, "com.atproto.server.deleteSession", None, acct.refresh
            )
    page.session = page.web.sessions.new()
    return page.back("/")
