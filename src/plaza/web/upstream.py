"""The web client's one way out: HTTP calls to public APIs.

Every call goes through :class:`Upstream`: XRPC queries and procedures to the member's
PDS (which forwards ``app.bsky.*`` reads to its app view), or to an app view directly
for anonymous reads, and JSON reads and writes to the DAO's and market's HTTP APIs. A
refusal becomes :class:`~plaza.web.errors.UpstreamError` carrying the service's error
name and message; a service that cannot be reached becomes one too, with status 502.

The client is shared by every request and keeps its connections open (at most
:data:`CONNECTIONS`, every one of which may stay open idle, each dropped after
:data:`KEEPALIVE_S`, before the services' own keep-alive timeout of 5 s can close it
under a request). The pool is small on purpose: httpx looks through every pooled
connection each time a request starts or ends, which a profile under 50 users showed
costing more CPU than rendering the pages when the pool held 200; a request past
:data:`CONNECTIONS` waits for one, and the services on the same cores could not
answer it sooner anyway. Public reads
(the DAO's and the market's JSON, and anonymous app view queries) go through a
:class:`~plaza.web.cache.PublicCache`; any write through this client clears it, so a
member sees their own vote on the next page.
"""

from __future__ import annotations

from typing import Any

import httpx

from plaza.web.cache import TTL_S, PublicCache
from plaza.web.errors import UpstreamError

TIMEOUT_S = 15.0
CONNECTIONS = 64
KEEPALIVE = 64
KEEPALIVE_S = 4.0


def _error(res: httpx.Response) -> UpstreamError:
    try:
        body = res.json()
    except ValueError:
        body = {}
    name = body.get("error") if isinstance(body, dict) else None
    message = body.get("message") if isinstance(body, dict) else None
    status = res.status_code if 400 <= res.status_code < 500 else 502
    return UpstreamError(
        str(message or name or f"HTTP {res.status_code}"),
        code=str(name or "UpstreamError"),
        status=status,
    )


class Upstream:
    """One pooled HTTP client for every service the web client reaches."""

    def __init__(
        self, http: httpx.AsyncClient | None = None, *, cache_ttl_s: float = TTL_S
    ) -> None:
        self.http = http or httpx.AsyncClient(
            timeout=TIMEOUT_S,
            limits=httpx.Limits(
                max_connections=CONNECTIONS,
                max_keepalive_connections=KEEPALIVE,
                keepalive_expiry=KEEPALIVE_S,
            ),
        )
        self.cache = PublicCache(cache_ttl_s)

    async def close(self) -> None:
        await self.http.aclose()

    async def _send(self, method: str, url: str, **kw: Any) -> Any:
        try:
            res = await self.http.request(method, url, **kw)
        except httpx.HTTPError as exc:
            raise UpstreamError(
                f"cannot reach {url.split('?', maxsplit=1)[0]}: {type(exc).__name__}"
            ) from exc
        if res.status_code >= 400:
            raise _error(res)
        if not res.content:
            return {}
        try:
            return res.json()
        except ValueError as exc:
            raise UpstreamError(
                f"{url.split('?', maxsplit=1)[0]} answered with something not JSON"
            ) from exc

    async def query(
        self, base: str, nsid: str, params: dict[str, Any] | None = None, token: str | None = None
    ) -> Any:
        """``GET base/xrpc/nsid``; ``token`` is the member's access token, if any."""
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        url = f"{base}/xrpc/{nsid}"
        if token:
            headers = {"authorization": f"Bearer {token}"}
            return await self._send("GET", url, params=clean, headers=headers)
        key = (url, tuple(sorted((k, str(v)) for k, v in clean.items())))
        return await self.cache.get(key, lambda: self._send("GET", url, params=clean))

    async def procedure(
        self,
        base: str,
        nsid: str,
        body: dict[str, Any] | None,
        token: str | None = None,
        *,
        proxy: str | None = None,
    ) -> Any:
        """``POST base/xrpc/nsid`` with a JSON body; ``proxy`` is the ``atproto-proxy``
        header (``did#service``: the PDS forwards the call to that service)."""
        headers = {"authorization": f"Bearer {token}"} if token else {}
        if proxy:
            headers["atproto-proxy"] = proxy
        self.cache.clear()
        return await self._send("POST", f"{base}/xrpc/{nsid}", json=body or {}, headers=headers)

    async def upload_blob(self, base: str, data: bytes, mime: str, token: str) -> Any:
        """``com.atproto.repo.uploadBlob``: the blob reference to put in a record."""
        headers = {"authorization": f"Bearer {token}", "content-type": mime}
        return await self._send(
            "POST", f"{base}/xrpc/com.atproto.repo.uploadBlob", content=data, headers=headers
        )

    async def get_json(
        self, url: str, params: dict[str, Any] | None = None, *, fresh: bool = False
    ) -> Any:
        """``GET url`` from the DAO's or the market's API (public: cached briefly, unless
        ``fresh``: the ledger's head before signing, a receipt's event)."""
        if fresh:
            return await self._send("GET", url, params=params)
        key = (url, tuple(sorted((k, str(v)) for k, v in (params or {}).items())))
        return await self.cache.get(key, lambda: self._send("GET", url, params=params))

    async def post_json(self, url: str, body: Any) -> Any:
        self.cache.clear()
        return await self._send("POST", url, json=body)
