"""Who an account is, as the services that read firehoses need it: its current signing
key, handle and host.

The relay and the app view ask the directory for a DID's audit log (``GET /{did}/log/audit``) and
re-validates it locally (:func:`plaza.atproto.plc.validate_audit_log`: hashes,
signatures, the recovery rule), so a directory can withhold or delay an update but
never forge a key. The answer is cached per DID until something says it changed: an
``#identity`` event always refreshes it; a suspicion (a commit whose signature fails, an
event from a host the document does not name) refreshes it at most once per
``refresh_s`` per DID, so a hostile host cannot make a service hammer the directory.
Concurrent lookups of one DID share one request. A DID that could not be resolved is
because of what the directory answered (unknown, tombstoned, a log that does not
verify) is not asked for again for ``refresh_s`` (the same failure is raised), so a host naming
made-up DIDs costs the directory one request each per period at most. Only ``did:plc``
is resolved.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import httpx

from plaza.atproto.crypto import PublicKey, parse_did_key
from plaza.atproto.errors import CryptoError, PlcError
from plaza.atproto.plc import is_did_plc, validate_audit_log
from plaza.errors import PlazaError

MAX_RESPONSE_BYTES: Final = 4 * 1024 * 1024
MAX_CACHED: Final = 200_000


class IdentityError(PlazaError):
    """A DID could not be resolved (unknown, tombstoned, unreachable directory, a log
    that does not verify)."""

    code = "DidResolutionFailed"
    status = 502


class UnknownDidError(IdentityError):
    """The directory answered, and the answer resolves to no usable identity."""


@dataclass(frozen=True)
class Identity:
    """A DID's current signing key, handle and host: ``pds`` the ``#atproto_pds``
    endpoint as the document names it, ``host`` that endpoint as the resolver's
    ``host_of`` files it (each None when the document names none, or none usable)."""

    did: str
    key: PublicKey | None
    handle: str | None
    pds: str | None
    host: str | None
    fetched_at: float


def _same(endpoint: str) -> str | None:
    return endpoint


class Identities:
    """A cached, verified view of the directory (see the module docstring)."""

    def __init__(
        self,
        directory_url: str,
        http: httpx.AsyncClient,
        *,
        refresh_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        max_cached: int = MAX_CACHED,
        host_of: Callable[[str], str | None] = _same,
    ) -> None:
        """``host_of`` turns a document's PDS endpoint into the caller's name for that
        host (None: unusable); by default the endpoint as written."""
        self.directory_url = directory_url.rstrip("/")
        self.host_of = host_of
        self.http = http
        self.refresh_s = refresh_s
        self.clock = clock
        self.max_cached = max_cached
        self._cache: OrderedDict[str, Identity] = OrderedDict()
        self._pending: dict[str, asyncio.Future[Identity]] = {}
        self._failed: OrderedDict[str, tuple[float, str]] = OrderedDict()
        self.lookups = 0

    def cached(self, did: str) -> Identity | None:
        return self._cache.get(did)

    async def get(self, did: str) -> Identity:
        """The cached identity, or a fresh one (raises :class:`IdentityError`)."""
        hit = self._cache.get(did)
        if hit is not None:
            return hit
        return await self._fetch(did)

    async def refresh(self, did: str, *, force: bool = False) -> Identity:
        """A fresh identity; without ``force`` only when the cached one is older than
        ``refresh_s`` (else the cached one)."""
        hit = self._cache.get(did)
        if hit is not None and not force and self.clock() - hit.fetched_at < self.refresh_s:
            return hit
        return await self._fetch(did)

    async def _fetch(self, did: str) -> Identity:
        failed = self._failed.get(did)
        if failed is not None and self.clock() - failed[0] < self.refresh_s:
            raise UnknownDidError(failed[1])
        pending = self._pending.get(did)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Identity] = asyncio.get_running_loop().create_future()
        self._pending[did] = future
        try:
            ident = await self._resolve(did)
        except UnknownDidError as exc:
            self._failed.pop(did, None)
            self._failed[did] = (self.clock(), exc.message)
            while len(self._failed) > self.max_cached:
                self._failed.popitem(last=False)
            future.set_exception(exc)
            future.exception()
            raise
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: a lone caller must not leave it unobserved
            raise
        finally:
            del self._pending[did]
        future.set_result(ident)
        self._failed.pop(did, None)
        self._cache.pop(did, None)
        self._cache[did] = ident
        while len(self._cache) > self.max_cached:
            self._cache.popitem(last=False)
        return ident

    async def _resolve(self, did: str) -> Identity:
        if not is_did_plc(did):
            raise UnknownDidError(f"only did:plc is resolved: {did[:80]!r}")
        self.lookups += 1
        url = f"{self.directory_url}/{did}/log/audit"
        try:
            async with self.http.stream("GET", url) as response:
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_RESPONSE_BYTES:
                        raise IdentityError(f"the directory's log of {did} is too large")
                status = response.status_code
        except httpx.HTTPError as exc:
            raise IdentityError(f"directory unreachable: {exc}") from exc
        if status in (404, 410):
            raise UnknownDidError(f"the directory does not know {did} (HTTP {status})")
        if status != 200:
            raise IdentityError(f"the directory answered HTTP {status} for {did}")
        try:
            state = validate_audit_log(did, _json(bytes(body)))
        except PlcError as exc:
            raise UnknownDidError(f"the audit log of {did} does not verify: {exc.message}") from exc
        data = state.data
        if data is None:
            raise UnknownDidError(f"{did} is tombstoned")
        key: PublicKey | None = None
        if data.signing_key is not None:
            try:
                key = parse_did_key(data.signing_key)
            except CryptoError:
                key = None
        pds = data.pds_endpoint
        host = None if pds is None else self.host_of(pds)
        return Identity(did, key, data.handle, pds, host, self.clock())


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise IdentityError("the directory did not answer JSON") from exc
