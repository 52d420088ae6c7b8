from __future__ import annotations

import pytest

from plaza.web.concentration import bar_chart, concentration


def test_shares_hhi_and_nakamoto() -> None:
    c = concentration({"a": 60, "b": 30, "c": 10})
    assert c.total == 100
    assert c.shares == pytest.approx({"a": 0.6, "b": 0.3, "c": 0.1})
    assert (c.largest, c.hhi, c.nakamoto) == (pytest.approx(0.6), 3600 + 900 + 100, 1)


def test_nakamoto_needs_more_than_half() -> None:
    assert concentration({"a": 50, "b": 50}).nakamoto == 2
    assert concentration({p: 1 for p in "abcdefghij"}).nakamoto == 6
    assert concentration({p: 1 for p in "abcdefghij"}).hhi == 1000


def test_nothing_placed_is_no_concentration() -> None:
    c = concentration({"a": 0})
    assert (c.total, c.shares, c.hhi, c.nakamoto) == (0, {}, 0, 0)


def test_bars_are_as_wide_as_their_value() -> None:
    chart = bar_chart([("a", 1.0, "100%"), ("b", 0.5, "50%"), ("c", 7.0, "clamped")])
    full, half, clamped = (b.width for b in chart.bars)
    assert half == pytest.approx(full / 2) and clamped == full
    assert [b.y for b in chart.bars] == [0, 30, 60] and chart.height == 90
