"""Compact JWTs: HS256 session tokens and ES256K/ES256 inter-service tokens.

Session tokens (access and refresh) are only ever checked by the PDS that issued them,
so they are HMAC-SHA256 under a per-server secret: a verification is one HMAC and two
base64 decodes. Inter-service tokens are checked by other services and are signed with
the account's repository key (``ES256K`` for keys this PDS makes), as raw low-S
``r‖s`` in the JWS signature, the way atproto specifies.

Nothing here reads the clock: callers pass ``now`` (seconds since the epoch).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

from plaza.atproto.crypto import PrivateKey, PublicKey
from plaza.services.pds.errors import ExpiredTokenError, InvalidTokenError

# A clock skew allowance between services, as the atproto SDK's verifier allows.
LEEWAY_S = 30


def _b64e(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64d(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise InvalidTokenError("token is not base64url") from exc


def _json_part(text: str) -> dict[str, Any]:
    try:
        value = json.loads(_b64d(text))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidTokenError("token segment is not JSON") from exc
    if not isinstance(value, dict):
        raise InvalidTokenError("token segment is not a JSON object")
    return value


def _encode_json(obj: dict[str, Any]) -> str:
    return _b64e(json.dumps(obj, separators=(",", ":")).encode())


@dataclass(frozen=True)
class Jwt:
    """A parsed, not yet verified token."""

    header: dict[str, Any]
    payload: dict[str, Any]
    signing_input: bytes
    signature: bytes


def parse(token: str) -> Jwt:
    """Split and decode a compact JWS; raises :class:`InvalidTokenError` when malformed."""
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidTokenError("token is not a compact JWT")
    header = _json_part(parts[0])
    payload = _json_part(parts[1])
    return Jwt(header, payload, f"{parts[0]}.{parts[1]}".encode(), _b64d(parts[2]))


def check_times(payload: dict[str, Any], now: float) -> None:
    """Refuse a token whose ``exp`` has passed or whose ``nbf`` has not come."""
    exp = payload.get("exp")
    if not isinstance(exp, int | float):
        raise InvalidTokenError("token has no exp")
    if exp <= now:
        raise ExpiredTokenError("Token has expired")
    nbf = payload.get("nbf")
    if isinstance(nbf, int | float) and nbf > now + LEEWAY_S:
        raise InvalidTokenError("token is not valid yet")


class HmacSigner:
    """HS256 signing and verification under one secret (the HMAC key is prepared once)."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 32:
            raise ValueError("HS256 secret must be at least 32 bytes")
        self._mac = hmac.new(secret, digestmod=hashlib.sha256)

    def _sign(self, data: bytes) -> bytes:
        mac = self._mac.copy()
        mac.update(data)
        return mac.digest()

    def encode(self, payload: dict[str, Any], typ: str) -> str:
        head = _encode_json({"typ": typ, "alg": "HS256"})
        body = _encode_json(payload)
        signing_input = f"{head}.{body}"
        return f"{signing_input}.{_b64e(self._sign(signing_input.encode()))}"

    def decode(self, token: str, typ: str, now: float) -> dict[str, Any]:
        """Verify signature, ``typ`` and times; return the payload."""
        jwt = parse(token)
        if jwt.header.get("alg") != "HS256":
            raise InvalidTokenError("Token could not be verified")
        if not hmac.compare_digest(self._sign(jwt.signing_input), jwt.signature):
            raise InvalidTokenError("Token could not be verified")
        if jwt.header.get("typ") != typ:
            raise InvalidTokenError(f"Invalid token type: expected {typ}")
        check_times(jwt.payload, now)
        return jwt.payload


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
    head = _encode_json({"typ": "JWT", "alg": key.alg})
    signing_input = f"{head}.{_encode_json(payload)}"
    return f"{signing_input}.{_b64e(key.sign(signing_input.encode()))}"


def verify_service_jwt(
    jwt: Jwt, key: PublicKey, *, aud: str, lxm: str | None, now: float
) -> dict[str, Any]:
    """Check an inter-service token against the issuer's key, our DID and the method.

    ``aud`` must match exactly (a ``#fragment`` on the token's audience is accepted when
    the rest matches); ``lxm``, when given, must equal the token's ``lxm``.
    """
    alg = jwt.header.get("alg")
    if alg != key.alg:
        raise InvalidTokenError(f"service token alg {alg!r} does not match the issuer's key")
    if not key.verify(jwt.signing_input, jwt.signature):
        raise InvalidTokenError("service token signature does not verify")
    check_times(jwt.payload, now)
    token_aud = jwt.payload.get("aud")
    if not isinstance(token_aud, str) or token_aud.split("#", 1)[0] != aud.split("#", 1)[0]:
        raise InvalidTokenError("service token audience is not this service")
    if lxm is not None and jwt.payload.get("lxm") != lxm:
        raise InvalidTokenError(f"service token is not for method {lxm}")
    return jwt.payload
