"""Requests for bids: what the DAO wants to buy, and the ceiling it will pay.

A request (``market.rfb.created``, written by the operator within the mandate's
``rfb.create`` rule) names a service, a quantity of accounts to serve, a region, when
service starts and for how long, the maximum unit price per metered unit, the SLA it
wants, the bond each bid must carry, how many bids it takes (Akash's ``OrderMaxBids``,
default 20) and the deadline for bids. Its ``profile`` says how much of each metered
unit one account is expected to use per epoch; the award ranks bids by the price of
that bundle. Its contract terms (credit ladder, notice, exit fee) are the DAO's: a bid
accepts them by being signed.

Two optional terms shape what the DAO commits to. ``min_term_s`` is a minimum term:
the DAO may release the contract's accounts (all or part of them) once it has run that
long, and not before — the commitment the award is judged by is the minimum term, not
the whole term. ``standing`` makes the contract a standing offer (pay as you go): the
provider stands ready to serve up to the quantity at the bid's prices and is paid only
for metered use, so the DAO commits nothing up front and the offer holds none of the
provider's capacity and counts in no concentration figure.

Every service is sized in accounts served: hosting holds them, a relay mirrors them,
an app view indexes them. That one dimension is what the mandate's concentration
limits count.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Final

from pydantic import AfterValidator, ConfigDict, Field, TypeAdapter

from plaza.market.errors import MarketInputError
from plaza.market.fields import (
    Count,
    Counts,
    MarketId,
    Model,
    Ppm,
    Seq,
    Token,
    only,
    parse,
    parse_value,
)
from plaza.market.params import DEFAULT_LADDER, PRICE_SCALE, SERVICES, UNIT_SET


def _service(value: str) -> str:
    if value not in SERVICES:
        raise ValueError(f"must be one of {', '.join(SERVICES)}")
    return value


Service = Annotated[str, AfterValidator(_service)]
"""One of :data:`~plaza.market.params.SERVICES`."""


class SlaDoc(Model):
    """The levels a request wants or a bid offers (any left out take the default)."""

    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")
    availability_ppm: Ppm = 999_000
    latency_p95_ms: Annotated[int, Field(ge=1, le=600_000)] = 1_000
    durability_ppm: Ppm = 999_999


@dataclass(frozen=True, slots=True)
class Sla:
    """Service levels: availability (ppm of windows up), latency p95 (ms, median over
    probers per window, 95th percentile over the epoch's windows), durability (ppm)."""

    availability_ppm: int = 999_000
    latency_p95_ms: int = 1_000
    durability_ppm: int = 999_999

    def to_map(self) -> dict[str, int]:
        return {
            "availability_ppm": self.availability_ppm,
            "latency_p95_ms": self.latency_p95_ms,
            "durability_ppm": self.durability_ppm,
        }

    @classmethod
    def from_map(cls, value: Any, what: str = "sla") -> Sla:
        """Validate an SLA map (see :class:`SlaDoc`)."""
        return cls.of(parse(SlaDoc, value, what))

    @classmethod
    def of(cls, doc: SlaDoc) -> Sla:
        return cls(doc.availability_ppm, doc.latency_p95_ms, doc.durability_ppm)

    def at_least(self, wanted: Sla) -> bool:
        """Whether these levels meet or beat ``wanted``."""
        return (
            self.availability_ppm >= wanted.availability_ppm
            and self.latency_p95_ms <= wanted.latency_p95_ms
            and self.durability_ppm >= wanted.durability_ppm
        )


Step = Annotated[list[Ppm], Seq, Field(min_length=2, max_length=2)]
Ladder = Annotated[list[Step], Seq, Field(min_length=1, max_length=10)]
"""A credit ladder as a document carries it: ``[[below_ppm, credit_ppm], ...]``."""
_LADDER: Final = TypeAdapter(Ladder)


def parse_ladder(value: Any, what: str = "credit_ladder") -> tuple[tuple[int, int], ...]:
    """A credit ladder: ``[[below_ppm, credit_ppm], ...]`` with strictly falling
    thresholds and rising credits (S3: below 99.9% -> 10%, 99% -> 25%, 95% -> 100%)."""
    return _ladder(parse_value(_LADDER, value, what), what)


def _ladder(value: list[list[int]], what: str) -> tuple[tuple[int, int], ...]:
    steps = tuple((a, b) for a, b in value)
    for (a, ca), (b, cb) in itertools.pairwise(steps):
        if not (b < a and cb > ca):
            raise MarketInputError(f"{what} thresholds must fall and credits rise")
    return steps


@dataclass(frozen=True, slots=True)
class Rfb:
    """A request for bids, as recorded."""

    id: str
    service: str
    quantity: int
    region: str
    start_ms: int
    term_s: int
    max_prices: Mapping[str, int]
    sla: Sla
    max_bids: int
    deadline_ms: int
    min_bond: int
    profile: Mapping[str, int]
    credit_ladder: tuple[tuple[int, int], ...] = DEFAULT_LADDER
    latency_credit_ppm: int = 100_000
    notice_s: int = 30 * 86_400
    exit_fee: int = 0
    min_term_s: int = 0
    standing: bool = False
    created_ms: int = 0
    awarded: bool = False
    bids: tuple[str, ...] = field(default=())

    def bundle_price(self, prices: Mapping[str, int]) -> int:
        """Price (in :data:`PRICE_SCALE` units) of serving one account for one epoch:
        the account price plus the profile's expected use of every other unit."""
        total = prices.get("account", 0)
        for unit, per_account in self.profile.items():
            if unit != "account":
                total += prices.get(unit, 0) * per_account
        return total

    def to_map(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "service": self.service,
            "quantity": self.quantity,
            "region": self.region,
            "start_ms": self.start_ms,
            "term_s": self.term_s,
            "max_prices": dict(self.max_prices),
            "sla": self.sla.to_map(),
            "max_bids": self.max_bids,
            "deadline_ms": self.deadline_ms,
            "min_bond": self.min_bond,
            "profile": dict(self.profile),
            "credit_ladder": [list(s) for s in self.credit_ladder],
            "latency_credit_ppm": self.latency_credit_ppm,
            "notice_s": self.notice_s,
            "exit_fee": self.exit_fee,
            **self.optional_terms(),
        }

    def optional_terms(self) -> dict[str, Any]:
        """``min_term_s`` and ``standing`` when set (absent otherwise, so requests and
        contracts that do not use them keep their recorded form and digests)."""
        out: dict[str, Any] = {}
        if self.min_term_s:
            out["min_term_s"] = self.min_term_s
        if self.standing:
            out["standing"] = True
        return out

    def to_json(self) -> dict[str, Any]:
        out = self.to_map()
        out.update(created_ms=self.created_ms, awarded=self.awarded, bids=list(self.bids))
        return out


class RfbDoc(Model):
    """A request for bids as the operator writes it (``market.rfb.created``)."""

    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")
    id: MarketId
    service: Service
    quantity: Annotated[int, Field(ge=1, le=10**12)]
    region: Token
    start_ms: Count
    term_s: Annotated[int, Field(ge=1)]
    max_prices: Counts
    sla: SlaDoc = SlaDoc()
    max_bids: Annotated[int, Field(ge=1, le=500)] | None = None
    deadline_ms: Count
    min_bond: Count = 0
    profile: Counts = Field(default_factory=dict)
    credit_ladder: Ladder | None = None
    latency_credit_ppm: Ppm = 100_000
    notice_s: Count = 30 * 86_400
    exit_fee: Count = 0
    min_term_s: Count = 0
    standing: bool = False


def parse_rfb(value: Any, *, default_max_bids: int) -> Rfb:
    """Validate an RFB payload (``id`` included)."""
    doc = parse(RfbDoc, value, "rfb")
    only(doc.max_prices, UNIT_SET, "rfb.max_prices")
    only(doc.profile, UNIT_SET, "rfb.profile")
    if "account" not in doc.max_prices:
        raise MarketInputError("rfb.max_prices must cap the account price")
    for unit in doc.profile:
        if unit != "account" and unit not in doc.max_prices:
            raise MarketInputError(f"rfb.profile uses {unit!r}, which max_prices does not cap")
    if doc.deadline_ms > doc.start_ms:
        raise MarketInputError("rfb.deadline_ms must not be after start_ms")
    if doc.min_term_s > doc.term_s:
        raise MarketInputError("rfb.min_term_s must not be longer than term_s")
    if max(doc.max_prices.values()) > 10**9 * PRICE_SCALE:
        raise MarketInputError("rfb.max_prices are absurdly large")
    ladder = (
        _ladder(doc.credit_ladder, "rfb.credit_ladder")
        if doc.credit_ladder is not None
        else DEFAULT_LADDER
    )
    return Rfb(
        id=doc.id,
        service=doc.service,
        quantity=doc.quantity,
        region=doc.region,
        start_ms=doc.start_ms,
        term_s=doc.term_s,
        max_prices=dict(sorted(doc.max_prices.items())),
        sla=Sla.of(doc.sla),
        max_bids=default_max_bids if doc.max_bids is None else doc.max_bids,
        deadline_ms=doc.deadline_ms,
        min_bond=doc.min_bond,
        profile=dict(sorted(doc.profile.items())),
        credit_ladder=ladder,
        latency_credit_ppm=doc.latency_credit_ppm,
        notice_s=doc.notice_s,
        exit_fee=doc.exit_fee,
        min_term_s=doc.min_term_s,
        standing=doc.standing,
    )
