from __future__ import annotations

import numpy as np
import pytest

from plaza.agents.forecast import LoadWindow, decay_weights, weighted_quantile
from plaza.errors import InvalidInputError


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
