from __future__ import annotations

import numpy as np
import pytest

from plaza.sim import SimError
from plaza.sim.synthetic import STEP_SECONDS, synthetic_trace, synthetic_values
from plaza.sim.trace import resample


def test_the_same_seed_and_index_give_the_same_series() -> None:
    a = synthetic_values(7, 2, days=3)
    b = synthetic_values(7, 2, days=3)
    assert np.array_equal(a, b)
    assert a.size == 3 * 86_400 // STEP_SECONDS
    # Another index or seed is another series; each is drawn from its own generator.
    assert not np.array_equal(a, synthetic_values(7, 3, days=3))
    assert not np.array_equal(a, synthetic_values(8, 2, days=3))


def test_series_are_loads_with_a_daily_cycle() -> None:
    t = synthetic_trace(1, 0, days=14)
    assert t.name == "synthetic-1-0"
    assert t.step_seconds == STEP_SECONDS
    assert (t.values >= 0).all() and t.values.sum() > 0
    hourly = resample(t, 3600).values
    by_hour = hourly[: 14 * 24].reshape(14, 24)
    # The busiest hour of the day is busier than the quietest one on most days.
    assert np.median(by_hour.max(axis=1) / np.maximum(by_hour.min(axis=1), 1)) > 1.5


@pytest.mark.parametrize(("seed", "index", "days"), [(-1, 0, 3), (0, -1, 3), (0, 0, 1)])
def test_bad_parameters_are_refused(seed: int, index: int, days: int) -> None:
    with pytest.raises(SimError):
        synthetic_values(seed, index, days=days)
