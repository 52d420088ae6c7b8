"""The agent's side of the entryway's escrow: an account's host password, so that a
moved or restored account keeps the password its member logs in with through the
entryway (``social.plaza.entryway.getHostCredential``).

Each request carries a fresh inter-service token signed by the agent's key (``iss`` the
agent's DID, ``aud`` the entryway's DID from its ``describeServer``, a one-minute life).
An account the entryway did not make answers None: the agents then give the new host a
random password, as without an entryway.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Final

import httpx

from plaza.agents.hosting import HostingError
from plaza.ledger.keystore import Signer
from plaza.services.pds.migration import error_detail
from plaza.services.service_jwt import mint_service_jwt

NSID: Final = "social.plaza.entryway.getHostCredential"
_TTL_S: Final = 60


class EntrywayCredentials:
    """``credentials(did) -> password | None`` against the entryway at ``url``."""

    def __init__(
        self,
        url: str,
        signer: Signer,
        http: httpx.Client | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.url = url.rstrip("/")
        self.signer = signer
        self.http = http or httpx.Client(timeout=httpx.Timeout(30.0))
        self.clock = clock
        self._aud: str | None = None

    def _service_did(self) -> str:
        if self._aud is None:
            try:
                resp = self.http.get(f"{self.url}/xrpc/com.atproto.server.describeServer")
            except httpx.HTTPError as exc:
                raise HostingError(f"the entryway {self.url} does not answer: {exc}") from exc
            if resp.status_code != 200:
                raise HostingError(f"the entryway's describeServer failed ({resp.status_code})")
            self._aud = str(resp.json()["did"])
        return self._aud

    def __call__(self, did: str) -> str | None:
        now = int(self.clock())
        token = mint_service_jwt(
            self.signer.key,
            iss=self.signer.did,
            aud=self._service_did(),
            lxm=NSID,
            now=now,
            exp=now + _TTL_S,
            jti=secrets.token_hex(12),
        )
        try:
            resp = self.http.post(
                f"{self.url}/xrpc/{NSID}",
                json={"did": did},
                headers={"authorization": f"Bearer {token}"},
            )
        except httpx.HTTPError as exc:
            raise HostingError(f"the entryway {self.url} does not answer: {exc}") from exc
        if resp.status_code == 404:
            return None
        if resp.status_code != 200:
            raise HostingError(
                f"the entryway refused the host credential of {did} ({resp.status_code}) "
                f"{error_detail(resp)}"
            )
        return str(resp.json()["password"])
