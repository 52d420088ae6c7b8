"""Compact JWTs as services exchange them: inter-service tokens (ES256K/ES256).

Inter-service tokens are minted by a PDS for one of its accounts and checked by the
service they are for (an app view, another PDS): they are signed with the account's
repository key (``ES256K`` for keys a Plaza PDS makes), as raw low-S ``r‖s`` in the JWS
signature, the way atproto specifies. The PDS's own HS256 session tokens build on the
same parsing (:mod:`plaza.services.pds.jwt`).

Every segment must be canonical base64url without padding (one spelling per token, so
a token cannot be re-spelled past a cache or a replay record), and anything malformed
is an :class:`InvalidTokenError`. Inter-service tokens live at most an hour and carry a
``jti`` nonce; :class:`ReplayGuard` remembers the nonces seen until their tokens expire.

Nothing here reads the clock: callers pass ``now`` (seconds since the epoch).
"""

from __future__ import annotations

import base64
import binascii
import heapq
import json
import re
from dataclasses import dataclass
from typing import Any, TypeGuard

from plaza.atproto.crypto import PrivateKey, PublicKey
from plaza.errors import PlazaError
from plaza.services.errors import ExpiredTokenError, InvalidTokenError

# A clock skew allowance between services, as the atproto SDK's verifier allows.
LEEWAY_S = 30
# The longest an inter-service token may live (``exp - iat``), as getServiceAuth mints.
MAX_SERVICE_TOKEN_S = 3600
MAX_TOKEN_CHARS = 8192
_B64URL = re.compile(r"[A-Za-z0-9_-]*")


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64d(text: str) -> bytes:
    """Decode canonical unpadded base64url; any other spelling of the same bytes (padding,
    the standard alphabet, ignored characters, non-zero spare bits) is refused."""
    if len(text) % 4 == 1 or not _B64URL.fullmatch(text):
        raise InvalidTokenError("token is not base64url")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise InvalidTokenError("token is not base64url") from exc
    if b64url(raw) != text:
        raise InvalidTokenError("token is not canonical base64url")
    return raw


def _json_part(text: str) -> dict[str, Any]:
    try:
        value = json.loads(_b64d(text))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidTokenError("token segment is not JSON") from exc
    except RecursionError as exc:  # the stdlib parser recurses once per nesting level
        raise InvalidTokenError("token segment is nested too deeply") from exc
    if not isinstance(value, dict):
        raise InvalidTokenError("token segment is not a JSON object")
    return value


def json_segment(obj: dict[str, Any]) -> str:
    return b64url(json.dumps(obj, separators=(",", ":")).encode())


@dataclass(frozen=True)
class Jwt:
    """A parsed, not yet verified token."""

    header: dict[str, Any]
    payload: dict[str, Any]
    signing_input: bytes
    signature: bytes


def parse(token: str) -> Jwt:
    """Split and decode a compact JWS; raises :class:`InvalidTokenError` when malformed."""
    if len(token) > MAX_TOKEN_CHARS:
        raise InvalidTokenError("token is too long")
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidTokenError("token is not a compact JWT")
    header = _json_part(parts[0])
    payload = _json_part(parts[1])
    return Jwt(header, payload, f"{parts[0]}.{parts[1]}".encode(), _b64d(parts[2]))


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_times(payload: dict[str, Any], now: float) -> None:
    """Refuse a token whose ``exp`` has passed or whose ``nbf`` has not come."""
    exp = payload.get("exp")
    if not _is_number(exp):
        raise InvalidTokenError("token has no exp")
    if exp <= now:
        raise ExpiredTokenError("Token has expired")
    nbf = payload.get("nbf")
    if isinstance(nbf, int | float) and nbf > now + LEEWAY_S:
        raise InvalidTokenError("token is not valid yet")


def mint_service_jwt(
    key: PrivateKey,
    *,
    iss: str,
    aud: str,
    lxm: str | None,
    now: int,
    exp: int,
    jti: str,
) -> str:
    """An inter-service token signed with the account's key (``ES256K`` or ``ES256``)."""
    payload: dict[str, Any] = {"iat": now, "iss": iss, "aud": aud, "exp": exp, "jti": jti}
    if lxm is not None:
        payload["lxm"] = lxm
    head = json_segment({"typ": "JWT", "alg": key.alg})
    signing_input = f"{head}.{json_segment(payload)}"
    return f"{signing_input}.{b64url(key.sign(signing_input.encode()))}"


def verify_service_jwt(
    jwt: Jwt, key: PublicKey, *, aud: str, lxm: str | None, now: float
) -> dict[str, Any]:
    """Check an inter-service token against the issuer's key, our DID and the method.

    ``aud`` must match exactly (a ``#fragment`` on the token's audience is accepted when
    the rest matches); ``lxm``, when given, must equal the token's ``lxm``. The token
    must have an ``exp`` at most :data:`MAX_SERVICE_TOKEN_S` after its ``iat`` (or
    after ``now`` when it has no ``iat``). Replays are the caller's to refuse
    (:class:`ReplayGuard`).
    """
    alg = jwt.header.get("alg")
    if alg != key.alg:
        raise InvalidTokenError(f"service token alg {alg!r} does not match the issuer's key")
    if not key.verify(jwt.signing_input, jwt.signature):
        raise InvalidTokenError("service token signature does not verify")
    check_times(jwt.payload, now)
    iat = jwt.payload.get("iat")
    if iat is not None and (not _is_number(iat) or iat > now + LEEWAY_S):
        raise InvalidTokenError("service token iat is not a time in the past")
    born = now if iat is None else iat
    if jwt.payload["exp"] - born > MAX_SERVICE_TOKEN_S:
        raise InvalidTokenError(f"service token lives longer than {MAX_SERVICE_TOKEN_S} s")
    token_aud = jwt.payload.get("aud")
    if not isinstance(token_aud, str) or token_aud.split("#", 1)[0] != aud.split("#", 1)[0]:
        raise InvalidTokenError("service token audience is not this service")
    if lxm is not None and jwt.payload.get("lxm") != lxm:
        raise InvalidTokenError(f"service token is not for method {lxm}")
    return jwt.payload


class ReplayGuardFullError(PlazaError):
    """Too many unexpired inter-service tokens are remembered to take another (429)."""

    code = "RateLimitExceeded"
    status = 429


class ReplayGuard:
    """The ``(issuer, jti)`` pairs of inter-service tokens already accepted, each kept
    until its token's ``exp``, so a captured token cannot be used a second time.

    Expired pairs leave in ``exp`` order from a heap, a few per call: amortized O(log n)
    a use. At ``max_entries`` unexpired pairs a new one is refused (fail closed) rather
    than a remembered one forgotten early.
    """

    def __init__(self, max_entries: int = 100_000) -> None:
        self.max_entries = max_entries
        self._seen: dict[tuple[str, str], float] = {}
        self._by_exp: list[tuple[float, tuple[str, str]]] = []

    def __len__(self) -> int:
        return len(self._seen)

    def use(self, iss: str, jti: str, *, exp: float, now: float) -> None:
        """Record the token's nonce; :class:`InvalidTokenError` if it was seen before."""
        heap = self._by_exp
        while heap and heap[0][0] <= now:
            old_exp, key = heapq.heappop(heap)
            if self._seen.get(key) == old_exp:
                del self._seen[key]
        key = (iss, jti)
        if key in self._seen:
            raise InvalidTokenError("service token has already been used")
        if len(self._seen) >= self.max_entries:
            raise ReplayGuardFullError("Too many service tokens in use; try again later")
        self._seen[key] = exp
        heapq.heappush(heap, (exp, key))
