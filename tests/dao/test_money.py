"""Amounts in the constitution's currency: typed decimals <-> integer minor units, for
any ``minor_digits`` (EUR 2, JPY 0, BHD 3)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plaza.dao.constitution import default_constitution
from plaza.dao.money import Currency, currency_for, default_currency
from plaza.errors import InvalidInputError

EUR, JPY, BHD = Currency("EUR", 2), Currency("JPY", 0), Currency("BHD", 3)


@pytest.mark.parametrize(
    ("currency", "text", "minor"),
    [
        (EUR, "12.50", 1250),
        (EUR, "5000.00", 500_000),
        (EUR, "7", 700),
        (JPY, "5000", 5000),
        (JPY, "0", 0),
        (BHD, "12.345", 12_345),
        (BHD, "1.5", 1500),
    ],
    ids=["eur", "eur-thousands", "eur-whole", "jpy", "jpy-zero", "bhd", "bhd-short"],
)
def test_parse_takes_up_to_the_currencys_digits(currency: Currency, text: str, minor: int) -> None:
    assert currency.parse(text) == minor


@pytest.mark.parametrize(
    ("currency", "text"),
    [(EUR, "1.234"), (JPY, "12.5"), (BHD, "0.0001"), (EUR, "-1"), (EUR, "ten"), (EUR, "NaN"),
     (JPY, "Infinity")],
    ids=["eur-3", "jpy-1", "bhd-4", "negative", "word", "nan", "infinity"],
)  # fmt: skip
def test_parse_refuses_what_is_not_an_amount_of_the_currency(currency: Currency, text: str) -> None:
    with pytest.raises(InvalidInputError):
        currency.parse(text)


def test_the_error_names_the_currencys_digits() -> None:
    with pytest.raises(InvalidInputError, match=r"more than 0 decimals \(JPY\)"):
        JPY.parse("12.5")


@pytest.mark.parametrize(
    ("currency", "minor", "text"),
    [(EUR, 3560, "35.60 EUR"), (EUR, -5, "-0.05 EUR"), (JPY, 3560, "3560 JPY"),
     (BHD, 3560, "3.560 BHD"), (BHD, 7, "0.007 BHD")],
    ids=["eur", "eur-negative", "jpy", "bhd", "bhd-small"],
)  # fmt: skip
def test_format_prints_minor_units_as_a_decimal_with_the_code(
    currency: Currency, minor: int, text: str
) -> None:
    assert currency.format(minor) == text


@given(st.integers(min_value=0, max_value=10**15), st.sampled_from([EUR, JPY, BHD]))
def test_what_is_printed_parses_back(minor: int, currency: Currency) -> None:
    assert currency.parse(currency.amount(minor)) == minor


@pytest.mark.parametrize(
    ("currency", "units", "minor"),
    [(EUR, 0.3 * 3, 90), (EUR, 0.001, 1), (JPY, 12.2, 13), (BHD, 1.0005, 1001), (EUR, -1.0, 0)],
    ids=["float-noise", "eur-rounds-up", "jpy-rounds-up", "bhd", "negative"],
)  # fmt: skip
def test_a_cost_in_units_rounds_up_to_minor_units(
    currency: Currency, units: float, minor: int
) -> None:
    assert currency.from_units(units) == minor
    assert currency.to_units(currency.per_unit * 7) == 7.0


def test_the_constitution_is_the_source() -> None:
    c = default_constitution().model_copy(update={"currency": "BHD", "minor_digits": 3})
    assert Currency.of(c) == BHD
    assert currency_for("EUR", c) == BHD  # the DAO's constitution wins
    assert currency_for("JPY", None) == Currency("JPY", default_currency().minor_digits)
    assert default_currency() == Currency.of(default_constitution())
