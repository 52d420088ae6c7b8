"""Metering: signed usage reports, independent observations, and what gets paid.

A provider signs one ``usage`` document per contract and epoch: how much of each
metered unit it delivered (accounts hosted, GB-hours stored, requests served, GB of
egress). Independent observers — registered probers, never the provider itself — sign
``observation`` documents for the same contract and epoch from what they can see (the
relay's mirror counts accounts and bytes; probers count the reads they made).

:func:`cross_check` decides the *verified* quantity of each unit. With no observation
the report is taken as it is (and marked unobserved). Otherwise the observed value is
the median of the observers' values (the lower middle for an even count); a report no
more than ``tolerance_ppm`` above it is paid as reported, since meters disagree a
little; a report further above is *flagged* and paid only the observed value — the
excess is not paid. Accounts are also capped by the contracted quantity.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ConfigDict

from plaza.market.errors import MarketInputError
from plaza.market.fields import Counts, Epoch, MarketId, Model, only, parse
from plaza.market.params import PPM, UNIT_SET, UNITS
from plaza.market.signed import body_of, check_doc


@dataclass(frozen=True, slots=True)
class UsageReport:
    """A validated ``usage`` (by the provider) or ``observation`` (by an observer)."""

    signer: str
    contract: str
    epoch: int
    usage: Mapping[str, int]
    nonce: str


class UsageDoc(Model):
    """The body of a ``usage`` or ``observation`` document."""

    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")
    contract: MarketId
    epoch: Epoch
    usage: Counts


def parse_usage(doc: Any, doc_type: str = "usage") -> UsageReport:
    """Validate the fields of a ``usage`` or ``observation`` document."""
    signer, nonce = check_doc(doc, doc_type)
    body = parse(UsageDoc, body_of(doc), doc_type)
    only(body.usage, UNIT_SET, f"{doc_type}.usage")
    return UsageReport(
        signer=signer,
        contract=body.contract,
        epoch=body.epoch,
        usage=dict(sorted(body.usage.items())),
        nonce=nonce,
    )


@dataclass(frozen=True, slots=True)
class Verified:
    """One unit's reported, observed and verified quantity."""

    unit: str
    reported: int
    observed: int | None
    verified: int
    flagged: bool

    def to_map(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "unit": self.unit,
            "reported": self.reported,
            "verified": self.verified,
            "flagged": self.flagged,
        }
        if self.observed is not None:
            out["observed"] = self.observed
        return out


def lower_median(values: list[int]) -> int:
    s = sorted(values)
    return s[(len(s) - 1) // 2]


def cross_check(
    reported: Mapping[str, int],
    observations: list[Mapping[str, int]],
    *,
    tolerance_ppm: int,
    max_accounts: int,
) -> tuple[Verified, ...]:
    """The verified quantity of every unit (see the module docstring)."""
    if not 0 <= tolerance_ppm <= PPM:
        raise MarketInputError("tolerance must be in [0, 1000000] ppm")
    out: list[Verified] = []
    for unit in UNITS:
        rep = reported.get(unit, 0)
        seen = [o[unit] for o in observations if unit in o]
        if not seen:
            obs: int | None = None
            verified, flagged = rep, False
        else:
            obs = lower_median(seen)
            limit = obs + obs * tolerance_ppm // PPM
            flagged = rep > limit
            verified = obs if flagged else rep
        if unit == "account" and verified > max_accounts:
            verified = max_accounts
            flagged = flagged or rep > max_accounts
        if rep or obs:
            out.append(Verified(unit, rep, obs, verified, flagged))
    return tuple(out)
