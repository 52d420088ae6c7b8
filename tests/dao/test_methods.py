"""Majority (Aragon) and conviction voting: worked examples derived by hand."""

from __future__ import annotations

import math

import pytest

from plaza.dao.conviction import (
    ConvictionParams,
    conviction_at,
    grow,
    max_conviction,
    threshold,
)
from plaza.dao.majority import majority


class TestMajority:
    def test_simple_pass(self) -> None:
        # E = 10, s = 50%, p = 30%. 3 yes, 2 no: participation 5/10 >= 30%;
        # support (1e6-5e5)*3 = 1.5e6 > 5e5*2 = 1e6. Passes.
        r = majority(3, 2, 0, 10, support_ppm=500_000, participation_ppm=300_000)
        assert r.passed and r.support_met and r.participation_met

    def test_exact_tie_fails(self) -> None:
        # 4 yes, 4 no: 5e5*4 > 5e5*4 is false.
        r = majority(4, 4, 0, 10, support_ppm=500_000, participation_ppm=300_000)
        assert r.participation_met and not r.support_met and not r.passed

    def test_participation_boundary_counts_abstain(self) -> None:
        # 1 yes, 0 no, 2 abstain of 10: 3e6 >= 3e5*10 exactly -> met; support 1 > 0 -> met.
        r = majority(1, 0, 2, 10, support_ppm=500_000, participation_ppm=300_000)
        assert r.passed
        r = majority(1, 0, 1, 10, support_ppm=500_000, participation_ppm=300_000)
        assert not r.participation_met

    def test_two_thirds_is_strict(self) -> None:
        # s = 666667 ppm (just over 2/3). 2 yes, 1 no: 333333*2 = 666666 > 666667? No.
        r = majority(2, 1, 0, 3, support_ppm=666_667, participation_ppm=0)
        assert not r.passed
        r = majority(3, 1, 0, 4, support_ppm=666_667, participation_ppm=0)
        assert r.passed  # 333333*3 = 999999 > 666667

    def test_early_close(self) -> None:
        # E = 10, s = 50%. 6 yes: 5e5*6 = 3e6 > 5e5*(0 + 4 remaining) = 2e6 -> early.
        # 5 yes: 2.5e6 > 2.5e6 is false -> not early (5 no-votes could still tie it).
        assert majority(6, 0, 0, 10, support_ppm=500_000, participation_ppm=300_000).early
        assert not majority(5, 0, 0, 10, support_ppm=500_000, participation_ppm=300_000).early

    def test_bad_parameters(self) -> None:
        with pytest.raises(ValueError):
            majority(1, 0, 0, 1, support_ppm=1_000_000, participation_ppm=0)
        with pytest.raises(ValueError):
            majority(-1, 0, 0, 1, support_ppm=0, participation_ppm=0)


HOUR = 3600


class TestConviction:
    # half-life = step = 1 hour, so a = 1/2: each hour conviction halves, then gains x.
    p = ConvictionParams(half_life_s=HOUR, step_s=HOUR, beta_ppm=200_000, rho_ppm=10_000)

    def test_decay_from_half_life(self) -> None:
        assert self.p.decay == 0.5
        # Gardens UI: T_half = step / log2(1/a); a week's half-life with hourly steps.
        week = ConvictionParams(half_life_s=7 * 24 * HOUR, step_s=HOUR)
        assert math.isclose(HOUR / math.log2(1 / week.decay), 7 * 24 * HOUR)

    def test_growth_by_hand(self) -> None:
        # y(t) = a^t y0 + x (1 - a^t)/(1 - a) with a = 1/2, x = 100, y0 = 0:
        # t=1: 100 * (1/2)/(1/2) = 100; t=2: 100 * (3/4)/(1/2) = 150; t=3: 175; limit 200.
        assert grow(0, 100, 1 * HOUR, self.p) == pytest.approx(100)
        assert grow(0, 100, 2 * HOUR, self.p) == pytest.approx(150)
        assert grow(0, 100, 3 * HOUR, self.p) == pytest.approx(175)
        assert max_conviction(100, self.p) == pytest.approx(200)
        # Decay with nothing staked: 175 -> 87.5 after an hour.
        assert grow(175, 0, HOUR, self.p) == pytest.approx(87.5)

    def test_closed_form_equals_stepping(self) -> None:
        y = 0.0
        for _ in range(5):
            y = 0.5 * y + 40  # the recurrence y <- a y + x
        assert grow(0, 40, 5 * HOUR, self.p) == pytest.approx(y)

    def test_history(self) -> None:
        # 100 points for 2 hours (150), then 0 for 1 hour (75), then 40 for 1 hour:
        # 0.5 * 75 + 40 * (0.5 / 0.5) = 77.5.
        changes = [(0, 100), (2 * HOUR * 1000, 0), (3 * HOUR * 1000, 40)]
        assert conviction_at(changes, 4 * HOUR * 1000, self.p) == pytest.approx(77.5)
        assert conviction_at([], 10, self.p) == 0.0

    def test_threshold_by_hand(self) -> None:
        # rho = 0.01, S = 1000, a = 1/2, beta = 0.2, r/R = 0.1:
        # 0.01 * 1000 / (0.5 * (0.2 - 0.1)^2) = 10 / 0.005 = 2000.
        assert threshold(100, 1000, 1000, self.p) == pytest.approx(2000)
        # Asking for beta or more of the pool can never pass.
        assert threshold(200, 1000, 1000, self.p) == math.inf
        assert threshold(1, 0, 1000, self.p) == math.inf
        # The floor: min_points / (1 - a).
        floored = ConvictionParams(half_life_s=HOUR, step_s=HOUR, rho_ppm=0, min_points=30)
        assert threshold(1, 1000, 1000, floored) == pytest.approx(60)
