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
from typing import Any

from plaza.market import _fields as f
from plaza.market.errors import MarketInputError
from plaza.market.params import DEFAULT_LADDER, PPM, PRICE_SCALE, UNIT_SET, service


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
        m = f.as_map(value, what)
        extra = set(m) - {"availability_ppm", "latency_p95_ms", "durability_ppm"}
        if extra:
            raise MarketInputError(f"{what} has unknown fields {sorted(extra)}")
        return cls(
            availability_ppm=f.int_field(m, "availability_ppm", what, hi=PPM, default=999_000),
            latency_p95_ms=f.int_field(m, "latency_p95_ms", what, lo=1, hi=600_000, default=1000),
            durability_ppm=f.int_field(m, "durability_ppm", what, hi=PPM, default=999_999),
        )

    def at_least(self, wanted: Sla) -> bool:
        """Whether these levels meet or beat ``wanted``."""
        return (
            self.availability_ppm >= wanted.availability_ppm
            and self.latency_p95_ms <= wanted.latency_p95_ms
            and self.durability_ppm >= wanted.durability_ppm
        )


def parse_ladder(value: Any, what: str = "credit_ladder") -> tuple[tuple[int, int], ...]:
    """A credit ladder: ``[[below_ppm, credit_ppm], ...]`` with strictly falling
    thresholds and rising credits (S3: below 99.9% -> 10%, 99% -> 25%, 95% -> 100%)."""
    if not isinstance(value, list | tuple) or not 0 < len(value) <= 10:
        raise MarketInputError(f"{what} must be a list of [below_ppm, credit_ppm] steps")
    steps: list[tuple[int, int]] = []
    for step in value:
        if (
            not isinstance(step, list | tuple)
            or len(step) != 2
            or any(type(x) is not int or not 0 <= x <= PPM for x in step)
        ):
            raise MarketInputError(f"{what} steps are pairs of integers in [0, 1000000]")
        steps.append((step[0], step[1]))
    for (a, ca), (b, cb) in itertools.pairwise(steps):
        if not (b < a and cb > ca):
            raise MarketInputError(f"{what} thresholds must fall and credits rise")
    return tuple(steps)


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


def parse_rfb(value: Any, *, default_max_bids: int) -> Rfb:
    """Validate an RFB payload (``id`` included)."""
    m = f.as_map(value, "rfb")
    known = {
        "id", "service", "quantity", "region", "start_ms", "term_s", "max_prices", "sla",
        "max_bids", "deadline_ms", "min_bond", "profile", "credit_ladder",
        "latency_credit_ppm", "notice_s", "exit_fee", "min_term_s", "standing",
    }  # fmt: skip
    extra = set(m) - known
    if extra:
        raise MarketInputError(f"rfb has unknown fields {sorted(extra)}")
    max_prices = f.int_map(f.req(m, "max_prices", "rfb"), "rfb.max_prices", keys=UNIT_SET)
    if "account" not in max_prices:
        raise MarketInputError("rfb.max_prices must cap the account price")
    profile = f.int_map(m.get("profile", {}), "rfb.profile", keys=UNIT_SET)
    for unit in profile:
        if unit != "account" and unit not in max_prices:
            raise MarketInputError(f"rfb.profile uses {unit!r}, which max_prices does not cap")
    ladder = parse_ladder(m["credit_ladder"]) if "credit_ladder" in m else DEFAULT_LADDER
    rfb = Rfb(
        id=f.id_field(m, "id", "rfb"),
        service=service(f.req(m, "service", "rfb"), "rfb.service"),
        quantity=f.int_field(m, "quantity", "rfb", lo=1, hi=10**12),
        region=f.token(f.req(m, "region", "rfb"), "rfb.region"),
        start_ms=f.int_field(m, "start_ms", "rfb"),
        term_s=f.int_field(m, "term_s", "rfb", lo=1),
        max_prices=max_prices,
        sla=Sla.from_map(m.get("sla", {}), "rfb.sla"),
        max_bids=f.int_field(m, "max_bids", "rfb", lo=1, hi=500, default=default_max_bids),
        deadline_ms=f.int_field(m, "deadline_ms", "rfb"),
        min_bond=f.int_field(m, "min_bond", "rfb", default=0),
        profile=profile,
        credit_ladder=ladder,
        latency_credit_ppm=f.int_field(m, "latency_credit_ppm", "rfb", hi=PPM, default=100_000),
        notice_s=f.int_field(m, "notice_s", "rfb", default=30 * 86_400),
        exit_fee=f.int_field(m, "exit_fee", "rfb", default=0),
        min_term_s=f.int_field(m, "min_term_s", "rfb", default=0),
        standing=f.bool_field(m, "standing", "rfb", default=False),
    )
    if rfb.deadline_ms > rfb.start_ms:
        raise MarketInputError("rfb.deadline_ms must not be after start_ms")
    if rfb.min_term_s > rfb.term_s:
        raise MarketInputError("rfb.min_term_s must not be longer than term_s")
    if max(max_prices.values()) > 10**9 * PRICE_SCALE:
        raise MarketInputError("rfb.max_prices are absurdly large")
    return rfb
