"""Token buckets per client: a steady rate with room for a burst, for requests that
cost the service something lasting (a new DID in the directory).

Theory of operation. Each key (a client address, IPv6 by its /64, see
:func:`address_key`) has a bucket of up to ``burst`` tokens that refills at
``rate_per_s``; a request spends one token, and a request that finds none is refused
with the time until the next one. A bucket is stored only while it is below full: the
buckets sit in one ordered map, least recently used first, and each call drops the
oldest while it has refilled (each bucket is dropped once: amortized O(1) a call).
Past ``max_keys`` buckets the least recently used is forgotten early, which can only
ever forgive. The clock is injected; one that steps back is treated as standing still.
"""

from __future__ import annotations

import ipaddress
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Final

MAX_KEYS: Final = 100_000


def address_key(host: str) -> str:
    """The key a client address is limited under: an IPv6 address by its /64 (one
    subscriber's usual allocation), anything else as it is."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


class TokenBuckets:
    """``take(key)`` spends one of ``key``'s tokens: 0.0 if there was one, else the
    seconds until there will be."""

    def __init__(
        self,
        rate_per_s: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
        *,
        max_keys: int = MAX_KEYS,
    ) -> None:
        if rate_per_s <= 0 or burst < 1:
            raise ValueError("a token bucket needs a positive rate and a burst of at least 1")
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.clock = clock
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, at

    def __len__(self) -> int:
        return len(self._buckets)

    def _level(self, tokens: float, at: float, now: float) -> float:
        return min(float(self.burst), tokens + max(0.0, now - at) * self.rate_per_s)

    def take(self, key: str) -> float:
        now = self.clock()
        entry = self._buckets.pop(key, None)
        tokens = float(self.burst) if entry is None else self._level(*entry, now)
        while self._buckets:
            oldest = next(iter(self._buckets))
            if self._level(*self._buckets[oldest], now) < self.burst:
                break
            del self._buckets[oldest]
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self.rate_per_s
        if len(self._buckets) >= self.max_keys:
            self._buckets.popitem(last=False)
        self._buckets[key] = (tokens - 1.0, now)
        return 0.0
