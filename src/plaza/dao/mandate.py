"""The mandate: what agents may do on their own, adopted by vote, and the guard that applies it.

A mandate is a versioned TOML document (schema below, also printable as JSON Schema with
``plaza dao mandate schema``). It holds budgets per category over rolling windows, the
rule for every action kind — its class (``automatic``, ``optimistic`` with a veto
window, ``vote``, ``forbidden``), per-action caps, escalation thresholds — and network
limits: maximum share of accounts per provider, an HHI ceiling, migration batch limits,
the default veto threshold in parts per million. Adding an action kind is adding a
``[actions."kind"]`` table; no code changes.

:func:`check` is the guard. It is pure (its only inputs are the action and a
:class:`GuardState`, which carries the mandate, the time, spending so far and accounts per
provider) and total (it returns a verdict for every input and never raises): an action
kind without a rule is denied. The checks run in this order and the first that fires
decides:

1. no rule for the kind -> ``Deny(NoRule)``; class ``forbidden`` -> ``Deny(Forbidden)``
2. ``amount`` over the rule's ``cap`` or ``accounts`` over ``max_accounts`` -> ``Deny``
3. migration batch limits (rules with ``batch_limits = true``) -> ``Deny(OversizeBatch)``
4. concentration after the action, once the network has at least
   ``concentration_min_accounts``: the target provider's share over
   ``max_provider_share_ppm``, or HHI over ``hhi_ceiling`` *and* higher than before
   (moves that reduce concentration are never blocked) -> ``Deny``
5. class ``vote``, or ``amount`` over ``vote_above`` -> ``NeedsVote`` (members may fund
   beyond a budget; that is what a vote is for)
6. spending: ``amount > 0`` needs a budget for its category, and the rolling window's
   spend plus ``amount`` must stay within the limit -> else ``Deny``
7. class ``optimistic``, ``amount`` over ``optimistic_above``, or ``accounts`` over
   ``optimistic_above_accounts`` -> ``Optimistic(window)``; otherwise ``Allow``.

Budget windows follow Lido Easy Track's limit checker (spend + payout <= limit), made
rolling instead of calendar-aligned; the optimistic class follows Aragon's optimistic
plugin (veto ratio in ppm, execute after the window unless the veto threshold is met).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Final, Literal

import tomli_w
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from plaza.atproto import cbor
from plaza.dao.action import Action, valid_kind
from plaza.dao.errors import MandateError

PPM: Final = 1_000_000
SCHEMA_VERSION: Final = 1
_DURATION_RE: Final = re.compile(r"^(\d+)\s*([smhdw])$")
_UNIT_S: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_CATEGORY_RE: Final = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")


def parse_duration(value: object) -> int:
    """Seconds from an integer or a string such as ``"90s"``, ``"48h"``, ``"30d"``, ``"2w"``."""
    if isinstance(value, bool):
        raise ValueError("a duration is an integer of seconds or a string like '48h'")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return value
    if isinstance(value, str):
        m = _DURATION_RE.match(value.strip())
        if m:
            return int(m.group(1)) * _UNIT_S[m.group(2)]
    raise ValueError(f"invalid duration {value!r}: use seconds or a string like '48h', '30d'")


def format_duration(seconds: int) -> str:
    for unit in ("w", "d", "h", "m"):
        if seconds and seconds % _UNIT_S[unit] == 0:
            return f"{seconds // _UNIT_S[unit]}{unit}"
    return f"{seconds}s"


Duration = Annotated[int, BeforeValidator(parse_duration)]
Ppm = Annotated[int, Field(ge=0, le=PPM)]
Minor = Annotated[int, Field(ge=0, le=2**63 - 1)]
ActionClass = Literal["automatic", "optimistic", "vote", "forbidden"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True, strict=False)


class Budget(_Model):
    """Spending allowed to agents in one category over a rolling window."""

    limit: Minor
    period: Duration = Field(gt=0)
    description: str = ""


class ActionRule(_Model):
    """How the guard treats one action kind."""

    class_: ActionClass = Field(alias="class")
    window: Duration | None = Field(default=None, gt=0)
    veto_ppm: Annotated[int, Field(gt=0, le=PPM)] | None = None
    cap: Minor | None = None
    max_accounts: Minor | None = None
    category: str | None = None
    vote_above: Minor | None = None
    optimistic_above: Minor | None = None
    optimistic_above_accounts: Minor | None = None
    batch_limits: bool = False
    proposal_type: str = "agent-action"
    description: str = ""


class Limits(_Model):
    """Network-wide limits."""

    max_provider_share_ppm: Ppm = 250_000
    hhi_ceiling: Annotated[int, Field(ge=0, le=10_000)] = 2_500
    concentration_min_accounts: Minor = 1_000
    migration_batch_max_accounts: Minor = 5_000
    migration_batch_max_share_ppm: Ppm = 50_000
    veto_ppm: Annotated[int, Field(gt=0, le=PPM)] = 50_000
    veto_window: Duration = Field(default=72 * 3600, gt=0)


class Mandate(_Model):
    """A mandate document. Build with :func:`load_mandate` / :func:`parse_mandate`."""

    schema_: Literal[1] = Field(alias="schema", default=1)
    version: int = Field(ge=1)
    title: str = ""
    currency: str = Field(pattern=r"^[A-Z][A-Z0-9'._-]{0,22}[A-Z0-9]$")
    limits: Limits = Limits()
    budgets: dict[str, Budget] = {}
    actions: dict[str, ActionRule] = {}

    @field_validator("budgets")
    @classmethod
    def _categories(cls, v: dict[str, Budget]) -> dict[str, Budget]:
        for name in v:
            if not _CATEGORY_RE.match(name):
                raise ValueError(f"invalid budget category {name!r}")
        return v

    @field_validator("actions")
    @classmethod
    def _kinds(cls, v: dict[str, ActionRule]) -> dict[str, ActionRule]:
        for kind in v:
            if not valid_kind(kind):
                raise ValueError(f"invalid action kind {kind!r} (dotted lower-case name)")
        return v

    def to_map(self) -> dict[str, Any]:
        """The canonical data-model map (durations in seconds, no nulls)."""
        out: dict[str, Any] = self.model_dump(by_alias=True, exclude_none=True, mode="python")
        return out

    def to_toml(self) -> str:
        return tomli_w.dumps(self.to_map())

    def digest(self) -> bytes:
        """SHA-256 of the canonical DAG-CBOR encoding of :meth:`to_map`."""
        import hashlib

        return hashlib.sha256(cbor.encode(self.to_map())).digest()

    def rule(self, kind: str) -> ActionRule | None:
        return self.actions.get(kind)


def _errors(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:8]:
        loc = ".".join(str(p) for p in err["loc"]) or "(document)"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


def mandate_from_map(value: Any) -> Mandate:
    """Validate a data-model map (from TOML or a ledger event) against the schema."""
    if not isinstance(value, Mapping):
        raise MandateError("a mandate is a table")
    try:
        return Mandate.model_validate(dict(value))
    except ValidationError as exc:
        raise MandateError(f"invalid mandate: {_errors(exc)}") from exc


def parse_mandate(text: str) -> Mandate:
    """Parse and validate TOML text."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise MandateError(f"mandate is not valid TOML: {exc}") from exc
    return mandate_from_map(data)


def load_mandate(path: Path) -> Mandate:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MandateError(f"cannot read mandate {path}: {exc}") from exc
    return parse_mandate(text)


def default_mandate_text() -> str:
    return resources.files("plaza.dao").joinpath("default_mandate.toml").read_text("utf-8")


def default_mandate() -> Mandate:
    """The mandate shipped with Plaza (``plaza/dao/default_mandate.toml``)."""
    return parse_mandate(default_mandate_text())


def mandate_json_schema() -> dict[str, Any]:
    return Mandate.model_json_schema(by_alias=True)


@dataclass(frozen=True, slots=True)
class Change:
    """One difference between two mandates: a dotted path and the old and new values."""

    path: str
    old: Any
    new: Any


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for k in value:
            _flatten(value[k], f"{prefix}.{k}" if prefix else str(k), out)
    else:
        out[prefix] = value


def diff_mandates(old: Mandate, new: Mandate) -> list[Change]:
    """Every leaf that differs, sorted by path (``None`` marks an absent side)."""
    a: dict[str, Any] = {}
    b: dict[str, Any] = {}
    _flatten(old.to_map(), "", a)
    _flatten(new.to_map(), "", b)
    return [Change(k, a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


# -- the guard -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Allow:
    """The action may execute now."""

    verdict: Literal["allow"] = "allow"


@dataclass(frozen=True, slots=True)
class Optimistic:
    """The action executes after ``window_s`` seconds unless vetoes reach
    ``ceil(E * veto_ppm / 1e6)``."""

    window_s: int
    veto_ppm: int
    verdict: Literal["optimistic"] = "optimistic"


@dataclass(frozen=True, slots=True)
class NeedsVote:
    """Only a passed proposal of ``proposal_type`` may authorize the action."""

    reason: str
    proposal_type: str = "agent-action"
    verdict: Literal["vote"] = "vote"


@dataclass(frozen=True, slots=True)
class Deny:
    """The action is outside the mandate; ``code`` is machine-readable."""

    reason: str
    code: str = "MandateDenied"
    verdict: Literal["deny"] = "deny"


Verdict = Allow | Optimistic | NeedsVote | Deny


@dataclass(frozen=True, slots=True)
class Spend:
    """Money spent in one category at one time (Unix ms), in minor units."""

    time_ms: int
    amount: int


@dataclass(frozen=True, slots=True)
class GuardState:
    """Everything :func:`check` looks at besides the action.

    ``spends`` maps a budget category to past spends (any order); ``accounts`` maps a
    provider DID to the number of accounts it hosts now.
    """

    mandate: Mandate
    now_ms: int = 0
    spends: Mapping[str, Sequence[Spend]] = field(default_factory=dict)
    accounts: Mapping[str, int] = field(default_factory=dict)

    def spent(self, category: str, period_s: int) -> int:
        """Spend in ``category`` during the rolling window ``(now - period, now]``."""
        start = self.now_ms - period_s * 1000
        return sum(
            s.amount for s in self.spends.get(category, ()) if start < s.time_ms <= self.now_ms
        )

    def total_accounts(self) -> int:
        return sum(self.accounts.values())

    def hhi(self) -> int:
        """Herfindahl-Hirschman index of accounts per provider, 0..10000 (floored)."""
        return hhi(self.accounts)


def hhi(accounts: Mapping[str, int]) -> int:
    """``sum((100 * share_i)^2)`` over providers, on the 0..10000 scale, floored."""
    total = sum(accounts.values())
    if total <= 0:
        return 0
    return sum(a * a for a in accounts.values()) * 10_000 // (total * total)


def check(action: Action, state: GuardState) -> Verdict:
    """The guard: ``Allow``, ``Optimistic(window)``, ``NeedsVote`` or ``Deny(reason)``.

    Pure and total; see the module docstring for the order of checks.
    """
    try:
        return _check(action, state)
    except (AttributeError, TypeError, ValueError, ArithmeticError, KeyError) as exc:
        return Deny(f"malformed action or state: {exc}", "MalformedAction")


def _check(action: Action, state: GuardState) -> Verdict:
    if not isinstance(action, Action):
        return Deny("not an action", "MalformedAction")
    mandate = state.mandate
    rule = mandate.rule(action.kind)
    if rule is None:
        return Deny(f"the mandate has no rule for action kind {action.kind!r}", "NoRule")
    if rule.class_ == "forbidden":
        return Deny(f"action kind {action.kind!r} is forbidden by the mandate", "Forbidden")
    if rule.cap is not None and action.amount > rule.cap:
        return Deny(
            f"amount {action.amount} is over the per-action cap {rule.cap} for {action.kind}",
            "OverCap",
        )
    if rule.max_accounts is not None and action.accounts > rule.max_accounts:
        return Deny(
            f"{action.accounts} accounts is over the per-action cap {rule.max_accounts}",
            "OverCap",
        )
    limits = mandate.limits
    before = dict(state.accounts)
    total_before = sum(before.values())
    if rule.batch_limits:
        if action.accounts > limits.migration_batch_max_accounts:
            return Deny(
                f"migration batch of {action.accounts} accounts is over the limit of "
                f"{limits.migration_batch_max_accounts}",
                "OversizeBatch",
            )
        if (
            total_before >= limits.concentration_min_accounts
            and action.accounts * PPM > limits.migration_batch_max_share_ppm * total_before
        ):
            return Deny(
                f"migration batch of {action.accounts} accounts is over "
                f"{limits.migration_batch_max_share_ppm} ppm of {total_before} accounts",
                "OversizeBatch",
            )
    if action.accounts and action.provider:
        verdict = _concentration(action, before, limits)
        if verdict is not None:
            return verdict
    if rule.class_ == "vote":
        return NeedsVote(f"the mandate requires a vote for {action.kind}", rule.proposal_type)
    if rule.vote_above is not None and action.amount > rule.vote_above:
        return NeedsVote(
            f"amount {action.amount} is over {rule.vote_above}, above which {action.kind} "
            "needs a vote",
            rule.proposal_type,
        )
    if action.amount > 0:
        category = action.category or rule.category or ""
        budget = mandate.budgets.get(category)
        if budget is None:
            return Deny(f"no budget for category {category!r}", "NoBudget")
        spent = state.spent(category, budget.period)
        if spent + action.amount > budget.limit:
            return Deny(
                f"{category} budget exceeded: {spent} spent in the last "
                f"{format_duration(budget.period)} + {action.amount} > {budget.limit}",
                "OverBudget",
            )
    window = rule.window if rule.window is not None else limits.veto_window
    veto = rule.veto_ppm if rule.veto_ppm is not None else limits.veto_ppm
    if rule.class_ == "optimistic":
        return Optimistic(window, veto)
    if rule.optimistic_above is not None and action.amount > rule.optimistic_above:
        return Optimistic(window, veto)
    if (
        rule.optimistic_above_accounts is not None
        and action.accounts > rule.optimistic_above_accounts
    ):
        return Optimistic(window, veto)
    return Allow()


def _concentration(action: Action, before: dict[str, int], limits: Limits) -> Verdict | None:
    after = dict(before)
    if action.source:
        held = after.get(action.source, 0)
        if held < action.accounts:
            return Deny(
                f"source {action.source} hosts {held} accounts, fewer than {action.accounts}",
                "MalformedAction",
            )
        after[action.source] = held - action.accounts
    after[action.provider] = after.get(action.provider, 0) + action.accounts
    total = sum(after.values())
    if total < limits.concentration_min_accounts:
        return None
    share_after = after[action.provider]
    if share_after * PPM > limits.max_provider_share_ppm * total:
        return Deny(
            f"{action.provider} would host {share_after} of {total} accounts, over "
            f"{limits.max_provider_share_ppm} ppm",
            "OverConcentration",
        )
    hhi_before, hhi_after = hhi(before), hhi(after)
    if hhi_after > limits.hhi_ceiling and hhi_after > hhi_before:
        return Deny(
            f"HHI would rise from {hhi_before} to {hhi_after}, over the ceiling "
            f"{limits.hhi_ceiling}",
            "OverHHI",
        )
    return None
