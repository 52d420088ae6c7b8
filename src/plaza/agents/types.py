"""The values agents exchange: actions, the reasons behind them, and mandate limits.

An :class:`Action` is what a reconciler's ``decide()`` returns: a frozen request to change
the world (``kind`` + ``params``) plus the :class:`Reason` that produced it — the rule
applied, the numbers it compared and a digest of the inputs it saw, so that anyone reading
the ledger can re-check the decision. Actions carry no authority; the mandate guard
decides whether one may run.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from plaza.dao.money import Currency, default_currency
from plaza.errors import InvalidInputError

#: The action kinds the reconcilers emit; the mandate guard knows the same names.
ACTION_KINDS: frozenset[str] = frozenset(
    {
        "capacity.procure",
        "capacity.release",
        "rfb.create",
        "contract.award",
        "placement.assign",
        "migration.batch",
        "settlement.pay",
        "settlement.settle",
        "provider.suspend",
        "provider.offboard",
    }
)

Scalar = str | int | float | bool | None
ParamValue = Scalar | tuple[Any, ...]


def _freeze(value: Any) -> ParamValue:
    if isinstance(value, Mapping):
        return tuple((str(k), _freeze(v)) for k, v in sorted(value.items()))
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if hasattr(value, "item"):  # numpy scalar
        return _freeze(value.item())
    raise InvalidInputError(f"action parameter of type {type(value).__name__} is not a value")


def _plain(value: Any) -> Any:
    """JSON-ready form; floats become short decimal strings (DAG-CBOR has no floats)."""
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:.6g}"
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return value.tolist()
    raise TypeError(f"cannot digest a {type(value).__name__}")


def digest_of(inputs: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of ``inputs`` (sorted keys, exact floats)."""
    text = json.dumps(dict(inputs), sort_keys=True, separators=(",", ":"), default=_json_default)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Reason:
    """Why an action was emitted: ``rule`` applied to ``numbers``; ``digest`` of inputs."""

    rule: str
    digest: str
    numbers: tuple[tuple[str, float], ...]
    text: str

    @classmethod
    def of(cls, rule: str, text: str, inputs: Mapping[str, Any], **numbers: float) -> Reason:
        """Build a reason; ``inputs`` are digested, ``numbers`` kept verbatim."""
        nums = tuple(sorted((k, float(v)) for k, v in numbers.items()))
        return cls(rule=rule, digest=digest_of(inputs), numbers=nums, text=text)

    def number(self, name: str) -> float:
        for key, value in self.numbers:
            if key == name:
                return value
        raise KeyError(name)

    def as_payload(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "digest": self.digest,
            "numbers": {k: _plain(v) for k, v in self.numbers},
            "text": self.text,
        }


@dataclass(frozen=True)
class Action:
    """A frozen request to change the world: ``kind``, ``params`` and its ``reason``."""

    kind: str
    params: tuple[tuple[str, ParamValue], ...]
    reason: Reason

    @classmethod
    def make(cls, kind: str, reason: Reason, **params: Any) -> Action:
        """Validate ``kind`` and freeze ``params`` (lists become tuples, keys sorted)."""
        if kind not in ACTION_KINDS:
            raise InvalidInputError(f"unknown action kind {kind!r}")
        frozen = tuple((k, _freeze(v)) for k, v in sorted(params.items()))
        return cls(kind=kind, params=frozen, reason=reason)

    def get(self, name: str, default: Any = None) -> Any:
        for key, value in self.params:
            if key == name:
                return value
        return default

    def __getitem__(self, name: str) -> Any:
        for key, value in self.params:
            if key == name:
                return value
        raise KeyError(name)

    def as_payload(self) -> dict[str, Any]:
        """The action as a DAG-CBOR-safe dict (floats as decimal strings)."""
        return {
            "kind": self.kind,
            "params": {k: _plain(v) for k, v in self.params},
            "reason": self.reason.as_payload(),
        }


@dataclass(frozen=True)
class MandateLimits:
    """The numbers from the mandate that the reconcilers plan within.

    The guard enforces the mandate itself; reconcilers read these so that what they
    propose is normally allowed. ``budget_per_day`` is the capacity spending cap per
    24 hours (None: no cap); ``max_provider_share`` bounds any provider's share of the
    accounts and of the contracted capacity (from ``concentration_floor`` accounts on);
    ``migration_batch_limit`` bounds the accounts in one ``migration.batch``.
    """

    max_provider_share: float = 0.2
    migration_batch_limit: int = 2000
    budget_per_day: float | None = None
    #: Below this many accounts in all, the share limit does not apply (a network that
    #: small cannot be spread; the mandate's ``concentration_min_accounts``).
    concentration_floor: int = 0
    #: The currency the mandate's amounts are minor units of (the DAO's constitution's).
    currency: Currency = field(default_factory=default_currency)
