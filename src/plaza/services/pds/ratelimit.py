"""Fixed-window rate limits for the methods that attract abuse (login, sign-up).

Each limit is ``(count, window_seconds)`` per key (an account or a client address).
State is in memory: one PDS is one process, and a restart forgiving everyone is fine.

Theory of operation. A bucket's windows sit in one ordered map in the order they
opened; the clock is monotonic and every window of a bucket lasts as long, so the
expired ones are always a prefix of that order. Each check first drops that prefix
(each window is dropped once: amortized O(1) a check), then counts the hit. A bucket
never holds more than ``max_keys`` windows: past that the oldest is forgotten early,
which can only ever forgive, never block.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from plaza.services.pds.errors import RateLimitedError

MAX_KEYS = 1_000_000


class RateLimiter:
    """``check(bucket, key)`` counts one hit and raises :class:`RateLimitedError` past the limit."""

    def __init__(
        self,
        limits: dict[str, tuple[int, int]],
        clock: Callable[[], float] = time.monotonic,
        *,
        max_keys: int = MAX_KEYS,
    ) -> None:
        self.limits = limits
        self.clock = clock
        self.max_keys = max_keys
        # bucket -> key -> [window start, hits], in window-start order
        self._windows: dict[str, OrderedDict[str, list[float]]] = {}

    def __len__(self) -> int:
        return sum(len(w) for w in self._windows.values())

    def _current(self, bucket: str, window: float, now: float) -> OrderedDict[str, list[float]]:
        """The bucket's windows, the expired ones dropped."""
        windows = self._windows.get(bucket)
        if windows is None:
            windows = self._windows[bucket] = OrderedDict()
        while windows:
            first = windows[next(iter(windows))]
            if now - first[0] < window:
                break
            windows.popitem(last=False)
        return windows

    def exceeded(self, bucket: str, key: str) -> bool:
        """True if ``key`` has used up its limit in ``bucket`` (counts nothing)."""
        limit = self.limits.get(bucket)
        if limit is None:
            return False
        count, window = limit
        entry = self._current(bucket, window, self.clock()).get(key)
        return entry is not None and entry[1] >= count

    def check(self, bucket: str, key: str) -> None:
        limit = self.limits.get(bucket)
        if limit is None:
            return
        count, window = limit
        now = self.clock()
        windows = self._current(bucket, window, now)
        entry = windows.get(key)
        if entry is None:
            if len(windows) >= self.max_keys:
                windows.popitem(last=False)
            windows[key] = [now, 1]
            return
        if entry[1] >= count:
            retry = int(window - (now - entry[0])) + 1
            raise RateLimitedError(f"Rate Limit Exceeded: try again in {retry} s")
        entry[1] += 1
