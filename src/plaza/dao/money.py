"""Amounts of the DAO's currency: what people type and read, and the minor units inside.

Every amount Plaza stores is an integer of the currency's minor units, and the
constitution says how many digits a minor unit has (``minor_digits``: 2 for EUR, 0 for
JPY, 3 for BHD). :class:`Currency` is the one place that turns a typed decimal into
minor units and minor units back into text, exactly (``Decimal`` and integer
arithmetic, never floats), for whatever the constitution says.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from plaza.dao.constitution import Constitution, default_constitution
from plaza.dao.treasury import format_amount
from plaza.errors import InvalidInputError


@dataclass(frozen=True)
class Currency:
    """A currency ``code`` whose minor unit is ``10 ** -minor_digits`` of a unit."""

    code: str
    minor_digits: int

    @classmethod
    def of(cls, constitution: Constitution) -> Currency:
        """The currency a constitution names, with its minor digits."""
        return cls(constitution.currency, constitution.minor_digits)

    @property
    def per_unit(self) -> int:
        """Minor units in one unit of the currency (100 for EUR, 1 for JPY)."""
        return int(10**self.minor_digits)

    def parse(self, text: str) -> int:
        """``"12.50"`` -> minor units (``1250`` for EUR); refuses negatives, non-numbers and
        more decimals than the currency has, with :class:`InvalidInputError`."""
        try:
            value = Decimal(text.strip()) * self.per_unit
        except InvalidOperation as exc:
            raise InvalidInputError(f"{text!r} is not an amount") from exc
        if not value.is_finite():
            raise InvalidInputError(f"{text!r} is not an amount")
        if value != value.to_integral_value() or value < 0:
            raise InvalidInputError(
                f"{text!r} has more than {self.minor_digits} decimals ({self.code}) or is negative"
            )
        return int(value)

    def amount(self, minor: int) -> str:
        """Minor units as a decimal string: ``3560`` -> ``"35.60"`` (EUR)."""
        return format_amount(minor, self.minor_digits)

    def format(self, minor: int) -> str:
        """Minor units with the currency code: ``3560`` -> ``"35.60 EUR"``."""
        return f"{self.amount(minor)} {self.code}"

    def to_units(self, minor: int) -> float:
        """Minor units as a (float) number of currency units, for planning arithmetic."""
        return minor / self.per_unit

    def from_units(self, units: float) -> int:
        """A (float) cost in currency units as minor units, rounded up, so that rounding
        never understates a cost (a millionth of a minor unit of float noise is not
        rounded up)."""
        return max(0, math.ceil(float(units) * self.per_unit - 1e-6))


@functools.cache
def default_currency() -> Currency:
    """The currency of the constitution shipped with Plaza (where there is no DAO)."""
    return Currency.of(default_constitution())


def currency_for(code: str, constitution: Constitution | None) -> Currency:
    """The currency of a DAO's ``constitution``; where there is no DAO, ``code`` (a
    market's or mandate's currency) with the shipped constitution's minor digits."""
    if constitution is not None:
        return Currency.of(constitution)
    return Currency(code or default_constitution().currency, default_currency().minor_digits)
