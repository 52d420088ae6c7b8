"""Actions: the frozen, hashable values that agents propose and the mandate guard judges.

An action names its ``kind`` (a dotted name such as ``migration.batch``; what kinds exist
is data in the mandate, not code), free-form ``params`` (any atproto data-model map), and
the few quantities the guard reasons about: ``amount`` spent in the mandate's currency
(integer minor units) charged to ``category``, and for actions that place or move
accounts the target ``provider``, the ``source`` provider and the number of ``accounts``.

The canonical form is the DAG-CBOR map of all seven fields; :meth:`Action.digest` is its
SHA-256. A motion stores the digest of what was proposed, and execution refuses anything
that does not hash to it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

from plaza.atproto import cbor
from plaza.atproto.errors import AtprotoError
from plaza.dao.errors import ActionError

KIND_RE: Final = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*){1,5}$")
MAX_AMOUNT: Final = 2**63 - 1
_FIELDS: Final = ("kind", "params", "amount", "category", "provider", "source", "accounts")


def valid_kind(kind: object) -> bool:
    return isinstance(kind, str) and len(kind) <= 128 and KIND_RE.match(kind) is not None


@dataclass(frozen=True, slots=True)
class Action:
    """A proposed operation. Construction validates and deep-copies ``params``."""

    kind: str
    params: Mapping[str, Any] = field(default_factory=dict, hash=False)
    amount: int = 0
    category: str = ""
    provider: str = ""
    source: str = ""
    accounts: int = 0

    def __post_init__(self) -> None:
        if not valid_kind(self.kind):
            raise ActionError(f"invalid action kind {str(self.kind)[:80]!r}")
        for name in ("amount", "accounts"):
            v = getattr(self, name)
            if type(v) is not int or not 0 <= v <= MAX_AMOUNT:
                raise ActionError(f"action {name} must be a non-negative integer, got {v!r}")
        for name in ("category", "provider", "source"):
            v = getattr(self, name)
            if type(v) is not str or len(v) > 2048:
                raise ActionError(f"action {name} must be a string")
        if not isinstance(self.params, Mapping):
            raise ActionError("action params must be a map")
        try:
            frozen = cbor.decode(cbor.encode(dict(self.params)))
        except AtprotoError as exc:
            raise ActionError(f"action params are not data-model values: {exc}") from exc
        object.__setattr__(self, "params", MappingProxyType(frozen))

    def to_map(self) -> dict[str, Any]:
        """The canonical data-model map (every field, always)."""
        return {
            "kind": self.kind,
            "params": cbor.decode(cbor.encode(dict(self.params))),
            "amount": self.amount,
            "category": self.category,
            "provider": self.provider,
            "source": self.source,
            "accounts": self.accounts,
        }

    @classmethod
    def from_map(cls, value: Any) -> Action:
        """Parse the canonical map (missing optional fields take their defaults)."""
        if not isinstance(value, Mapping) or "kind" not in value:
            raise ActionError("an action is a map with at least a 'kind'")
        extra = set(value) - set(_FIELDS)
        if extra:
            raise ActionError(f"unknown action fields {sorted(extra)}")
        params = value.get("params", {})
        if not isinstance(params, Mapping):
            raise ActionError("action params must be a map")
        return cls(
            kind=value["kind"],
            params=params,
            amount=value.get("amount", 0),
            category=value.get("category", ""),
            provider=value.get("provider", ""),
            source=value.get("source", ""),
            accounts=value.get("accounts", 0),
        )

    def encode(self) -> bytes:
        return cbor.encode(self.to_map())

    def digest(self) -> bytes:
        """SHA-256 of the canonical DAG-CBOR encoding."""
        return hashlib.sha256(self.encode()).digest()

    def hash_hex(self) -> str:
        return self.digest().hex()
