from __future__ import annotations

import numpy as np
import pytest

from plaza.agents.headroom import calibrate, ewma, step_ahead, step_quantile
from plaza.errors import InvalidInputError


def test_calibrate_finds_the_smallest_factor_within_the_share() -> None:
    actual = np.array([10.0, 10.0, 10.0, 20.0])
    predicted = np.full(4, 10.0)
    w = np.ones(4)
    # Nothing may be left unserved: the factor covers the largest ratio.
    assert calibrate(actual, predicted, w, 0.0) == pytest.approx(2.0, abs=1e-6)
    # A tenth of the 50 units may be: 20 - 10 a <= 5, a = 1.5.
    assert calibrate(actual, predicted, w, 0.1) == pytest.approx(1.5, abs=1e-6)
    with pytest.raises(InvalidInputError):
        calibrate(actual, np.zeros(4), w, 0.1)


def test_ewma_halves_the_weight_every_half_life() -> None:
    y = ewma(np.array([0.0, 8.0]), 1.0)
    assert y.tolist() == [0.0, 4.0]


def test_the_bound_grows_when_the_errors_grow() -> None:
    rng = np.random.default_rng(1)
    calm = rng.normal(100, 2, 400).clip(0)
    wild = np.concatenate([calm, rng.normal(100, 30, 100).clip(0)])
    flat = np.ones(24)
    a = step_ahead(calm, calm.size - 1, flat, 1, unserved=0.001, half_life_steps=48)
    b = step_ahead(wild, wild.size - 1, flat, 1, unserved=0.001, half_life_steps=48)
    # The calm bound is a few percent above the load; the wild one far above.
    assert 100 < a.next < 112
    assert b.alpha > 1.3 * a.alpha
    assert a.next == pytest.approx(a.bounds[-1]) and a.bounds.size == calm.size
    # Out of sample the calm bound leaves little of the load unserved.
    future = rng.normal(100, 2, 2000).clip(0)
    assert np.maximum(future - a.next, 0).sum() < 0.002 * future.sum()


def test_the_step_quantile_is_calibrated_on_the_history_and_follows_the_errors() -> None:
    rng = np.random.default_rng(2)
    flat = np.ones(1)
    calm = rng.normal(100, 2, 600).clip(0)
    q = step_quantile(calm, calm.size - 1, flat, 1, q=0.1, half_life_steps=100.0)
    # About the 10% quantile of the next step: below the mean, above the mean less 3 sd.
    assert 94.0 < q < 100.0
    # A low quantile falls when the errors grow (online: the recent ratios weigh most).
    wild = np.concatenate([calm, rng.normal(100, 30, 200).clip(0)])
    q_wild = step_quantile(wild, wild.size - 1, flat, 1, q=0.1, half_life_steps=100.0)
    assert q_wild < q - 10
    # Quantiles are ordered; out-of-range ones are refused.
    hi = step_quantile(calm, calm.size - 1, flat, 1, q=0.9, half_life_steps=100.0)
    assert hi > q
    with pytest.raises(InvalidInputError):
        step_quantile(calm, calm.size - 1, flat, 1, q=1.5, half_life_steps=100.0)
