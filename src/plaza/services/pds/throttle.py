"""Backoff on failed password checks, per client address and account: slow guessing
down without letting anyone lock an account's owner out.

Theory of operation. Each (address, account) pair that has failed a password check
has a record: its failures in a row and the moment it may try again. Up to
``free_failures`` tries in a row may fail without waiting; the failure that uses up
the last free try closes the pair for ``base_s``, and each further one for twice as
long as the one before (up to ``max_s``). A try while closed is refused with
:class:`RateLimitedError` before any password is looked at. A success clears the
pair's record. Nothing here ever closes an account as a whole: its owner, from an
address that has not been failing, signs in.

Password checks run off the event loop, so tries can overlap. A try still being
checked counts against the pair's free tries as if it had failed: a pair with ``k``
tries left has at most ``k`` checks in flight (one, once it has used its free tries
and waited), and a try beyond that is refused with the base wait.

An attacker spreading guesses over many addresses is met by a ceiling per account:
past ``account_ceiling`` failures on one account within ``account_window_s``, from
any addresses, every pair of that account has a single free try — each address backs
off from its first wrong guess. The owner's correct password still succeeds at once;
a typo costs them ``base_s``.

Memory: records sit in ordered maps, oldest first; those idle longer than
``forget_s`` (and ceiling windows past their end) are dropped from the front as new
ones arrive (amortized O(1)), and past ``max_keys`` the oldest is forgotten early,
which can only forgive. The clock is injected.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Final

from plaza.services.pds.errors import AuthRequiredError, RateLimitedError

MAX_KEYS: Final = 1_000_000
ADMIN: Final = "#admin"  # the account key of the PDS's admin login (no identifier has '#')


@dataclass(frozen=True)
class Backoff:
    """The throttle's parameters; see the module docstring."""

    free_failures: int = 5  # at least 1
    base_s: float = 1.0
    max_s: float = 900.0
    account_ceiling: int = 100
    account_window_s: float = 900.0
    forget_s: float = 24 * 3600.0

    def __post_init__(self) -> None:
        if self.free_failures < 1 or not 0 < self.base_s <= self.max_s:
            raise ValueError("free_failures must be at least 1 and 0 < base_s <= max_s")


DEFAULT_BACKOFF: Final = Backoff()


class PasswordThrottle:
    """``attempt(address, account)`` around a password check: refuses while the pair is
    backing off, counts an :class:`AuthRequiredError` as a failure, clears on success."""

    def __init__(
        self,
        backoff: Backoff = DEFAULT_BACKOFF,
        clock: Callable[[], float] = time.time,
        *,
        max_keys: int = MAX_KEYS,
    ) -> None:
        self.backoff = backoff
        self.clock = clock
        self.max_keys = max_keys
        # (address, account) -> [failures in a row, open again at, last failure at]
        self._pairs: OrderedDict[tuple[str, str], list[float]] = OrderedDict()
        # account -> [window start, failures], in window-start order
        self._accounts: OrderedDict[str, list[float]] = OrderedDict()
        self._checking: dict[tuple[str, str], int] = {}  # tries in flight per pair

    def __len__(self) -> int:
        return len(self._pairs) + len(self._accounts)

    def check(self, address: str, account: str) -> None:
        """:class:`RateLimitedError` while ``address`` backs off from ``account``, or
        has as many tries in flight as it has tries left."""
        key = (address, account)
        record = self._pairs.get(key)
        failures, wait = (0.0, 0.0) if record is None else (record[0], record[1] - self.clock())
        if wait <= 0 and self._checking.get(key, 0) >= max(self._free(account) - failures, 1):
            wait = self.backoff.base_s
        if wait > 0:
            raise RateLimitedError(
                "Too many failed sign-ins to this account from this address; "
                f"try again in {math.ceil(wait)} s"
            )

    def failed(self, address: str, account: str) -> None:
        now = self.clock()
        self._expire(now)
        b = self.backoff
        self._count_account(account, now)
        free = self._free(account)
        key = (address, account)
        record = self._pairs.pop(key, None) or [0.0, now, now]
        record[0] += 1
        record[2] = now
        over = record[0] - free
        if over >= 0:
            record[1] = now + min(b.base_s * 2.0 ** min(over, 64), b.max_s)
        if len(self._pairs) >= self.max_keys:
            self._pairs.popitem(last=False)
        self._pairs[key] = record  # last: the most recent failure

    def succeeded(self, address: str, account: str) -> None:
        self._pairs.pop((address, account), None)

    @contextmanager
    def attempt(self, address: str, account: str) -> Iterator[None]:
        """Around one password check of ``account`` from ``address``."""
        self.check(address, account)
        key = (address, account)
        self._checking[key] = self._checking.get(key, 0) + 1
        try:
            yield
        except AuthRequiredError:
            self.failed(address, account)
            raise
        else:
            self.succeeded(address, account)
        finally:
            left = self._checking.pop(key) - 1
            if left:
                self._checking[key] = left

    def _free(self, account: str) -> int:
        """Free tries per pair of ``account``: fewer past the account's ceiling."""
        window = self._accounts.get(account)
        over = window is not None and window[1] > self.backoff.account_ceiling
        return 1 if over else self.backoff.free_failures

    def _count_account(self, account: str, now: float) -> None:
        window = self._accounts.get(account)
        if window is None:
            if len(self._accounts) >= self.max_keys:
                self._accounts.popitem(last=False)
            window = self._accounts[account] = [now, 0]
        window[1] += 1

    def _expire(self, now: float) -> None:
        b = self.backoff
        while self._pairs:
            record = self._pairs[next(iter(self._pairs))]
            if now - record[2] < b.forget_s or record[1] > now:
                break
            self._pairs.popitem(last=False)
        while self._accounts:
            window = self._accounts[next(iter(self._accounts))]
            if now - window[0] < b.account_window_s:
                break
            self._accounts.popitem(last=False)
