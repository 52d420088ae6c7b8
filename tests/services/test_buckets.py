"""Token buckets: a burst, then a steady rate, per key; memory bounded by the live keys."""

from __future__ import annotations

import pytest

from plaza.services.buckets import TokenBuckets, address_key


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_then_the_steady_rate() -> None:
    clock = Clock()
    buckets = TokenBuckets(rate_per_s=0.5, burst=3, clock=clock)
    assert [buckets.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a") == pytest.approx(2.0)  # one token every 2 s
    assert buckets.take("b") == 0.0  # another key has its own bucket
    clock.now += 1.0
    assert buckets.take("a") == pytest.approx(1.0)  # refused: half a token so far
    clock.now += 1.0
    assert buckets.take("a") == 0.0
    assert buckets.take("a") > 0


def test_a_clock_stepping_back_refills_nothing() -> None:
    clock = Clock()
    buckets = TokenBuckets(rate_per_s=1.0, burst=1, clock=clock)
    assert buckets.take("a") == 0.0
    clock.now -= 50
    assert buckets.take("a") == pytest.approx(1.0)


def test_refilled_buckets_leave_and_memory_is_bounded() -> None:
    clock = Clock()
    buckets = TokenBuckets(rate_per_s=1.0, burst=2, clock=clock, max_keys=100)
    for i in range(250):
        buckets.take(f"k{i}")
    assert len(buckets) == 100  # the least recently used were forgotten early
    clock.now += 2
    buckets.take("late")
    assert len(buckets) == 1  # every refilled bucket has left


def test_ipv6_clients_are_limited_by_their_64() -> None:
    assert address_key("2001:db8:1:2:aaaa::1") == address_key("2001:db8:1:2:bbbb::9")
    assert address_key("2001:db8:1:3::1") != address_key("2001:db8:1:2::1")
    assert address_key("::ffff:192.0.2.7") == address_key("192.0.2.7") == "192.0.2.7"
    assert address_key("unknown") == "unknown"
