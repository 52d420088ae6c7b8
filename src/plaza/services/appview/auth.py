"""Who is asking: the viewer named by a verified inter-service token.

A PDS forwards its account's ``app.bsky.*`` call with ``Authorization: Bearer <JWT>``
signed by the account's repository key, with ``iss`` the account's DID, ``aud`` this
app view's DID and ``lxm`` the method (:mod:`plaza.services.service_jwt`). The app view
resolves the issuer's current key from the directory
(:class:`~plaza.services.identities.Identities`; a signature that fails refreshes
it once, for a key rotated since it was cached) and refuses a token used twice. A call
without a token is anonymous (viewer None): public reads need no viewer; methods about
the viewer refuse it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from starlette.requests import Request

from plaza.services.errors import InvalidTokenError
from plaza.services.identities import Identities, IdentityError
from plaza.services.service_jwt import ReplayGuard, parse, verify_service_jwt


class ServiceAuth:
    """Checks inter-service tokens addressed to ``service_did``."""

    def __init__(
        self,
        service_did: str,
        identities: Identities,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.service_did = service_did
        self.identities = identities
        self.clock = clock
        self.replays = ReplayGuard()

    async def viewer(self, request: Request, nsid: str) -> str | None:
        """The DID of the verified caller, None without a token; raises
        :class:`InvalidTokenError` (or ``ExpiredToken``) for a token that does not verify."""
        header = request.headers.get("authorization")
        if header is None:
            return None
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise InvalidTokenError("Authorization must be a Bearer token")
        jwt = parse(token.strip())
        iss = jwt.payload.get("iss")
        if not isinstance(iss, str) or not iss.startswith("did:"):
            raise InvalidTokenError("service token has no issuer DID")
        did = iss.split("#", 1)[0]
        try:
            ident = await self.identities.get(did)
            if ident.key is None or not ident.key.verify(jwt.signing_input, jwt.signature):
                ident = await self.identities.refresh(did)
        except IdentityError as exc:
            raise InvalidTokenError(f"cannot resolve the token's issuer: {exc.message}") from exc
        if ident.key is None:
            raise InvalidTokenError(f"{did} has no signing key")
        now = self.clock()
        payload = verify_service_jwt(jwt, ident.key, aud=self.service_did, lxm=nsid, now=now)
        jti = payload.get("jti")
        if isinstance(jti, str):
            self.replays.use(did, jti, exp=float(payload["exp"]), now=now)
        return did
