"""Members' passwords at the entryway: scrypt hashes, checked in constant time.

A hash is ``scrypt$N$r$p$salt$key`` (salt and key in unpadded base64url), so the cost
parameters travel with each hash and can be raised for new ones without breaking the
old. scrypt is memory-hard (N=2**15, r=8: 32 MiB a check), which is what makes a stolen
table expensive to guess through; the caller runs both functions off its event loop.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import Final

N: Final = 2**15
R: Final = 8
P: Final = 1
KEY_BYTES: Final = 32
_MAXMEM: Final = 64 * 1024 * 1024


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _derive(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=_MAXMEM, dklen=KEY_BYTES
    )


def hash_password(password: str) -> str:
    """A fresh salted scrypt hash of ``password``."""
    salt = secrets.token_bytes(16)
    return f"scrypt${N}${R}${P}${_b64(salt)}${_b64(_derive(password, salt, N, R, P))}"


def verify_password(stored: str, password: str) -> bool:
    """True iff ``password`` matches ``stored``; a malformed ``stored`` matches nothing."""
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != "scrypt":
        return False
    try:
        n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt, key = _unb64(parts[4]), _unb64(parts[5])
        derived = _derive(password, salt, n, r, p)
    except ValueError:
        return False
    return hmac.compare_digest(derived, key)
