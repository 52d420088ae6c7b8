"""The password throttle on its own clock: free tries, doubling waits, a ceiling per
account that slows every address without closing the account, bounded memory."""

from __future__ import annotations

import pytest

from plaza.services.pds.errors import AuthRequiredError, RateLimitedError
from plaza.services.pds.throttle import Backoff, PasswordThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _fail(throttle: PasswordThrottle, address: str, account: str) -> None:
    with pytest.raises(AuthRequiredError), throttle.attempt(address, account):
        raise AuthRequiredError("Invalid identifier or password")


def _closed(throttle: PasswordThrottle, address: str, account: str) -> bool:
    try:
        throttle.check(address, account)
    except RateLimitedError:
        return True
    return False


def test_free_tries_then_doubling_waits_up_to_the_cap() -> None:
    clock = Clock()
    throttle = PasswordThrottle(Backoff(free_failures=2, base_s=1, max_s=4), clock)
    _fail(throttle, "a", "acct")
    assert not _closed(throttle, "a", "acct")
    waits = []
    for _ in range(5):
        _fail(throttle, "a", "acct")
        start = clock.now
        while _closed(throttle, "a", "acct"):
            clock.now += 0.5
        waits.append(clock.now - start)
    assert waits == [1, 2, 4, 4, 4]
    assert not _closed(throttle, "b", "acct")  # another address
    assert not _closed(throttle, "a", "other")  # another account


def test_a_success_clears_the_pair() -> None:
    clock = Clock()
    throttle = PasswordThrottle(Backoff(free_failures=2), clock)
    _fail(throttle, "a", "acct")
    with throttle.attempt("a", "acct"):
        pass
    _fail(throttle, "a", "acct")
    assert not _closed(throttle, "a", "acct")


def test_other_errors_are_not_failures() -> None:
    throttle = PasswordThrottle(Backoff(free_failures=1), Clock())
    with pytest.raises(ValueError), throttle.attempt("a", "acct"):
        raise ValueError("not a password check")
    assert not _closed(throttle, "a", "acct")


def test_the_account_ceiling_gives_each_address_one_free_try() -> None:
    clock = Clock()
    throttle = PasswordThrottle(Backoff(free_failures=3, account_ceiling=4), clock)
    for i in range(4):
        _fail(throttle, f"10.0.0.{i}", "acct")
    assert not any(_closed(throttle, f"10.0.0.{i}", "acct") for i in range(4))
    _fail(throttle, "10.0.0.9", "acct")  # the fifth failure on the account
    assert _closed(throttle, "10.0.0.9", "acct")
    assert not _closed(throttle, "10.0.0.200", "acct")  # a fresh address may still try
    _fail(throttle, "10.0.0.9", "other")  # other accounts keep their free tries
    assert not _closed(throttle, "10.0.0.9", "other")
    clock.now += 900.0  # the window ends: free tries again
    _fail(throttle, "10.0.0.50", "acct")
    assert not _closed(throttle, "10.0.0.50", "acct")


def test_memory_is_bounded_and_idle_records_leave() -> None:
    clock = Clock()
    throttle = PasswordThrottle(Backoff(forget_s=100, account_window_s=100), clock, max_keys=50)
    for i in range(200):
        _fail(throttle, f"a{i}", f"acct{i}")
    assert len(throttle) == 100  # 50 pairs and 50 account windows
    clock.now += 101
    _fail(throttle, "late", "acct")
    assert len(throttle) == 2


def test_backoff_settings_are_checked() -> None:
    with pytest.raises(ValueError):
        Backoff(free_failures=0)
    with pytest.raises(ValueError):
        Backoff(base_s=10, max_s=1)


def test_tries_in_flight_count_against_the_free_tries() -> None:
    clock = Clock()
    throttle = PasswordThrottle(Backoff(free_failures=2, base_s=1), clock)
    with throttle.attempt("a", "acct"), throttle.attempt("a", "acct"):
        with pytest.raises(RateLimitedError), throttle.attempt("a", "acct"):
            pass  # a third overlapping guess
        with throttle.attempt("b", "acct"):  # another address is not held up
            pass
    _fail(throttle, "a", "acct")
    _fail(throttle, "a", "acct")  # the free tries are used up: wait, then one at a time
    clock.now += 1
    with throttle.attempt("a", "acct"):
        assert _closed(throttle, "a", "acct")
    assert not _closed(throttle, "a", "acct")
