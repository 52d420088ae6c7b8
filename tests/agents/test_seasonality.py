from __future__ import annotations

import numpy as np
import pytest

from plaza.agents.seasonality import autocorrelation, block_sums, detect_season
from plaza.errors import InvalidInputError

DAY = 96  # 15-minute steps
WEEK = 7 * DAY


def _series(days: int, *, daily: float, weekly: float, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(days * DAY)
    day = 1 + daily * np.sin(2 * np.pi * t / DAY)
    week = np.where((t // DAY) % 7 >= 5, 1 - weekly, 1.0)
    return rng.poisson(50 * day * week).astype(float)


def _season(x: np.ndarray) -> int:
    return detect_season(x, x.size - 1, block_steps=4, candidates=(DAY, WEEK)).steps


def test_a_daily_cycle_is_found() -> None:
    assert _season(_series(28, daily=0.6, weekly=0.0)) == DAY


def test_a_weekly_cycle_is_found_when_it_explains_more() -> None:
    assert _season(_series(28, daily=0.05, weekly=0.6)) == WEEK


def test_a_week_needs_three_weeks_of_history() -> None:
    assert _season(_series(14, daily=0.05, weekly=0.6)) != WEEK


def test_noise_has_no_season() -> None:
    rng = np.random.default_rng(4)
    assert _season(rng.poisson(50, 28 * DAY).astype(float)) == 0


def test_bursts_do_not_hide_a_daily_cycle() -> None:
    x = _series(21, daily=0.5, weekly=0.0)
    for start in (300, 900, 1500):
        x[start : start + 20] *= 15  # flash crowds
    assert _season(x) == DAY


def test_block_sums_align_to_absolute_blocks() -> None:
    x = np.arange(10, dtype=float)  # steps 5..14: one whole block, steps 8..11
    assert block_sums(x, 14, 4).tolist() == [3 + 4 + 5 + 6]
    assert block_sums(x, 15, 4).tolist() == [2 + 3 + 4 + 5, 6 + 7 + 8 + 9]  # steps 6..15
    assert autocorrelation(np.ones(3), 5) == 0.0


def test_seasons_must_be_whole_blocks() -> None:
    with pytest.raises(InvalidInputError):
        detect_season(np.ones(100), 99, block_steps=4, candidates=(10,))
