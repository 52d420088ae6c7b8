"""The constitution: the DAO's own rules, a TOML document amended only by vote.

It names the DAO and its currency, sets admission (``vouches_required`` = k, how long a
voucher loses vouching rights after vouching for a fake, the attestations required and
who may issue them), the quadratic voice credits per member per epoch, the conviction
parameters, the agents the DAO runs, its treasurers (who record income besides the
agents), the keys that sign ledger checkpoints, the legal
record's fields — and the registry of proposal types, each naming its voting method,
quorum (participation), support threshold, window, who may propose it and what executes
when it passes. A new proposal type is a new ``[proposal_types.NAME]`` table.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Final, Literal

import tomli_w
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from plaza.atproto import cbor
from plaza.dao.errors import ConstitutionError
from plaza.dao.mandate import PPM, Duration

VotingMethod = Literal["single", "approval", "irv", "score", "quadratic", "majority", "conviction"]
Executes = Literal[
    "constitution",
    "mandate",
    "budget",
    "contract",
    "admission",
    "removal",
    "treasury",
    "signal",
    "dispute",
    "agent-action",
]
Proposer = Literal["member", "agent", "provider"]
_TYPE_NAME_RE: Final = re.compile(r"^[a-z][a-z0-9-]{0,39}$")
_DID_RE: Final = re.compile(r"^did:[a-z]+:[A-Za-z0-9._:%-]+$")
Ppm = Annotated[int, Field(ge=0, le=PPM)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class ProposalType(_Model):
    """One entry of the proposal-type registry."""

    method: VotingMethod
    executes: Executes
    window: Duration = Field(gt=0)
    participation_ppm: Ppm = 0
    support_ppm: Annotated[int, Field(ge=0, lt=PPM)] = 0
    proposers: tuple[Proposer, ...] = ("member",)
    early_close: bool = False
    max_score: int = Field(default=10, ge=1, le=1000)
    topic: str = ""
    description: str = ""


class Membership(_Model):
    vouches_required: int = Field(default=2, ge=0, le=100)
    voucher_liability: Duration = 180 * 86400
    attestations_required: int = Field(default=0, ge=0, le=20)
    attesters: tuple[str, ...] = ()


class Epochs(_Model):
    length: Duration = Field(default=30 * 86400, gt=0)
    voice_credits: int = Field(default=100, ge=1, le=10**9)


class Conviction(_Model):
    half_life: Duration = Field(default=3 * 86400, gt=0)
    step: Duration = Field(default=3600, gt=0)
    beta_ppm: Annotated[int, Field(gt=0, le=PPM)] = 200_000
    rho_ppm: Ppm = 2_500
    min_points: int = Field(default=0, ge=0)
    points_per_member: int = Field(default=100, ge=1, le=10**9)


class Legal(_Model):
    """Public legal metadata; the legal record is derived from this and the ledger."""

    name: str = ""
    jurisdiction: str = ""
    legal_form: str = ""
    management_mode: str = ""
    registered_agent: str = ""
    checkpoint_location: str = ""


class Constitution(_Model):
    schema_: Literal[1] = Field(alias="schema", default=1)
    name: str = Field(min_length=1, max_length=200)
    currency: str = Field(pattern=r"^[A-Z][A-Z0-9'._-]{0,22}[A-Z0-9]$")
    minor_digits: int = Field(default=2, ge=0, le=8)
    membership: Membership = Membership()
    epochs: Epochs = Epochs()
    conviction: Conviction = Conviction()
    legal: Legal = Legal()
    agents: tuple[str, ...] = ()
    treasurers: tuple[str, ...] = ()
    ledger_keys: tuple[str, ...] = ()
    proposal_types: dict[str, ProposalType]

    @field_validator("proposal_types")
    @classmethod
    def _types(cls, v: dict[str, ProposalType]) -> dict[str, ProposalType]:
        for name, t in v.items():
            if not _TYPE_NAME_RE.match(name):
                raise ValueError(f"invalid proposal type name {name!r}")
            if t.method == "conviction" and t.executes != "budget":
                raise ValueError(f"{name}: conviction voting only funds budgets")
            if t.executes == "budget" and t.method != "conviction":
                raise ValueError(f"{name}: budget requests use conviction voting")
        return v

    @field_validator("agents", "treasurers", "ledger_keys")
    @classmethod
    def _dids(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for did in v:
            if not _DID_RE.match(did):
                raise ValueError(f"invalid DID {did!r}")
        return v

    def to_map(self) -> dict[str, Any]:
        out: dict[str, Any] = _lists(self.model_dump(by_alias=True, mode="python"))
        return out

    def to_toml(self) -> str:
        return tomli_w.dumps(self.to_map())

    def digest(self) -> bytes:
        return hashlib.sha256(cbor.encode(self.to_map())).digest()

    def proposal_type(self, name: str) -> ProposalType | None:
        return self.proposal_types.get(name)

    def topic_of(self, type_name: str) -> str:
        t = self.proposal_types.get(type_name)
        return t.topic if t is not None and t.topic else type_name


def _lists(value: Any) -> Any:
    """Tuples become lists so the map is a data-model value."""
    if isinstance(value, dict):
        return {k: _lists(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_lists(v) for v in value]
    return value


def constitution_from_map(value: Any) -> Constitution:
    if not isinstance(value, Mapping):
        raise ConstitutionError("a constitution is a table")
    try:
        return Constitution.model_validate(dict(value))
    except ValidationError as exc:
        parts = []
        for err in exc.errors()[:8]:
            loc = ".".join(str(p) for p in err["loc"]) or "(document)"
            parts.append(f"{loc}: {err['msg']}")
        raise ConstitutionError(f"invalid constitution: {'; '.join(parts)}") from exc


def parse_constitution(text: str) -> Constitution:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConstitutionError(f"constitution is not valid TOML: {exc}") from exc
    return constitution_from_map(data)


def load_constitution(path: Path) -> Constitution:
    try:
        return parse_constitution(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConstitutionError(f"cannot read constitution {path}: {exc}") from exc


def default_constitution() -> Constitution:
    """The constitution shipped with Plaza (``plaza/dao/default_constitution.toml``)."""
    text = resources.files("plaza.dao").joinpath("default_constitution.toml").read_text("utf-8")
    return parse_constitution(text)
