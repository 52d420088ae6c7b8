"""Who an account is, as the app view needs it: its signing key, handle and host.

The app view asks the directory for a DID's audit log (``GET /{did}/log/audit``) and
re-validates it locally (:func:`plaza.atproto.plc.validate_audit_log`), so a directory
can withhold an update but never forge a key. Answers are cached per DID until
something says they changed: an ``#identity`` event or a signature that fails to
verify refreshes (a failure at most once per ``refresh_s`` per DID). Concurrent
lookups of one DID share one request. Only ``did:plc`` is resolved.
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
MAX_CACHED: Final = 100_000


class IdentityError(PlazaError):
    """A DID could not be resolved (unknown, tombstoned, unreachable directory, a log
    that does not verify)."""

    code = "DidResolutionFailed"
    status = 502


@dataclass(frozen=True)
class Identity:
    """A DID's current signing key, handle and host (each None when the document names
    none)."""

    did: str
    key: PublicKey | None
    handle: str | None
    pds: str | None
    fetched_at: float


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
    ) -> None:
        self.directory_url = directory_url.rstrip("/")
        self.http = http
        self.refresh_s = refresh_s
        self.clock = clock
        self.max_cached = max_cached
        self._cache: OrderedDict[str, Identity] = OrderedDict()
        self._pending: dict[str, asyncio.Future[Identity]] = {}

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
        pending = self._pending.get(did)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Identity] = asyncio.get_running_loop().create_future()
        self._pending[did] = future
        try:
            ident = await self._resolve(did)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: a lone caller must not leave it unobserved
            raise
        finally:
            del self._pending[did]
        future.set_result(ident)
        self._cache.pop(did, None)
        self._cache[did] = ident
        while len(self._cache) > self.max_cached:
            self._cache.popitem(last=False)
        return ident

    async def _resolve(self, did: str) -> Identity:
        if not is_did_plc(did):
            raise IdentityError(f"only did:plc is resolved: {did[:80]!r}")
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
        if status != 200:
            raise IdentityError(f"the directory answered HTTP {status} for {did}")
        try:
            state = validate_audit_log(did, _json(bytes(body)))
        except PlcError as exc:
            raise IdentityError(f"the audit log of {did} does not verify: {exc.message}") from exc
        data = state.data
        if data is None:
            raise IdentityError(f"{did} is tombstoned")
        key: PublicKey | None = None
        if data.signing_key is not None:
            try:
                key = parse_did_key(data.signing_key)
            except CryptoError:
                key = None
        return Identity(did, key, data.handle, data.pds_endpoint, self.clock())


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise IdentityError("the directory did not answer JSON") from exc
