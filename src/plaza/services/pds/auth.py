"""Who is calling: session tokens, app passwords, admin and inter-service credentials.

Sessions are a pair of HS256 JWTs. The access token (``typ: at+jwt``, two hours) carries
the DID in ``sub`` and a scope that says whether it came from the account password
(``com.atproto.access``) or an app password (``com.atproto.appPass`` or
``com.atproto.appPassPrivileged``); it is checked with one HMAC and no database read,
and a token once verified is remembered (bounded) until its ``exp``.
The refresh token (``typ: refresh+jwt``, 90 days) carries a ``jti`` kept in the store, so
``deleteSession`` and ``refreshSession`` (which rotates it) can revoke it.

Passwords and app passwords are hashed with argon2id (OWASP's minimum profile: 19 MiB,
two passes), always in a worker thread so the event loop never stalls on the KDF.

The admin authenticates with HTTP Basic ``admin:<password>``. Other services
authenticate with inter-service JWTs signed by an account's repository key; the only
method here that accepts one is ``createAccount`` (account migration). Such a token must
name this method (``lxm``), live at most an hour and carry a ``jti`` nonce, and is
accepted once: its nonce is remembered in memory until it expires (a restart forgets,
which a token of at most an hour makes a small window).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from starlette.requests import Request

from plaza.services.pds import jwt
from plaza.services.pds.errors import (
    AccountTakedownError,
    AuthRequiredError,
    ForbiddenError,
    InvalidTokenError,
)
from plaza.services.pds.throttle import ADMIN, PasswordThrottle

if TYPE_CHECKING:
    from plaza.services.pds.account import AccountCache
    from plaza.services.pds.identity import DirectoryClient
    from plaza.services.pds.settings import PdsSettings
    from plaza.services.pds.store import PdsStore

SCOPE_ACCESS = "com.atproto.access"
SCOPE_APP_PRIVILEGED = "com.atproto.appPassPrivileged"
SCOPE_APP = "com.atproto.appPass"
SCOPE_REFRESH = "com.atproto.refresh"
ACCESS_TYP = "at+jwt"
REFRESH_TYP = "refresh+jwt"

VERIFIED_CACHE = 10_000


class Auth(Enum):
    """What a method requires of the caller."""

    NONE = "none"  # public; any Authorization header is ignored
    OPTIONAL = "optional"  # an access token if present
    ACCESS = "access"  # any access token, app passwords included
    PRIVILEGED = "privileged"  # full session or privileged app password
    FULL = "full"  # full session only (no app password)
    REFRESH = "refresh"  # a refresh token
    ADMIN = "admin"  # HTTP Basic admin:<password>
    SERVICE = "service"  # optional inter-service token (createAccount by migration)


_HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


async def hash_password(password: str) -> str:
    """An argon2id hash of ``password``, computed off the event loop."""
    return await asyncio.to_thread(_HASHER.hash, password)


async def verify_password(password_hash: str, password: str) -> bool:
    """True iff ``password`` matches; computed off the event loop."""

    def check() -> bool:
        try:
            return bool(_HASHER.verify(password_hash, password))
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(check)


def new_app_password() -> str:
    """Four groups of four lower-case letters and digits, as the reference PDS makes them."""
    alphabet = "abcdefghijklmnopqrstuvwxyz234567"
    chars = "".join(secrets.choice(alphabet) for _ in range(16))
    return "-".join(chars[i : i + 4] for i in range(0, 16, 4))


@dataclass(frozen=True)
class Credentials:
    """An authenticated caller."""

    kind: Literal["access", "refresh", "admin", "service"]
    did: str | None
    scope: str | None = None
    jti: str | None = None
    app_password: str | None = None
    lxm: str | None = None

    @property
    def is_full(self) -> bool:
        return self.kind == "access" and self.scope == SCOPE_ACCESS

    @property
    def is_privileged(self) -> bool:
        return self.kind == "access" and self.scope in (SCOPE_ACCESS, SCOPE_APP_PRIVILEGED)


@dataclass(frozen=True)
class SessionTokens:
    """A new session's tokens (kept out of ``repr``, hence out of logs)."""

    access_jwt: str = field(repr=False)
    refresh_jwt: str = field(repr=False)
    refresh_jti: str = field(repr=False)
    refresh_expires_at: int


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


class Authenticator:
    """Issues session tokens and resolves a request's credentials for a method's policy."""

    def __init__(
        self,
        *,
        settings: PdsSettings,
        accounts: AccountCache,
        store: PdsStore,
        passwords: PasswordThrottle,
        identity: DirectoryClient,
        secret: bytes,
        admin_password: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``clock`` gives the time tokens are issued at and checked against."""
        self.clock = clock
        self.settings = settings
        self.accounts = accounts
        self.store = store
        self.passwords = passwords
        self.identity = identity
        self._signer = jwt.HmacSigner(secret)
        # Access tokens already verified: token -> (did, scope, exp). A hit skips the
        # base64, JSON and HMAC work; expiry and the account's status are still checked
        # on every request.
        self._verified: dict[str, tuple[str, str, float]] = {}
        self._admin = admin_password.encode()
        self.service_did = settings.did
        self._replays = jwt.ReplayGuard()

    # -- issuing ---------------------------------------------------------------------
    def issue(self, did: str, app_password: str | None, privileged: bool) -> SessionTokens:
        now = int(self.clock())
        s = self.settings
        if app_password is None:
            scope = SCOPE_ACCESS
        else:
            scope = SCOPE_APP_PRIVILEGED if privileged else SCOPE_APP
        access = self._signer.encode(
            {
                "scope": scope,
                "sub": did,
                "aud": self.service_did,
                "iat": now,
                "exp": now + s.access_ttl_s,
            },
            ACCESS_TYP,
        )
        jti = secrets.token_urlsafe(24)
        expires = now + s.refresh_ttl_s
        refresh = self._signer.encode(
            {
                "scope": SCOPE_REFRESH,
                "sub": did,
                "aud": self.service_did,
                "jti": jti,
                "iat": now,
                "exp": expires,
            },
            REFRESH_TYP,
        )
        return SessionTokens(access, refresh, jti, expires)

    # -- checking --------------------------------------------------------------------
    async def authenticate(self, request: Request, policy: Auth) -> Credentials | None:
        if policy is Auth.NONE:
            return None
        if policy is Auth.ADMIN:
            return self.admin_creds(request)
        token = _bearer(request)
        if policy is Auth.SERVICE:
            return None if token is None else await self._service_creds(token, request)
        if token is None:
            if policy is Auth.OPTIONAL:
                return None
            raise AuthRequiredError("Authentication Required")
        if policy is Auth.OPTIONAL and jwt.parse(token).header.get("alg") != "HS256":
            return None  # an inter-service token for a public read: serve it anonymously
        if policy is Auth.REFRESH:
            return self._refresh_creds(token)
        creds = self._access_creds(token)
        if policy is Auth.FULL and not creds.is_full:
            raise ForbiddenError("This method is not available to app passwords")
        if policy is Auth.PRIVILEGED and not creds.is_privileged:
            raise ForbiddenError("This method needs a privileged app password")
        return creds

    def _access_creds(self, token: str) -> Credentials:
        now = self.clock()
        hit = self._verified.get(token)
        if hit is not None and hit[2] > now:
            did, scope, _ = hit
        else:
            payload = self._signer.decode(token, ACCESS_TYP, now)
            claimed_scope, sub = payload.get("scope"), payload.get("sub")
            if claimed_scope not in (SCOPE_ACCESS, SCOPE_APP, SCOPE_APP_PRIVILEGED):
                raise InvalidTokenError("Bad token scope")
            if not isinstance(sub, str) or payload.get("aud") != self.service_did:
                raise InvalidTokenError("Token could not be verified")
            did, scope = sub, str(claimed_scope)
            if len(self._verified) >= VERIFIED_CACHE:
                self._verified.clear()
            self._verified[token] = (did, scope, float(payload["exp"]))
        account = self.accounts.cached(did)
        if account is None:
            raise InvalidTokenError("Token could not be verified: no such account")
        if account.status == "takendown":
            raise AccountTakedownError("Account has been taken down")
        return Credentials("access", did, scope)

    def _refresh_creds(self, token: str) -> Credentials:
        payload = self._signer.decode(token, REFRESH_TYP, self.clock())
        did, jti = payload.get("sub"), payload.get("jti")
        if payload.get("scope") != SCOPE_REFRESH or not isinstance(did, str):
            raise InvalidTokenError("Bad token scope")
        if not isinstance(jti, str):
            raise InvalidTokenError("Token could not be verified")
        row = self.store.get_refresh_token(jti)
        if row is None or row.did != did:
            raise InvalidTokenError("Token has been revoked")
        return Credentials("refresh", did, SCOPE_REFRESH, jti=jti, app_password=row.app_password)

    def admin_creds(self, request: Request) -> Credentials:
        """HTTP Basic ``admin:<password>``, or :class:`AuthRequiredError`. Failed attempts
        back off per client address (:mod:`plaza.services.pds.throttle`): an address
        backing off gets 429 without its password being looked at, so the password
        cannot be guessed at leisure, while the admin at another address signs in."""
        client = request.client
        address = client.host if client else "unknown"
        header = request.headers.get("authorization", "")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            raise AuthRequiredError("Admin authentication (HTTP Basic) required")
        with self.passwords.attempt(address, ADMIN):
            try:
                decoded = base64.b64decode(encoded, validate=True).decode()
            except (binascii.Error, UnicodeDecodeError) as exc:
                raise AuthRequiredError("Malformed Basic credentials") from exc
            user, _, password = decoded.partition(":")
            if user != "admin" or not hmac.compare_digest(password.encode(), self._admin):
                raise AuthRequiredError("Invalid admin credentials")
        return Credentials("admin", None)

    async def _service_creds(self, token: str, request: Request) -> Credentials:
        parsed = jwt.parse(token)
        iss = parsed.payload.get("iss")
        if not isinstance(iss, str):
            raise InvalidTokenError("service token has no iss")
        nsid = request.path_params.get("nsid")
        key = await self.identity.signing_key(iss.split("#", 1)[0])
        try:
            payload = jwt.verify_service_jwt(
                parsed, key, aud=self.service_did, lxm=nsid, now=self.clock()
            )
        except InvalidTokenError:
            # The issuer may have rotated its key since we cached it: look once more.
            key = await self.identity.signing_key(iss.split("#", 1)[0], refresh=True)
            payload = jwt.verify_service_jwt(
                parsed, key, aud=self.service_did, lxm=nsid, now=self.clock()
            )
        jti = payload.get("jti")
        if not isinstance(jti, str) or not 0 < len(jti) <= 128:
            raise InvalidTokenError("service token has no jti nonce")
        self._replays.use(iss, jti, exp=float(payload["exp"]), now=self.clock())
        return Credentials("service", iss, lxm=payload.get("lxm"))
