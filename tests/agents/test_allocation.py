from __future__ import annotations

import numpy as np

from plaza.agents.allocation import allocations, spread_units


def test_spread_units_respects_share_and_caps() -> None:
    x = spread_units(
        100.0,
        have=np.zeros(10),
        cap=np.full(10, 15.0),
        accepting=np.ones(10, dtype=bool),
        total_after=100.0,
        max_share=0.2,
        unit=1.0,
    )
    assert x.sum() == 100.0
    assert x.max() <= 15.0
    assert np.all(x == np.floor(x))


def test_spread_units_falls_back_to_the_caps_when_the_share_cannot_hold_it() -> None:
    # Two providers may sell; 20% each cannot hold 10 units, the caps can.
    accepting = np.array([True, True, False, False, False])
    x = spread_units(
        10.0,
        have=np.zeros(5),
        cap=np.full(5, 8.0),
        accepting=accepting,
        total_after=10.0,
        max_share=0.2,
        unit=1.0,
    )
    assert x.sum() == 10.0
    assert x[~accepting].sum() == 0.0
    assert allocations(x) == [(0, 5.0), (1, 5.0)]
