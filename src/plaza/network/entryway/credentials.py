"""``social.plaza.entryway.getHostCredential``: the escrowed host password of an
account, for the DAO's agent only — it gives it to the new host when it moves or
restores the account, so the member's login through the entryway keeps working.

The caller proves it is the agent with an inter-service token
(:mod:`plaza.services.service_jwt`) signed by the agent's key: ``iss`` the agent's DID,
``aud`` the entryway's DID, ``lxm`` this method, a fresh ``jti`` (each token is
accepted once). Anyone else is refused; nothing else about an account is disclosed.
"""

from __future__ import annotations

from typing import Any, Final

from plaza.atproto.crypto import PublicKey
from plaza.errors import PlazaError
from plaza.network.entryway.errors import (
    AccountNotFoundError,
    AuthRequiredError,
    ForbiddenError,
)
from plaza.network.entryway.escrow import Escrow
from plaza.network.entryway.store import AccountStore
from plaza.services.service_jwt import ReplayGuard, parse, verify_service_jwt

NSID: Final = "social.plaza.entryway.getHostCredential"


class HostCredentials:
    """Answers the agent (see the module docstring)."""

    def __init__(
        self,
        store: AccountStore,
        escrow: Escrow,
        *,
        service_did: str,
        agent_did: str,
        agent_key: PublicKey,
    ) -> None:
        self.store = store
        self.escrow = escrow
        self.service_did = service_did
        self.agent_did = agent_did
        self.agent_key = agent_key
        self.replays = ReplayGuard()

    def get(self, authorization: str, did: str, now: float) -> dict[str, Any]:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise AuthRequiredError("a service token from the DAO's agent is required")
        try:
            jwt = parse(token.strip())
            if jwt.payload.get("iss") != self.agent_did:
                raise ForbiddenError("only the DAO's agent may read host credentials")
            claims = verify_service_jwt(
                jwt, self.agent_key, aud=self.service_did, lxm=NSID, now=now
            )
            jti = claims.get("jti")
            if not isinstance(jti, str) or not jti:
                raise AuthRequiredError("service token has no jti")
            self.replays.use(self.agent_did, jti, exp=claims["exp"], now=now)
        except (ForbiddenError, AuthRequiredError):
            raise
        except PlazaError as exc:
            raise AuthRequiredError(f"service token refused: {exc.message}") from exc
        account = self.store.get(did)
        if account is None:
            raise AccountNotFoundError(f"the entryway made no account {did}")
        return {"did": did, "password": self.escrow.unseal(did, account.host_password)}
