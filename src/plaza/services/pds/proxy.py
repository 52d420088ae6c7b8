"""Forwarding an authenticated caller's XRPC call to another service, without letting a
caller aim this PDS at places it must not reach.

Theory of operation. A caller names the target with ``atproto-proxy: <did>#<service>``;
a ``did:plc`` is resolved through the directory, so the target's DID document — which
anyone can write — decides the URL. Left unchecked, that makes this PDS fetch loopback,
the private network or a cloud metadata address on the caller's behalf (server-side
request forgery). So every forwarded call goes through :func:`forward`, which:

1. decides how far the URL is trusted (:func:`destination`): the configured app view and
   the origins in ``proxy_allowed_origins`` are the operator's choice and are used as
   they are; any other URL must be ``https`` and reach only public unicast addresses,
   unless ``proxy_allow_private`` (a setting for local networks and tests) lifts both;
2. for an untrusted URL, resolves the host once, refuses it if any address is not
   public (:func:`is_public_address`), and connects to the address it checked — the
   name is sent as the ``Host`` header and the TLS server name, so a DNS answer that
   changes between the check and the connection (rebinding) changes nothing;
3. bounds the exchange: the request body by ``max_json_bytes``, the response by
   ``proxy_max_response_bytes`` (counted after decompression), the whole exchange by
   ``proxy_timeout_s``; redirects are not followed and no environment proxy is used.

Only the caller's own identity goes along: an inter-service token (``iss`` the caller,
``aud`` the target DID, ``lxm`` the method, one minute) signed with the caller's
repository key. Nothing else of the request's credentials is forwarded.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
from starlette.responses import Response

from plaza.asgi import read_body
from plaza.services.pds.errors import InvalidRequestError, UpstreamError
from plaza.services.pds.xrpc import body_too_large

if TYPE_CHECKING:
    from plaza.services.pds.settings import PdsSettings
    from plaza.services.pds.xrpc import XrpcCall

FORWARDED_REQUEST_HEADERS = ("accept-language", "content-type", "atproto-accept-labelers")
FORWARDED_RESPONSE_HEADERS = ("content-language", "atproto-content-labelers", "atproto-repo-rev")

_BODY_TOO_LARGE = body_too_large("proxied request body")

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class ProxyDestinationError(InvalidRequestError):
    """The proxy target's URL is not one this PDS will connect to (400)."""


@dataclass(frozen=True)
class Destination:
    """Where to send a forwarded call: the URL, and whether it is trusted as it is."""

    url: str
    trusted: bool


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def destination(url: str, settings: PdsSettings) -> Destination:
    """How far ``url`` (a service endpoint) may be used; :class:`ProxyDestinationError`
    when not at all (see the module docstring, step 1)."""
    try:
        parts = urlsplit(url)
        hostname, _ = parts.hostname, parts.port  # .port raises on a malformed port
    except ValueError as exc:
        raise ProxyDestinationError(f"proxy target has a malformed URL: {url!r}") from exc
    if parts.scheme not in ("http", "https") or not hostname:
        raise ProxyDestinationError(f"proxy target is not an http(s) URL: {url!r}")
    if parts.username is not None or parts.password is not None:
        raise ProxyDestinationError("proxy target URL must not carry credentials")
    origin = _origin(url)
    trusted = {_origin(o) for o in settings.proxy_allowed_origins}
    if settings.appview_url:
        trusted.add(_origin(settings.appview_url))
    if origin in trusted or settings.proxy_allow_private:
        return Destination(url, True)
    if parts.scheme != "https":
        raise ProxyDestinationError(f"proxy target must use https: {url!r}")
    return Destination(url, False)


def is_public_address(ip: IpAddress) -> bool:
    """True iff ``ip`` is a global unicast address: not loopback, private, link-local
    (cloud metadata lives at 169.254.169.254), shared (CGNAT), reserved, multicast or
    unspecified — judged on the IPv4 address inside a mapped or NAT64 IPv6 one."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        elif ip in _NAT64:
            ip = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.is_global and not ip.is_multicast


_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


async def _public_address(host: str, port: int) -> IpAddress:
    """The address to connect to for ``host``: every address it resolves to must be
    public, else :class:`ProxyDestinationError`."""
    try:
        literal: IpAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    else:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except OSError as exc:
            raise UpstreamError(f"cannot resolve proxy target {host}: {exc}") from exc
        addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    if not addresses:
        raise UpstreamError(f"proxy target {host} has no address")
    for ip in addresses:
        if not is_public_address(ip):
            raise ProxyDestinationError(
                f"proxy target {host} is not a public address ({ip}); refusing to connect"
            )
    return addresses[0]


class Forwarder:
    """Sends calls on (see the module docstring); one per PDS, closed with it.

    Trusted destinations share one pooled client. Untrusted ones use a client that keeps
    no idle connection: a connection is opened to the checked address and verified for
    one hostname, and must not carry a later request for another name at that address.
    """

    def __init__(self, settings: PdsSettings) -> None:
        self.settings = settings
        self._trusted = _client(keepalive=20)
        self._untrusted = _client(keepalive=0)

    async def aclose(self) -> None:
        await self._trusted.aclose()
        await self._untrusted.aclose()

    async def forward(
        self, call: XrpcCall[Any], dest: Destination, headers: dict[str, str]
    ) -> Response:
        """Send ``call`` on to ``dest`` with ``headers`` added, and relay the answer."""
        settings = self.settings
        request = call.request
        body = None
        if request.method == "POST":
            body = await read_body(request, settings.max_json_bytes, _BODY_TOO_LARGE)
        out = {"accept-encoding": "identity", **headers}
        for name in FORWARDED_REQUEST_HEADERS:
            value = request.headers.get(name)
            if value is not None:
                out[name] = value
        base = dest.url.rstrip("/")
        url = f"{base}/xrpc/{call.nsid}"
        extensions: dict[str, str] = {}
        client = self._trusted if dest.trusted else self._untrusted
        limit = settings.proxy_max_response_bytes
        try:
            async with asyncio.timeout(settings.proxy_timeout_s):
                if not dest.trusted:
                    parts = urlsplit(base)
                    assert parts.hostname is not None
                    port = parts.port or 443
                    ip = await _public_address(parts.hostname, port)
                    host = f"[{ip}]" if ip.version == 6 else str(ip)
                    url = f"https://{host}:{port}{parts.path}/xrpc/{call.nsid}"
                    out["host"] = parts.netloc
                    extensions["sni_hostname"] = parts.hostname
                req = client.build_request(
                    "GET" if request.method == "HEAD" else request.method,
                    url,
                    params=list(request.query_params.multi_items()),  # keeps uris=a&uris=b
                    content=body,
                    headers=out,
                    extensions=extensions,
                )
                resp = await client.send(req, stream=True)
                try:
                    chunks: list[bytes] = []
                    size = 0
                    async for chunk in resp.aiter_bytes():
                        size += len(chunk)
                        if size > limit:
                            raise UpstreamError(f"proxied response is larger than {limit} bytes")
                        chunks.append(chunk)
                finally:
                    await resp.aclose()
        except TimeoutError as exc:
            raise UpstreamError(
                f"proxy target did not answer within {settings.proxy_timeout_s:g} s"
            ) from exc
        except httpx.HTTPError as exc:
            raise UpstreamError(f"proxy target unreachable: {type(exc).__name__}") from exc
        reply = Response(
            b"".join(chunks),
            status_code=resp.status_code,
            media_type=resp.headers.get("content-type"),  # none for an empty output
        )
        for name in FORWARDED_RESPONSE_HEADERS:
            value = resp.headers.get(name)
            if value is not None:
                reply.headers[name] = value
        return reply


def _client(*, keepalive: int) -> httpx.AsyncClient:
    # No redirects (a 3xx is relayed, not followed to where it points) and no proxy
    # from the environment; the overall deadline is forward()'s.
    return httpx.AsyncClient(
        timeout=httpx.Timeout(60.0, connect=10.0),
        follow_redirects=False,
        trust_env=False,
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=keepalive),
    )


__all__ = [
    "Destination",
    "Forwarder",
    "ProxyDestinationError",
    "destination",
    "is_public_address",
]
