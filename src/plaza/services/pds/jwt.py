"""HS256 session tokens of a PDS, over the compact-JWT parsing of
:mod:`plaza.services.service_jwt` (re-exported here with the inter-service tokens).

Session tokens (access and refresh) are only ever checked by the PDS that issued them,
so they are HMAC-SHA256 under a per-server secret: a verification is one HMAC and two
base64 decodes.

Nothing here reads the clock: callers pass ``now`` (seconds since the epoch).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from plaza.services.errors import InvalidTokenError
from plaza.services.service_jwt import (
    LEEWAY_S,
    MAX_SERVICE_TOKEN_S,
    MAX_TOKEN_CHARS,
    Jwt,
    ReplayGuard,
    ReplayGuardFullError,
    b64url,
    check_times,
    json_segment,
    mint_service_jwt,
    parse,
    verify_service_jwt,
)

__all__ = [
    "LEEWAY_S",
    "MAX_SERVICE_TOKEN_S",
    "MAX_TOKEN_CHARS",
    "HmacSigner",
    "InvalidTokenError",
    "Jwt",
    "ReplayGuard",
    "ReplayGuardFullError",
    "check_times",
    "mint_service_jwt",
    "parse",
    "verify_service_jwt",
]


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
        head = json_segment({"typ": typ, "alg": "HS256"})
        body = json_segment(payload)
        signing_input = f"{head}.{body}"
        return f"{signing_input}.{b64url(self._sign(signing_input.encode()))}"

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
