"""The member's atproto session tokens: when the access token runs out, and renewing it.

The web client reads the access token's ``exp`` claim (a JWT's middle part) only to
renew it in time; the PDS, not this client, checks the token. A token whose claims do
not read counts as running out (renewing it costs one call; trusting it could cost the
page).
"""

from __future__ import annotations

import base64
import binascii
import json

from plaza.web.sessions import Account
from plaza.web.upstream import Upstream

RENEW_BEFORE_S = 300.0


def expires_at(token: str) -> float | None:
    """The ``exp`` claim of the JWT ``token``, or None when it has none that reads."""
    parts = token.split(".")
    if len(parts) != 3 or len(parts[1]) > 4096:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (binascii.Error, ValueError):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    return float(exp) if isinstance(exp, int | float) and not isinstance(exp, bool) else None


def runs_out(account: Account, now: float, within_s: float = RENEW_BEFORE_S) -> bool:
    """Whether the access token expires within ``within_s`` of ``now`` (or cannot tell)."""
    exp = expires_at(account.access)
    return exp is None or exp - now < within_s


async def renew(upstream: Upstream, account: Account) -> None:
    """Exchange the refresh token for a new pair (the PDS revokes the old refresh token)."""
    fresh = await upstream.procedure(
        account.pds, "com.atproto.server.refreshSession", None, account.refresh
    )
    account.access, account.refresh = str(fresh["accessJwt"]), str(fresh["refreshJwt"])
