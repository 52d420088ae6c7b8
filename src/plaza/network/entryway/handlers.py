"""The entryway's XRPC methods: each parses, calls one component off the event loop,
and renders. The table :data:`METHODS` is every route the app serves."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from plaza.network.entryway.credentials import NSID as HOST_CREDENTIAL
from plaza.network.entryway.credentials import HostCredentials
from plaza.network.entryway.errors import InvalidRequestError
from plaza.network.entryway.sessions import Sessions, require_str
from plaza.network.entryway.settings import EntrywaySettings
from plaza.network.entryway.signup import SignUps, parse_request
from plaza.services.buckets import TokenBuckets, address_key
from plaza.services.errors import RateLimitedError

Body = Callable[[], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class Entryway:
    """The components a handler reaches."""

    settings: EntrywaySettings
    signups: SignUps
    sessions: Sessions
    credentials: HostCredentials
    login_limit: TokenBuckets
    signup_limit: TokenBuckets


def spend(buckets: TokenBuckets, client: str, what: str) -> None:
    """One of the client's tokens, or :class:`RateLimitedError` (429, ``Retry-After``)."""
    wait = buckets.take(address_key(client))
    if wait > 0:
        raise RateLimitedError(
            f"too many {what} from this address; try again in {math.ceil(wait)} s",
            retry_after_s=wait,
        )


async def describe_server(ew: Entryway, request: Request, body: Body) -> dict[str, Any]:
    return {
        "did": ew.settings.did,
        "availableUserDomains": list(ew.settings.user_domains),
        "inviteCodeRequired": False,
        "phoneVerificationRequired": False,
        "links": {},
        "contact": {},
    }


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def create_account(ew: Entryway, request: Request, body: Body) -> dict[str, Any]:
    if request.headers.get("authorization"):
        raise InvalidRequestError("createAccount at the entryway takes no token")
    signup = parse_request(await body(), ew.settings.user_domains)
    spend(ew.signup_limit, _client(request), "sign-ups")
    return await asyncio.to_thread(ew.signups.create, signup)


async def create_session(ew: Entryway, request: Request, body: Body) -> dict[str, Any]:
    data = await body()
    identifier, password = require_str(data, "identifier"), require_str(data, "password")
    spend(ew.login_limit, _client(request), "login attempts")
    return await asyncio.to_thread(ew.sessions.create, identifier, password, _client(request))


async def refresh_session(ew: Entryway, request: Request, body: Body) -> dict[str, Any]:
    auth = request.headers.get("authorization", "")
    return await asyncio.to_thread(
        ew.sessions.forward, "POST", "com.atproto.server.refreshSession", auth
    )


async def get_session(ew: Entryway, request: Request, body: Body) -> dict[str, Any]:
    auth = request.headers.get("authorization", "")
    return await asyncio.to_thread(
        ew.sessions.forward, "GET", "com.atproto.server.getSession", auth
    )


async def get_host_credential(ew: Entryway, request: Request, body: Body) -> dict[str, Any]:
    did = require_str(await body(), "did")
    auth = request.headers.get("authorization", "")
    return await asyncio.to_thread(ew.credentials.get, auth, did, time.time())


Handler = Callable[[Entryway, Request, Body], Awaitable[dict[str, Any]]]

#: nsid -> (HTTP verb, handler)
METHODS: dict[str, tuple[str, Handler]] = {
    "com.atproto.server.describeServer": ("GET", describe_server),
    "com.atproto.server.createAccount": ("POST", create_account),
    "com.atproto.server.createSession": ("POST", create_session),
    "com.atproto.server.refreshSession": ("POST", refresh_session),
    "com.atproto.server.getSession": ("GET", get_session),
    HOST_CREDENTIAL: ("POST", get_host_credential),
}
