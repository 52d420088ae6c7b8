"""Market parameters and units: the numbers every market rule reads.

Money is in integer minor units of the DAO's currency (cents of EUR in the default
mandate). Unit prices are finer: integer millionths of a minor unit per unit
(:data:`PRICE_SCALE`), so a price of ``1_500_000`` is 1.5 cents. Invoices are computed
in those millionths and floored to minor units once, at the end.

Metered units (:data:`UNITS`): ``account`` (an account hosted for one epoch),
``gb_hour`` (a gigabyte stored for an hour), ``request`` (one request served) and
``egress_gb`` (a gigabyte sent). Probability-like numbers (availability, credits,
shares, weights) are integer parts per million (:data:`PPM`); ledger payloads are
DAG-CBOR, which has no floats, and integers keep every replay bit-for-bit identical.

Time is Unix milliseconds. The market's clock starts at ``genesis_ms``; epoch ``n``
covers ``[genesis + n*epoch, genesis + (n+1)*epoch)`` and is cut into probe windows of
``window_s`` seconds (the S3 SLA measures error rates over 5-minute intervals, the
default here).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, Final

from plaza.market.errors import MarketInputError

PPM: Final = 1_000_000
PRICE_SCALE: Final = 1_000_000
SERVICES: Final = ("appview", "directory", "hosting", "labeler", "prober", "relay")
UNITS: Final = ("account", "egress_gb", "gb_hour", "request")
UNIT_SET: Final = frozenset(UNITS)
CAPACITY_KEYS: Final = frozenset({"accounts", "gb", "rps"})
DEFAULT_LADDER: Final = ((999_000, 100_000), (990_000, 250_000), (950_000, 1_000_000))
"""S3's credit ladder: below 99.9% -> 10%, below 99% -> 25%, below 95% -> 100%."""


def service(value: Any, what: str = "service") -> str:
    if value not in SERVICES:
        raise MarketInputError(f"{what} must be one of {', '.join(SERVICES)}, got {value!r}")
    return str(value)


@dataclass(frozen=True, slots=True)
class MarketParams:
    """The market's rules of the game, fixed by the ``market.opened`` event.

    ``min_probers`` independent probers must sample a window for it to be judged, and a
    judged window is down when at least ``fault_f + 1`` of them say so. Usage above
    observation by more than ``usage_tolerance_ppm`` is flagged and the excess unpaid.
    A provider is suspended after ``suspend_after`` consecutive failed epochs and
    offboarded after ``offboard_after``; ``probation_epochs`` clean epochs end
    probation. Award weights (``w_*``, ppm, summing to one million) and the half-score
    points ``latency_half_ms`` and ``bond_half`` shape the award score (see
    :mod:`plaza.market.award`).
    """

    genesis_ms: int = 0
    epoch_s: int = 86_400
    window_s: int = 300
    min_probers: int = 3
    fault_f: int = 1
    usage_tolerance_ppm: int = 50_000
    dispute_window_s: int = 7 * 86_400
    max_bids: int = 20
    bid_bond_min: int = 0
    w_price: int = 400_000
    w_reliability: int = 300_000
    w_latency: int = 150_000
    w_bond: int = 150_000
    prior_windows: int = 100
    prior_up_ppm: int = 990_000
    latency_half_ms: int = 400
    bond_half: int = 100_000
    suspend_after: int = 2
    offboard_after: int = 4
    probation_epochs: int = 1
    slash_ppm: int = 100_000

    def __post_init__(self) -> None:
        for fld in fields(self):
            v = getattr(self, fld.name)
            if type(v) is not int or v < 0:
                raise MarketInputError(f"market parameter {fld.name} must be a non-negative int")
        if self.epoch_s <= 0 or self.window_s <= 0 or self.epoch_s % self.window_s:
            raise MarketInputError("epoch_s must be a positive multiple of window_s")
        if self.min_probers < 2 * self.fault_f + 1:
            raise MarketInputError("min_probers must be at least 2*fault_f + 1")
        if self.w_price + self.w_reliability + self.w_latency + self.w_bond != PPM:
            raise MarketInputError("award weights must sum to 1,000,000 ppm")
        if not 0 < self.suspend_after <= self.offboard_after:
            raise MarketInputError("need 0 < suspend_after <= offboard_after")
        for name in ("usage_tolerance_ppm", "prior_up_ppm", "slash_ppm"):
            if getattr(self, name) > PPM:
                raise MarketInputError(f"{name} is at most 1,000,000")

    @property
    def windows_per_epoch(self) -> int:
        return self.epoch_s // self.window_s

    def epoch_of(self, time_ms: int) -> int:
        """The epoch containing ``time_ms`` (-1 before genesis)."""
        if time_ms < self.genesis_ms:
            return -1
        return (time_ms - self.genesis_ms) // (self.epoch_s * 1000)

    def epoch_start(self, epoch: int) -> int:
        return self.genesis_ms + epoch * self.epoch_s * 1000

    def epoch_end(self, epoch: int) -> int:
        return self.epoch_start(epoch + 1)

    def window_of(self, time_ms: int) -> int:
        return (time_ms - self.genesis_ms) // (self.window_s * 1000)

    def to_map(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_map(cls, value: Any) -> MarketParams:
        if not isinstance(value, Mapping):
            raise MarketInputError("market parameters must be a map")
        m: Mapping[str, Any] = value
        known = {fld.name for fld in fields(cls)}
        extra = set(m) - known
        if extra:
            raise MarketInputError(f"unknown market parameters {sorted(extra)}")
        return cls(**{k: m[k] for k in m})
