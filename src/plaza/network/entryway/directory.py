"""What the entryway asks the DID directory: who holds a handle, and where a DID's
account is hosted now. Blocking HTTP; callers run it off their event loop."""

from __future__ import annotations

from typing import Any

import httpx

from plaza.network.entryway.errors import UpstreamError


class Directory:
    """A client of the directory at ``url`` (its PLC API and ``resolveHandle``)."""

    def __init__(self, url: str, http: httpx.Client) -> None:
        self.url = url.rstrip("/")
        self.http = http

    def _get(self, path: str, **params: Any) -> httpx.Response:
        try:
            return self.http.get(f"{self.url}{path}", params=params)
        except httpx.HTTPError as exc:
            raise UpstreamError(f"the directory does not answer: {exc}") from exc

    def did_of(self, handle: str) -> str | None:
        """The DID holding ``handle``, or None."""
        resp = self._get("/xrpc/com.atproto.identity.resolveHandle", handle=handle)
        if resp.status_code == 200:
            return str(resp.json()["did"])
        if resp.status_code in (400, 404):
            return None
        raise UpstreamError(f"the directory failed to resolve a handle ({resp.status_code})")

    def host_of(self, did: str) -> str:
        """The PDS the DID document names now."""
        resp = self._get(f"/{did}/data")
        if resp.status_code != 200:
            raise UpstreamError(f"the directory has no live document for {did}")
        data = resp.json()
        endpoint = data.get("services", {}).get("atproto_pds", {}).get("endpoint")
        if not isinstance(endpoint, str) or not endpoint:
            raise UpstreamError(f"the DID document of {did} names no host")
        return endpoint.rstrip("/")
