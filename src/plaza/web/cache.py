"""A short-lived cache of public reads, with one upstream call per key at a time.

The web client asks the same public questions over and over: every visitor to
Governance reads the same proposals, every visitor to Network the same providers, and
anonymous readers the same profiles. :class:`PublicCache` keeps each answer for
``ttl_s`` seconds (2 by default: a page may be that much behind the ledger) and, while
an answer is being fetched, makes every other request for it wait on that one fetch
(no stampede of identical calls under load). Failures are not kept: the requests
waiting on a failed fetch see its error, the next one tries again. Only data anyone
may read goes in here, never an answer given to a member's access token. A TTL of 0
turns it off (every read goes upstream).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

TTL_S = 2.0
MAX_ENTRIES = 2048


class PublicCache:
    def __init__(
        self,
        ttl_s: float = TTL_S,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = MAX_ENTRIES,
    ) -> None:
        self.ttl_s = ttl_s
        self.clock = clock
        self.max_entries = max_entries
        self._kept: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()
        self._pending: dict[Hashable, asyncio.Future[Any]] = {}
        self.hits = 0
        self.misses = 0

    def clear(self) -> None:
        """Forget every answer (after this client wrote something upstream)."""
        self._kept.clear()

    async def get(self, key: Hashable, fetch: Callable[[], Awaitable[Any]]) -> Any:
        """The answer for ``key``: kept, being fetched, or fetched now."""
        if self.ttl_s <= 0:
            return await fetch()
        kept = self._kept.get(key)
        if kept is not None and self.clock() < kept[0]:
            self.hits += 1
            return kept[1]
        pending = self._pending.get(key)
        if pending is not None:
            self.hits += 1
            return await asyncio.shield(pending)
        self.misses += 1
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            value = await fetch()
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning when nobody waits
            raise
        finally:
            self._pending.pop(key, None)
        future.set_result(value)
        self._kept[key] = (self.clock() + self.ttl_s, value)
        self._kept.move_to_end(key)
        while len(self._kept) > self.max_entries:
            self._kept.popitem(last=False)
        return value
