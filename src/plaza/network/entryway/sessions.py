"""Sessions at the entryway: the member's password is checked here, and the session is
the host's.

Theory of operation. The entryway is the account authority: it keeps each account's
scrypt hash and, in escrow, the random password its host knows. ``createSession``
finds the account by handle, email or DID (a handle the entryway does not know is
resolved in the directory: the member may have changed it at their host), checks the
password, asks the directory which host the DID names *now*, and logs in there with
the escrowed password; the answer is the host's session with its DID document, so a
client (the atproto SDK, @atproto/api) continues at that host. After the agents move or
restore the account, the same handle and password land on the new host.
``refreshSession`` and ``getSession`` carry the host's token to the host the token's
subject names now. A wrong identifier and a wrong password fail alike (the app limits
attempts per client address before they reach here).
"""

from __future__ import annotations

from typing import Any

import httpx

from plaza.atproto import syntax
from plaza.atproto.errors import AtprotoError
from plaza.errors import PlazaError
from plaza.network.entryway.directory import Directory
from plaza.network.entryway.errors import AuthRequiredError, InvalidRequestError, UpstreamError
from plaza.network.entryway.escrow import Escrow
from plaza.network.entryway.passwords import verify_password
from plaza.network.entryway.store import AccountRow, AccountStore
from plaza.services.service_jwt import parse

_WRONG = "Invalid identifier or password"


class Sessions:
    """Logs members in at their current host (see the module docstring). Blocking."""

    def __init__(
        self,
        store: AccountStore,
        escrow: Escrow,
        directory: Directory,
        http: httpx.Client,
    ) -> None:
        self.store = store
        self.escrow = escrow
        self.directory = directory
        self.http = http

    def find(self, identifier: str) -> AccountRow | None:
        """The account ``identifier`` (a DID, an email address or a handle) names."""
        ident = identifier.strip().lower()
        if ident.startswith("did:"):
            return self.store.get(identifier.strip())
        if "@" in ident:
            return self.store.by_email(ident)
        try:
            handle = syntax.normalize_handle(ident)
        except AtprotoError:
            return None
        found = self.store.by_handle(handle)
        if found is not None:
            return found
        did = self.directory.did_of(handle)
        return None if did is None else self.store.get(did)

    def create(self, identifier: str, password: str, client: str = "") -> dict[str, Any]:
        """The host's session for the account, after the member's password checks out
        (``client``: the member's address, passed on to the host)."""
        account = self.find(identifier)
        if account is None or not verify_password(account.password_hash, password):
            raise AuthRequiredError(_WRONG)
        host = self.directory.host_of(account.did)
        body = {
            "identifier": account.did,
            "password": self.escrow.unseal(account.did, account.host_password),
        }
        # The member's address, for a host that trusts the entryway as its proxy (its
        # login limits then count members, not the entryway); ignored by any other host.
        forwarded = {"x-forwarded-for": client} if client else {}
        resp = self._call(
            "POST", host, "com.atproto.server.createSession", json=body, headers=forwarded
        )
        if resp.status_code == 401:
            raise UpstreamError(
                f"the host {host} refused the account's credential (was it moved without "
                "the entryway?)"
            )
        return self._answer(host, resp)

    def forward(self, method: str, nsid: str, authorization: str) -> dict[str, Any]:
        """``refreshSession`` (POST) or ``getSession`` (GET) at the host the token's
        subject names now, with the token as it came."""
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise AuthRequiredError("Authentication Required")
        try:
            sub = parse(token.strip()).payload.get("sub")
        except PlazaError as exc:
            raise AuthRequiredError(f"Token could not be read: {exc.message}") from exc
        if not isinstance(sub, str) or not sub.startswith("did:"):
            raise AuthRequiredError("Token names no account")
        host = self.directory.host_of(sub)
        resp = self._call(method, host, nsid, headers={"authorization": f"Bearer {token}"})
        return self._answer(host, resp)

    def _call(self, method: str, host: str, nsid: str, **kwargs: Any) -> httpx.Response:
        try:
            return self.http.request(method, f"{host}/xrpc/{nsid}", **kwargs)
        except httpx.HTTPError as exc:
            raise UpstreamError(f"the host {host} does not answer: {exc}") from exc

    @staticmethod
    def _answer(host: str, resp: httpx.Response) -> dict[str, Any]:
        """The host's JSON answer, or its XRPC error as the entryway's."""
        try:
            body = resp.json()
        except ValueError:
            body = None
        if resp.status_code == 200 and isinstance(body, dict):
            return body
        if isinstance(body, dict) and isinstance(body.get("error"), str) and resp.status_code < 500:
            raise PlazaError(
                str(body.get("message") or body["error"]),
                code=body["error"],
                status=resp.status_code,
            )
        raise UpstreamError(f"the host {host} failed ({resp.status_code})")


def require_str(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise InvalidRequestError(f"{name} is required")
    return value
