"""The PDS's view of identities: a client of the PLC directory, with a small cache.

The PDS registers new DIDs, submits operations for the accounts it hosts, and resolves
DIDs to check inter-service tokens and account migrations. Everything goes over the
directory's HTTP API (``POST /{did}``, ``GET /{did}``, ``/{did}/data``, ``/{did}/log``,
``/{did}/log/last``), and so does asking the network's handle authority, the directory,
which DID holds a handle (``/xrpc/com.atproto.identity.resolveHandle``; never cached:
the answer decides whether a handle is free). Resolved state is cached for a minute
(at most ``max_entries`` DIDs); when this PDS submits an operation the directory
accepted, that operation's state replaces the cached one. Only a well-formed
``did:plc`` goes into a URL.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from plaza.atproto import syntax
from plaza.atproto.crypto import PublicKey, parse_did_key
from plaza.atproto.errors import AtprotoError, CryptoError
from plaza.atproto.plc import (
    ATPROTO_KEY,
    Operation,
    PlcData,
    PlcTombstone,
    Service,
    did_document,
    normalize,
    op_data,
    parse_operation,
)
from plaza.services.pds.errors import HandleNotAvailableError, InvalidRequestError, UpstreamError

CACHE_TTL_S = 60.0
MAX_ENTRIES = 10_000


def data_from_json(did: str, value: Any) -> PlcData:
    """Parse the directory's ``/{did}/data`` answer."""
    if not isinstance(value, dict):
        raise UpstreamError("directory returned malformed DID data")
    try:
        services = {
            name: Service(str(svc["type"]), str(svc["endpoint"]))
            for name, svc in dict(value.get("services") or {}).items()
        }
        return PlcData(
            did=did,
            rotation_keys=tuple(str(k) for k in value.get("rotationKeys") or ()),
            verification_methods={
                str(k): str(v) for k, v in dict(value.get("verificationMethods") or {}).items()
            },
            also_known_as=tuple(str(a) for a in value.get("alsoKnownAs") or ()),
            services=services,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise UpstreamError(f"directory returned malformed DID data: {exc}") from exc


class DirectoryClient:
    """Async client of one PLC directory."""

    def __init__(
        self, base_url: str, http: httpx.AsyncClient, *, max_entries: int = MAX_ENTRIES
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = http
        self.max_entries = max_entries
        self._cache: dict[str, tuple[float, PlcData]] = {}
        self._docs: dict[str, tuple[float, dict[str, Any]]] = {}

    def _remember(self, cache: dict[str, Any], did: str, value: Any) -> None:
        # Callers can name any registered DID: forget the oldest past the bound.
        cache.pop(did, None)
        while len(cache) >= self.max_entries:
            del cache[next(iter(cache))]
        cache[did] = value

    async def _get(self, path: str) -> httpx.Response:
        try:
            return await self.http.get(self.base_url + path)
        except httpx.HTTPError as exc:
            raise UpstreamError(f"directory unreachable: {exc}") from exc

    @staticmethod
    def _checked(did: str) -> str:
        """``did`` if it is a well-formed ``did:plc`` (it goes into the directory's URL
        paths: nothing but the 24 base32 characters may follow ``did:plc:``)."""
        try:
            return syntax.validate_did_plc(did)
        except AtprotoError as exc:
            raise InvalidRequestError(
                f"only well-formed did:plc identities are supported here: {exc.message}"
            ) from exc

    def forget(self, did: str) -> None:
        self._cache.pop(did, None)
        self._docs.pop(did, None)

    async def data(self, did: str, *, refresh: bool = False) -> PlcData:
        """The DID's current state; :class:`InvalidRequestError` if it is not registered."""
        hit = self._cache.get(did)
        if hit is not None and not refresh and time.monotonic() - hit[0] < CACHE_TTL_S:
            return hit[1]
        resp = await self._get(f"/{self._checked(did)}/data")
        if resp.status_code in (404, 410):
            raise InvalidRequestError(f"DID is not registered or is tombstoned: {did}")
        if resp.status_code != 200:
            raise UpstreamError(f"directory answered {resp.status_code} for {did}")
        data = data_from_json(did, resp.json())
        self._remember(self._cache, did, (time.monotonic(), data))
        return data

    async def document(self, did: str) -> dict[str, Any] | None:
        """The W3C DID document, or ``None`` if the directory has none."""
        hit = self._docs.get(did)
        if hit is not None and time.monotonic() - hit[0] < CACHE_TTL_S:
            return hit[1]
        resp = await self._get(f"/{self._checked(did)}")
        if resp.status_code != 200:
            return None
        doc = resp.json()
        if not isinstance(doc, dict):
            return None
        self._remember(self._docs, did, (time.monotonic(), doc))
        return doc

    async def last_operation(self, did: str) -> Operation:
        resp = await self._get(f"/{self._checked(did)}/log/last")
        if resp.status_code != 200:
            raise InvalidRequestError(f"no operation log for {did}")
        return parse_operation(resp.json())

    async def past_signing_keys(self, did: str) -> list[str]:
        """Every ``#atproto`` key the DID's active operation log has named, newest
        first (``/{did}/log``; never cached: it is asked once per import)."""
        resp = await self._get(f"/{self._checked(did)}/log")
        if resp.status_code != 200:
            raise InvalidRequestError(f"no operation log for {did}")
        body = resp.json()
        if not isinstance(body, list):
            raise UpstreamError("directory returned a malformed operation log")
        keys: list[str] = []
        for value in reversed(body):
            try:
                op = parse_operation(value)
            except AtprotoError as exc:
                raise UpstreamError(f"directory returned a malformed operation: {exc}") from exc
            if isinstance(op, PlcTombstone):
                continue
            key = normalize(op).verification_methods.get(ATPROTO_KEY)
            if key is not None and key not in keys:
                keys.append(key)
        return keys

    async def handle_holder(self, handle: str) -> str | None:
        """The DID the directory says holds ``handle`` (one of the network's handle
        domains), or ``None`` when no live DID claims it."""
        try:
            resp = await self.http.get(
                self.base_url + "/xrpc/com.atproto.identity.resolveHandle",
                params={"handle": handle},
            )
        except httpx.HTTPError as exc:
            raise UpstreamError(f"directory unreachable: {exc}") from exc
        body = _json_or_none(resp)
        if resp.status_code == 400 and body is not None and body.get("error") == "HandleNotFound":
            return None
        did = None if body is None else body.get("did")
        if resp.status_code != 200 or not isinstance(did, str):
            raise UpstreamError(f"the directory could not resolve {handle} ({resp.status_code})")
        return did

    async def submit(self, did: str, op: Operation) -> None:
        """POST a signed operation; the directory's refusal becomes ``InvalidRequest``
        (``HandleNotAvailable`` when the operation claims a handle another DID holds)."""
        self.forget(did)
        try:
            resp = await self.http.post(f"{self.base_url}/{self._checked(did)}", json=op.to_json())
        except httpx.HTTPError as exc:
            raise UpstreamError(f"directory unreachable: {exc}") from exc
        if resp.status_code >= 500:
            raise UpstreamError(f"directory failed ({resp.status_code}): {resp.text[:200]}")
        if resp.status_code >= 400:
            body = _json_or_none(resp)
            message = str((body or {}).get("message") or resp.text)
            if body is not None and body.get("error") == "HandleNotAvailable":
                raise HandleNotAvailableError(f"Handle already taken: {message}"[:500])
            raise InvalidRequestError(f"directory refused the operation: {message}"[:500])
        # The accepted operation is the DID's new state: remember it rather than ask.
        data = op_data(did, op)
        if data is not None:
            now = time.monotonic()
            self._remember(self._cache, did, (now, data))
            self._remember(self._docs, did, (now, did_document(did, data)))

    async def signing_key(self, did: str, *, refresh: bool = False) -> PublicKey:
        """The DID's ``#atproto`` key."""
        data = await self.data(did, refresh=refresh)
        key = data.signing_key
        if key is None:
            raise InvalidRequestError(f"{did} has no #atproto signing key")
        try:
            return parse_did_key(key)
        except CryptoError as exc:
            raise InvalidRequestError(f"{did} has an unusable signing key") from exc


def _json_or_none(resp: httpx.Response) -> dict[str, Any] | None:
    try:
        body = resp.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None
