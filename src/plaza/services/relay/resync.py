"""Fetching an account's whole repository from its host, to resynchronize it.

When the relay loses an account's thread (a ``#commit`` whose ``prevData`` is not the
root the relay last verified), it asks the account's host for the whole repository
(``com.atproto.sync.getRepo``) and verifies all of it
(:func:`plaza.atproto.repo_verify.import_car`: every block, the signature against the
account's key, every MST node and record, the root rebuilt from the keys). The CPU work
runs in a thread so the event loop keeps serving. :class:`Backoff` spaces the attempts
for one account: doubling from a first pause up to a longest one.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Final

import httpx

from plaza.atproto.car import MAX_CAR_BYTES
from plaza.atproto.crypto import PublicKey
from plaza.atproto.errors import AtprotoError
from plaza.atproto.repo_verify import VerifiedRepo, import_car
from plaza.errors import PlazaError

TIMEOUT_S: Final = 60.0


class ResyncError(PlazaError):
    """The host's repository could not be fetched or does not verify."""

    code = "ResyncFailed"
    status = 502


async def fetch_repo(
    http: httpx.AsyncClient,
    host_url: str,
    did: str,
    key: PublicKey,
    *,
    max_bytes: int = MAX_CAR_BYTES,
) -> VerifiedRepo:
    """``did``'s repository from ``host_url``, fully verified against ``key``."""
    url = f"{host_url}/xrpc/com.atproto.sync.getRepo"
    try:
        async with http.stream("GET", url, params={"did": did}, timeout=TIMEOUT_S) as response:
            if response.status_code != 200:
                raise ResyncError(f"{url} answered HTTP {response.status_code} for {did}")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > max_bytes:
                    raise ResyncError(f"{did}'s repository is larger than {max_bytes} bytes")
    except httpx.HTTPError as exc:
        raise ResyncError(f"could not fetch {did}'s repository from {url}: {exc}") from exc
    try:
        return await asyncio.to_thread(import_car, bytes(body), did=did, key=key)
    except AtprotoError as exc:
        raise ResyncError(
            f"{did}'s repository from {host_url} does not verify: {exc.message}"
        ) from exc


@dataclass
class Backoff:
    """Doubling pauses from ``first_s`` up to ``longest_s``."""

    first_s: float
    longest_s: float
    _next: float = 0.0

    def next(self) -> float:
        pause = self._next or self.first_s
        self._next = min(pause * 2, self.longest_s)
        return pause

    def reset(self) -> None:
        self._next = 0.0
