"""The relay's XRPC methods: crawling requests and what it knows of hosts and repos.

Each handler parses its parameters, asks the relay, and renders the lexicon's shape;
every failure is ``{"error": name, "message": text}`` with its status. The table
:data:`METHODS` is the whole API besides the firehose:

- ``com.atproto.sync.requestCrawl`` (POST ``{"hostname"}``): follow a host, after
  checking it (:class:`~plaza.services.relay.hosts.Hosts`); rate-limited per client;
- ``listHosts``, ``getHostStatus``: the hosts, their cursors, account counts, status;
- ``listRepos``, ``getRepoStatus``, ``getLatestCommit``: the accounts and the head the
  relay last verified for each.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response

from plaza.asgi import has_lone_surrogate, read_body
from plaza.atproto import syntax
from plaza.atproto.errors import AtprotoError
from plaza.errors import PlazaError
from plaza.services.buckets import TokenBuckets, address_key
from plaza.services.errors import RateLimitedError
from plaza.services.relay.errors import (
    HostNotFoundError,
    InvalidRequestError,
    RepoInactiveError,
    RepoNotFoundError,
)
from plaza.services.relay.hosts import Hosts
from plaza.services.relay.relay import Relay
from plaza.services.relay.settings import host_url, hostname_of
from plaza.services.relay.state import DESYNCHRONIZED
from plaza.services.relay.store import AccountState, RelayStore

log = logging.getLogger("plaza.relay")

MAX_BODY_BYTES: Final = 16 * 1024
_INACTIVE_ERRORS: Final = {
    "takendown": "RepoTakendown",
    "suspended": "RepoSuspended",
    "deactivated": "RepoDeactivated",
}


@dataclass
class RelayApi:
    """What the handlers use: the relay, its hosts and store, and the crawl limiter."""

    relay: Relay
    hosts: Hosts
    store: RelayStore
    crawl_limit: TokenBuckets


Handler = Callable[[RelayApi, Request], Awaitable[dict[str, Any] | None]]


def _json(value: Any, status: int = 200) -> Response:
    body = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
    return Response(body, status_code=status, media_type="application/json")


def error_response(err: PlazaError) -> Response:
    code, status = err.code, err.status
    if isinstance(err, AtprotoError):
        code, status = "InvalidRequest", 400
    return _json({"error": code, "message": err.message}, status)


def _param(request: Request, name: str) -> str:
    value = request.query_params.get(name)
    if not value:
        raise InvalidRequestError(f'Error: Params must have the property "{name}"')
    return value


def _limit(request: Request, default: int) -> int:
    raw = request.query_params.get("limit")
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 6) or not 1 <= int(raw) <= 1000:
        raise InvalidRequestError("limit must be an integer between 1 and 1000")
    return int(raw)


def _did(request: Request) -> str:
    raw = _param(request, "did")
    try:
        return syntax.validate_did(raw)
    except AtprotoError as exc:
        raise InvalidRequestError(f"did must be a DID: {exc.message}") from exc


async def request_crawl(api: RelayApi, request: Request) -> None:
    client = request.client.host if request.client else "unknown"
    wait = api.crawl_limit.take(address_key(client))
    if wait > 0:
        raise RateLimitedError(
            f"too many crawl requests; try again in {wait:.0f}s", retry_after_s=wait
        )
    raw = await read_body(
        request, MAX_BODY_BYTES, lambda n: InvalidRequestError(f"body is larger than {n} bytes")
    )
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise InvalidRequestError("Request body is not valid JSON") from exc
    if not isinstance(body, dict) or has_lone_surrogate(body):
        raise InvalidRequestError("Request body must be a JSON object of valid text")
    hostname = body.get("hostname")
    if not isinstance(hostname, str) or not hostname:
        raise InvalidRequestError('Input must have the property "hostname"')
    await api.hosts.add(hostname, "requestCrawl")


def _host_json(api: RelayApi, name: str, counts: dict[str, int]) -> dict[str, Any]:
    host = api.relay.hosts[name]
    return {
        "hostname": name,
        "seq": host.cursor,
        "accountCount": counts.get(name, 0),
        "status": host.status,
    }


async def list_hosts(api: RelayApi, request: Request) -> dict[str, Any]:
    limit = _limit(request, 200)
    after = request.query_params.get("cursor") or ""
    hosts = sorted(api.relay.hosts.values(), key=lambda h: (h.added_s, h.hostname))
    keys = [f"{h.added_s:012d}|{h.hostname}" for h in hosts]
    page = [(k, h) for k, h in zip(keys, hosts, strict=True) if k > after][:limit]
    counts = api.store.account_counts()
    out: dict[str, Any] = {"hosts": [_host_json(api, h.hostname, counts) for _, h in page]}
    if len(page) == limit:
        out["cursor"] = page[-1][0]
    return out


async def get_host_status(api: RelayApi, request: Request) -> dict[str, Any]:
    raw = _param(request, "hostname")
    try:
        name = hostname_of(host_url(raw))
    except PlazaError as exc:
        raise InvalidRequestError(exc.message) from exc
    if name not in api.relay.hosts:
        raise HostNotFoundError(f"this relay does not follow {name}")
    return _host_json(api, name, api.store.account_counts())


def _repo_json(acct: AccountState) -> dict[str, Any]:
    out: dict[str, Any] = {"did": acct.did, "head": acct.head, "rev": acct.rev}
    out["active"] = acct.active
    if not acct.active and acct.status is not None:
        out["status"] = acct.status
    return out


async def list_repos(api: RelayApi, request: Request) -> dict[str, Any]:
    limit = _limit(request, 500)
    after = request.query_params.get("cursor") or ""
    page = api.store.list_accounts(after, limit)
    out: dict[str, Any] = {"repos": [_repo_json(a) for a in page]}
    if len(page) == limit:
        out["cursor"] = page[-1].did
    return out


def _account(api: RelayApi, did: str) -> AccountState:
    acct = api.relay.accounts.get(did)
    if acct is None:
        raise RepoNotFoundError(f"this relay has seen no repository of {did}")
    return acct


async def get_repo_status(api: RelayApi, request: Request) -> dict[str, Any]:
    acct = _account(api, _did(request))
    out: dict[str, Any] = {"did": acct.did, "active": acct.active}
    if not acct.active and acct.status is not None:
        out["status"] = acct.status
    if acct.rev is not None:
        out["rev"] = acct.rev
    return out


async def get_latest_commit(api: RelayApi, request: Request) -> dict[str, Any]:
    acct = _account(api, _did(request))
    if not acct.active and acct.status != DESYNCHRONIZED:
        code = _INACTIVE_ERRORS.get(acct.status or "")
        if code is None:
            raise RepoNotFoundError(f"{acct.did} is {acct.status or 'not active'}")
        raise RepoInactiveError(f"{acct.did} is {acct.status}", code=code)
    if acct.head is None or acct.rev is None:
        raise RepoNotFoundError(f"this relay has verified no commit of {acct.did} yet")
    return {"cid": acct.head, "rev": acct.rev}


METHODS: Final[dict[str, tuple[str, Handler]]] = {
    "com.atproto.sync.requestCrawl": ("POST", request_crawl),
    "com.atproto.sync.listHosts": ("GET", list_hosts),
    "com.atproto.sync.getHostStatus": ("GET", get_host_status),
    "com.atproto.sync.listRepos": ("GET", list_repos),
    "com.atproto.sync.getRepoStatus": ("GET", get_repo_status),
    "com.atproto.sync.getLatestCommit": ("GET", get_latest_commit),
}


async def dispatch(api: RelayApi, request: Request) -> Response:
    """``/xrpc/{nsid}``: look the method up, check the verb, run it, render."""
    nsid = request.path_params["nsid"]
    try:
        entry = METHODS.get(nsid)
        if entry is None:
            return _json(
                {"error": "MethodNotImplemented", "message": "Method Not Implemented"}, 501
            )
        verb, handler = entry
        method = "GET" if request.method == "HEAD" else request.method
        if method != verb:
            raise InvalidRequestError(f"Incorrect HTTP method ({request.method}) expected {verb}")
        result = await handler(api, request)
    except RateLimitedError as err:
        response = error_response(err)
        response.headers["Retry-After"] = str(max(1, round(err.retry_after_s)))
        return response
    except PlazaError as err:
        return error_response(err)
    except Exception:
        log.exception("relay: XRPC %s failed", nsid)
        return _json({"error": "InternalServerError", "message": "Internal Server Error"}, 500)
    return Response(b"", status_code=200) if result is None else _json(result)
