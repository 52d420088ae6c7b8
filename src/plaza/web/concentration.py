"""How concentrated the network is, from each provider's count of accounts (sans-IO).

- share: a provider's accounts over all accounts;
- HHI (Herfindahl-Hirschman index): the sum of squared percentage shares, 0..10000
  (the mandate's ``hhi_ceiling`` uses the same scale);
- Nakamoto coefficient: the fewest providers that together hold more than half of all
  accounts (0 when there are none).

:func:`bar_chart` lays out a horizontal bar chart as plain numbers that a template
draws as inline SVG (no script, every label escaped by the template).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Concentration:
    total: int
    shares: dict[str, float]  # provider -> share, 0..1
    largest: float
    hhi: int
    nakamoto: int


def concentration(accounts: Mapping[str, int]) -> Concentration:
    total = sum(n for n in accounts.values() if n > 0)
    if total == 0:
        return Concentration(0, {}, 0.0, 0, 0)
    shares = {p: n / total for p, n in accounts.items() if n > 0}
    ordered = sorted(shares.values(), reverse=True)
    hhi = round(sum((s * 100) ** 2 for s in ordered))
    held, nakamoto = 0.0, 0
    for s in ordered:
        held += s
        nakamoto += 1
        if held > 0.5:
            break
    return Concentration(total, shares, ordered[0], hhi, nakamoto)


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    text: str
    y: int
    width: float


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    label_width: int
    bars: list[Bar]


def bar_chart(
    rows: list[tuple[str, float, str]], *, width: int = 560, bar: int = 22, gap: int = 8
) -> Chart:
    """Bars for ``(label, value 0..1, text)`` rows, each as wide as its value."""
    label_width = 200
    room = width - label_width - 70
    bars = [
        Bar(label, value, text, i * (bar + gap), max(0.0, min(1.0, value)) * room)
        for i, (label, value, text) in enumerate(rows)
    ]
    return Chart(width, max(bar, len(rows) * (bar + gap)), label_width, bars)
