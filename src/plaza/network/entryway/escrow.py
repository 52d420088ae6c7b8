"""The escrow of host passwords: each account's random password at its host, sealed
with a key that lives beside the entryway's data, never in its database.

Sealing is AES-256-GCM with a fresh 96-bit nonce per password and the account's DID as
associated data, so a sealed password copied onto another account's row does not open.
The key is 32 random bytes in ``escrow.key`` (hex, mode 0600), made on first use; a
copy of the database alone (a PostgreSQL dump) holds no usable host password. Losing
the key loses the escrow: members then log in at their host after a password reset.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from plaza.db import private_file
from plaza.errors import StorageError

KEY_FILE: Final = "escrow.key"
_NONCE: Final = 12


class Escrow:
    """Seals and opens host passwords with one AES-GCM key."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise StorageError("the escrow key must be 32 bytes")
        self._aead = AESGCM(key)

    @classmethod
    def open(cls, data_dir: Path) -> Escrow:
        """The escrow whose key is ``data_dir/escrow.key`` (made, mode 0600, if absent)."""
        path = data_dir / KEY_FILE
        try:
            if not path.exists() or path.stat().st_size == 0:
                private_file(path)
                path.write_text(secrets.token_bytes(32).hex() + "\n", encoding="ascii")
            return cls(bytes.fromhex(path.read_text(encoding="ascii").strip()))
        except (OSError, ValueError) as exc:
            raise StorageError(f"cannot read the escrow key {path}: {exc}") from exc

    def seal(self, did: str, password: str) -> bytes:
        nonce = secrets.token_bytes(_NONCE)
        return nonce + self._aead.encrypt(nonce, password.encode("utf-8"), did.encode())

    def unseal(self, did: str, sealed: bytes) -> str:
        try:
            plain = self._aead.decrypt(sealed[:_NONCE], sealed[_NONCE:], did.encode())
        except (InvalidTag, ValueError) as exc:
            raise StorageError(f"the escrowed password of {did} does not open") from exc
        return plain.decode("utf-8")
