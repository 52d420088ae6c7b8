"""Calls the app view makes to services named by other people's records: DID documents,
feed generators, labelers.

A feed generator record names a service DID, and that DID's document — which anyone
can write — names the URL the app view then fetches. Left unchecked that makes the app
view fetch loopback, the private network or a cloud metadata address for whoever wrote
the record (server-side request forgery). So every such call goes through
:class:`Remote`, which follows the PDS's proxy rules
(:mod:`plaza.services.pds.proxy`):

1. the URL must be ``https`` and its host must resolve only to public unicast
   addresses; the connection goes to the address that was checked (the name travels
   as the ``Host`` header and the TLS server name), so DNS rebinding changes nothing.
   ``allow_private`` (a setting for local networks and tests) lifts both rules;
2. the exchange is bounded: the whole call by ``timeout_s``, the response body by
   ``max_bytes`` (counted after decompression); redirects are not followed and no
   proxy from the environment is used.

DID documents (:meth:`Remote.did_document`): a ``did:plc`` is read from the directory
as its audit log and validated locally (a directory can withhold an update but never
forge a key); a ``did:web`` from ``https://<host>/.well-known/did.json`` (``http`` for
a host with a port when ``allow_private``). Documents are cached for ``cache_s``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import unquote, urlsplit

import httpx

from plaza.atproto.crypto import PublicKey
from plaza.atproto.errors import CryptoError, PlcError
from plaza.atproto.plc import did_document, is_did_plc, validate_audit_log
from plaza.errors import PlazaError
from plaza.services.pds.proxy import is_public_address

MAX_DOC_BYTES: Final = 256 * 1024
MAX_CACHED: Final = 10_000


class RemoteError(PlazaError):
    """A remote service could not be used (unresolvable, refused, too slow, too large,
    not JSON, or an error answer)."""

    code = "UpstreamFailure"
    status = 502


@dataclass(frozen=True)
class DidDoc:
    """What the app view needs of a DID document: its keys and its services, by id
    without the leading ``#`` (``atproto``, ``atproto_label``, ``bsky_fg``, ...)."""

    did: str
    keys: Mapping[str, PublicKey]
    services: Mapping[str, str]


def parse_did_doc(did: str, doc: Any) -> DidDoc:
    """The keys and services of a W3C DID document for ``did``; :class:`RemoteError`
    when it is not one."""
    if not isinstance(doc, dict) or doc.get("id") != did:
        raise RemoteError(f"the DID document of {did} does not name it")
    keys: dict[str, PublicKey] = {}
    for method in doc.get("verificationMethod") or []:
        if not isinstance(method, dict):
            continue
        ident, multibase = method.get("id"), method.get("publicKeyMultibase")
        if not isinstance(ident, str) or not isinstance(multibase, str):
            continue
        try:
            keys[ident.rpartition("#")[2]] = PublicKey.from_multikey(multibase)
        except CryptoError:
            continue  # a key type the app view does not use
    services: dict[str, str] = {}
    for svc in doc.get("service") or []:
        if not isinstance(svc, dict):
            continue
        ident, endpoint = svc.get("id"), svc.get("serviceEndpoint")
        if isinstance(ident, str) and isinstance(endpoint, str):
            services[ident.rpartition("#")[2]] = endpoint
    return DidDoc(did, keys, services)


def web_did_url(did: str, *, allow_private: bool) -> str:
    """Where the document of a ``did:web`` lives (a host only; no path form)."""
    host = unquote(did.removeprefix("did:web:"))
    if not host or "/" in host or ":" in did.removeprefix("did:web:"):
        raise RemoteError(f"not a did:web of a host: {did[:100]!r}")
    scheme = "http" if allow_private and ":" in host else "https"
    return f"{scheme}://{host}/.well-known/did.json"


class Remote:
    """Bounded, SSRF-checked calls to other services (see the module docstring)."""

    def __init__(
        self,
        directory_url: str,
        *,
        allow_private: bool = False,
        timeout_s: float = 5.0,
        max_bytes: int = 1024 * 1024,
        cache_s: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.directory_url = directory_url.rstrip("/")
        self.allow_private = allow_private
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes
        self.cache_s = cache_s
        self.clock = clock
        self._docs: OrderedDict[str, tuple[float, DidDoc]] = OrderedDict()
        self.http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_s, connect=timeout_s),
            follow_redirects=False,
            trust_env=False,
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=0),
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    async def get_json(
        self,
        url: str,
        params: Sequence[tuple[str, str]] | None = None,
        headers: Mapping[str, str] | None = None,
        *,
        trusted: bool = False,
        max_bytes: int | None = None,
    ) -> Any:
        """GET ``url`` and decode its JSON answer (a non-200 answer is a
        :class:`RemoteError` carrying the remote's error name and message).
        ``trusted`` URLs (the operator's directory) skip the address checks."""
        limit = self.max_bytes if max_bytes is None else max_bytes
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise RemoteError(f"not an http(s) URL: {url[:200]!r}")
        if parts.username is not None or parts.password is not None:
            raise RemoteError("a remote URL must not carry credentials")
        out = {"accept-encoding": "identity", **(headers or {})}
        extensions: dict[str, str] = {}
        try:
            async with asyncio.timeout(self.timeout_s):
                if not (trusted or self.allow_private):
                    if parts.scheme != "https":
                        raise RemoteError(f"a remote service must use https: {url[:200]!r}")
                    port = parts.port or 443
                    ip = await _public_address(parts.hostname, port)
                    host = f"[{ip}]" if ip.version == 6 else str(ip)
                    out["host"] = parts.netloc
                    extensions["sni_hostname"] = parts.hostname
                    url = f"https://{host}:{port}{parts.path}"
                request = self.http.build_request(
                    "GET", url, params=list(params or ()), headers=out, extensions=extensions
                )
                response = await self.http.send(request, stream=True)
                try:
                    body = bytearray()
                    async for chunk in response.aiter_bytes():
                        body += chunk
                        if len(body) > limit:
                            raise RemoteError(f"the remote answer is larger than {limit} bytes")
                finally:
                    await response.aclose()
        except TimeoutError as exc:
            raise RemoteError(f"the remote did not answer within {self.timeout_s:g} s") from exc
        except httpx.HTTPError as exc:
            raise RemoteError(f"remote unreachable: {type(exc).__name__}") from exc
        try:
            value = json.loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise RemoteError("the remote did not answer JSON") from exc
        if response.status_code != 200:
            err = value if isinstance(value, dict) else {}
            name, message = err.get("error"), err.get("message")
            raise RemoteError(
                f"the remote answered HTTP {response.status_code}"
                + (f" {str(name)[:80]}" if name else "")
                + (f": {str(message)[:200]}" if message else "")
            )
        return value

    async def did_document(self, did: str, *, fresh: bool = False) -> DidDoc:
        """The keys and services of ``did`` (cached; ``fresh`` skips the cache)."""
        hit = self._docs.get(did)
        if hit is not None and not fresh and self.clock() - hit[0] < self.cache_s:
            return hit[1]
        if is_did_plc(did):
            log = await self.get_json(
                f"{self.directory_url}/{did}/log/audit", trusted=True, max_bytes=4 << 20
            )
            try:
                state = validate_audit_log(did, log)
                if state.data is None:
                    raise RemoteError(f"{did} is tombstoned")
                raw = did_document(did, state.data)
            except PlcError as exc:
                raise RemoteError(f"the audit log of {did} does not verify: {exc}") from exc
        elif did.startswith("did:web:"):
            url = web_did_url(did, allow_private=self.allow_private)
            raw = await self.get_json(url, max_bytes=MAX_DOC_BYTES)
        else:
            raise RemoteError(f"unsupported DID method: {did[:80]!r}")
        doc = parse_did_doc(did, raw)
        self._docs.pop(did, None)
        self._docs[did] = (self.clock(), doc)
        while len(self._docs) > MAX_CACHED:
            self._docs.popitem(last=False)
        return doc


async def _public_address(host: str, port: int) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """The checked address to connect to: every address of ``host`` must be public."""
    try:
        addresses = [ipaddress.ip_address(host)]  # a literal address
    except ValueError:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except OSError as exc:
            raise RemoteError(f"cannot resolve {host}: {exc}") from exc
        addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    if not addresses:
        raise RemoteError(f"{host} has no address")
    for ip in addresses:
        if not is_public_address(ip):
            raise RemoteError(f"{host} is not a public address ({ip}); refusing to connect")
    return addresses[0]
