"""Fixed-window rate limits for the methods that attract abuse (login, sign-up).

Each limit is ``(count, window_seconds)`` per key (an identifier or a client address).
State is in memory: one PDS is one process, and a restart forgiving everyone is fine.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from plaza.services.pds.errors import RateLimitedError


class RateLimiter:
    """``check(bucket, key)`` counts one hit and raises :class:`RateLimitedError` past the limit."""

    def __init__(
        self, limits: dict[str, tuple[int, int]], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limits = limits
        self.clock = clock
        self._windows: dict[tuple[str, str], tuple[float, int]] = {}

    def check(self, bucket: str, key: str) -> None:
        limit = self.limits.get(bucket)
        if limit is None:
            return
        count, window = limit
        now = self.clock()
        start, hits = self._windows.get((bucket, key), (now, 0))
        if now - start >= window:
            start, hits = now, 0
        if hits >= count:
            retry = int(window - (now - start)) + 1
            raise RateLimitedError(f"Rate Limit Exceeded: try again in {retry} s")
        self._windows[(bucket, key)] = (start, hits + 1)
        if len(self._windows) > 100_000:
            self._sweep(now)

    def _sweep(self, now: float) -> None:
        for k, (start, _) in list(self._windows.items()):
            if now - start >= self.limits.get(k[0], (0, 0))[1]:
                del self._windows[k]
