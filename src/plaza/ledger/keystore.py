"""A local keystore: named signing identities in one JSON file under the data directory.

The file (mode 0600) maps a name to ``{did, alg, secret}``, the secret being the key's
32-byte scalar in hex. A new identity's DID is its ``did:key``; an identity may record
another DID it signs for (a ``did:plc`` it registered). Nothing here prints or logs a
secret: :class:`Signer` shows only its DID and public key.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from plaza.atproto.crypto import ES256K, Alg, PrivateKey
from plaza.atproto.errors import CryptoError
from plaza.ledger.errors import KeystoreError

_NAME_RE: Final = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


@dataclass(frozen=True, slots=True)
class Signer:
    """A DID and the key that signs for it."""

    did: str
    key: PrivateKey = field(repr=False)

    @property
    def did_key(self) -> str:
        return self.key.did_key()

    @classmethod
    def generate(cls, alg: Alg = ES256K) -> Signer:
        key = PrivateKey.generate(alg)
        return cls(key.did_key(), key)


class Keystore:
    """Named identities in a JSON file; created on first write with mode 0600."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _load(self) -> dict[str, Any]:
        if not self.path.exists():
            return {"version": 1, "identities": {}}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise KeystoreError(f"cannot read keystore {self.path}: {exc}") from exc
        if not isinstance(data, dict) or not isinstance(data.get("identities"), dict):
            raise KeystoreError(f"{self.path} is not a Plaza keystore")
        return data

    def _save(self, data: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        # A fresh file, never a leftover (or planted) keys.tmp or a symlink: O_CREAT's
        # mode applies only to a new file, and the temporary replaces keys.json.
        tmp.unlink(missing_ok=True)
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except OSError as exc:
            raise KeystoreError(f"cannot write keystore {self.path}: {exc}") from exc
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, sort_keys=True)
        os.replace(tmp, self.path)

    def names(self) -> list[str]:
        return sorted(self._load()["identities"])

    def has(self, name: str) -> bool:
        return name in self._load()["identities"]

    def create(self, name: str, *, alg: Alg = ES256K, did: str | None = None) -> Signer:
        """Generate a key and store it under ``name``; refuse to overwrite."""
        if not _NAME_RE.match(name):
            raise KeystoreError(f"invalid identity name {name!r} (lower-case letters, digits)")
        data = self._load()
        if name in data["identities"]:
            raise KeystoreError(f"identity {name!r} already exists")
        key = PrivateKey.generate(alg)
        data["identities"][name] = {
            "did": did or key.did_key(),
            "alg": alg,
            "secret": key.to_bytes().hex(),
        }
        self._save(data)
        return Signer(did or key.did_key(), key)

    def add(self, name: str, signer: Signer) -> None:
        """Store an existing identity under ``name``; refuse to overwrite."""
        if not _NAME_RE.match(name):
            raise KeystoreError(f"invalid identity name {name!r} (lower-case letters, digits)")
        data = self._load()
        if name in data["identities"]:
            raise KeystoreError(f"identity {name!r} already exists")
        data["identities"][name] = {
            "did": signer.did,
            "alg": signer.key.alg,
            "secret": signer.key.to_bytes().hex(),
        }
        self._save(data)

    def set_did(self, name: str, did: str) -> None:
        """Record that identity ``name`` signs for ``did`` (after registering it)."""
        data = self._load()
        if name not in data["identities"]:
            raise KeystoreError(f"no identity {name!r}")
        data["identities"][name]["did"] = did
        self._save(data)

    def get(self, name: str) -> Signer:
        entry = self._load()["identities"].get(name)
        if entry is None:
            raise KeystoreError(f"no identity {name!r} in {self.path}")
        try:
            key = PrivateKey.from_bytes(entry["alg"], bytes.fromhex(entry["secret"]))
        except (KeyError, ValueError, CryptoError) as exc:
            raise KeystoreError(f"identity {name!r} is damaged") from exc
        return Signer(str(entry["did"]), key)

    def public(self) -> dict[str, dict[str, str]]:
        """Name -> ``{did, key}`` (public parts only)."""
        out = {}
        for name in self.names():
            s = self.get(name)
            out[name] = {"did": s.did, "key": s.did_key}
        return out
