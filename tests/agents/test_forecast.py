from __future__ import annotations

import numpy as np
import pytest

from plaza.agents.forecast import (
    LoadDistribution,
    LoadWindow,
    decay_weights,
    deseasonalise,
    newsvendor_units,
    seasonal_profile,
    weighted_quantile,
)
from plaza.errors import InvalidInputError

DAY = 48  # half-hour steps
BLOCK = 2  # an hour


def daily(days: int, shape: np.ndarray, level: float = 10.0, start: int = 0) -> np.ndarray:
    """``days`` of load whose step ``s`` (absolute) has factor ``shape[(s // BLOCK) % 24]``."""
    steps = start + np.arange(days * DAY)
    return level * shape[(steps // BLOCK) % shape.size]


SHAPE = np.where(np.arange(24) < 12, 0.5, 1.5)  # quiet first half of the day, busy second


def test_unweighted_quantile_is_a_sample() -> None:
    x = np.arange(1.0, 11.0)
    assert weighted_quantile(x, 0.5) == 5.0
    assert weighted_quantile(x, 1.0) == 10.0
    assert weighted_quantile(x, 0.0) == 1.0
    assert weighted_quantile(np.array([]), 0.5) == 0.0


def test_recent_samples_weigh_more() -> None:
    old_high_new_low = np.array([100.0] * 50 + [1.0] * 50)
    flat = weighted_quantile(old_high_new_low, 0.6)
    recent = weighted_quantile(old_high_new_low, 0.6, half_life_steps=5)
    assert flat == 100.0
    assert recent == 1.0


def test_decay_weights_halve() -> None:
    w = decay_weights(3, 1.0)
    assert w.tolist() == [0.25, 0.5, 1.0]
    with pytest.raises(InvalidInputError):
        decay_weights(3, 0.0)
    with pytest.raises(InvalidInputError):
        weighted_quantile(np.ones(3), 1.5)


def test_load_window_keeps_the_newest() -> None:
    w = LoadWindow(3)
    for v in range(5):
        w.observe(float(v))
    assert w.values().tolist() == [2.0, 3.0, 4.0]
    assert len(w) == 3


def test_profile_recovers_the_daily_shape_at_any_phase() -> None:
    # The window starts mid-day: blocks are counted from absolute step 0, not from it.
    start = 17
    load = daily(7, SHAPE, start=start)
    now = start + load.size - 1
    profile = seasonal_profile(load, now, season_steps=DAY, block_steps=BLOCK, days=7)
    assert profile.shape == (24,)
    assert profile == pytest.approx(SHAPE)
    flat = deseasonalise(load, now, profile, BLOCK)
    assert flat == pytest.approx(np.full(load.size, 10.0))


def test_profile_is_flat_without_three_days() -> None:
    load = daily(2, SHAPE)
    profile = seasonal_profile(load, load.size - 1, season_steps=DAY, block_steps=BLOCK, days=7)
    assert profile.tolist() == [1.0] * 24
    zeros = np.zeros(5 * DAY)
    assert seasonal_profile(zeros, zeros.size - 1, season_steps=DAY, block_steps=BLOCK, days=7)[
        0
    ] == pytest.approx(1.0)


def test_one_odd_day_does_not_bend_the_profile() -> None:
    load = daily(5, SHAPE)
    load[2 * DAY + 10 : 2 * DAY + 14] *= 40.0  # a news spike on day 2
    profile = seasonal_profile(load, load.size - 1, season_steps=DAY, block_steps=BLOCK, days=5)
    assert profile == pytest.approx(SHAPE)


def test_profile_rejects_a_block_that_does_not_divide_the_season() -> None:
    with pytest.raises(InvalidInputError):
        seasonal_profile(np.ones(100), 99, season_steps=48, block_steps=5, days=2)


def test_excess_matches_the_definition() -> None:
    rng = np.random.default_rng(5)
    x = rng.gamma(2.0, 3.0, 200)
    w = rng.uniform(0.1, 1.0, 200)
    dist = LoadDistribution.of(x, w)
    for y in (0.0, 1.5, 6.0, 20.0, 100.0):
        expected = float((w * np.maximum(x - y, 0.0)).sum() / w.sum())
        assert float(dist.excess(y)) == pytest.approx(expected)
    assert dist.max == pytest.approx(x.max())
    pts = dist.breakpoints(8)
    assert pts[0] == 0.0 and pts[-1] == pytest.approx(x.max())
    assert np.all(np.diff(pts) > 0)


def test_distribution_refuses_bad_input() -> None:
    with pytest.raises(InvalidInputError):
        LoadDistribution.of(np.array([]))
    with pytest.raises(InvalidInputError):
        LoadDistribution.of(np.ones(3), np.array([1.0, -1.0, 1.0]))


def test_newsvendor_units_is_the_quantile_rule_for_whole_loads() -> None:
    # 60% of the time 50, 40% 10: unit 50 is busy 60% of the time, unit 51 never.
    x = np.array([10.0] * 40 + [50.0] * 60)
    dist = LoadDistribution.of(x)
    assert newsvendor_units(dist, 0.4, 1.0) == 50
    assert newsvendor_units(dist, 0.61, 1.0) == 10


def test_newsvendor_units_counts_a_mostly_busy_fractional_unit() -> None:
    # A steady load of 1.8: the second unit is busy 80% of the time, so it pays at 0.4
    # (a quantile rule, flooring 1.8, would keep one and buy on-demand for the rest).
    dist = LoadDistribution.of(np.full(50, 1.8))
    assert newsvendor_units(dist, 0.4, 1.0) == 2
    assert newsvendor_units(dist, 0.9, 1.0) == 1
    assert newsvendor_units(LoadDistribution.of(np.full(5, 0.1)), 0.4, 1.0) == 0


def test_newsvendor_units_averages_over_the_profile() -> None:
    # Level 10 with the profile: 5 half of the day, 15 the other half. Units 6..15 are
    # busy half the time: worth it at 0.4, not at 0.6.
    dist = LoadDistribution.of(np.full(10, 10.0))
    assert newsvendor_units(dist, 0.4, 1.0, SHAPE) == 15
    assert newsvendor_units(dist, 0.6, 1.0, SHAPE) == 5
    with pytest.raises(InvalidInputError):
        newsvendor_units(dist, 0.4, 0.0)


def test_newsvendor_quantile_is_the_critical_ratio_of_the_prices() -> None:
    from plaza.agents.forecast import newsvendor_quantile

    assert newsvendor_quantile(1.0, 2.5, 288) == pytest.approx(0.6)
    # Both costs accrue per step of the term: its length cancels, and so does the step.
    assert newsvendor_quantile(1.0 / 2, 2.5 / 2, 48) == pytest.approx(0.6)
    assert newsvendor_quantile(3.0, 2.5, 24) == 0.0  # on-demand is cheaper: reserve nothing
    with pytest.raises(InvalidInputError):
        newsvendor_quantile(0.0, 2.5, 24)
