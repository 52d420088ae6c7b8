"""Scam signals across posts: the same text from many new accounts, and burst rates.

:class:`Crowd` remembers, for a sliding window, which accounts posted each text (by a
hash of its normalised, lower-cased form) and when each account was first seen and
posted. :meth:`Crowd.observe` records one post and says how many new accounts posted
the same text in the window and how many posts its author made in the last minute.
Sans-IO: the caller passes the time; memory is bounded by pruning the window.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Final

WINDOW_S: Final = 3600.0
NEW_ACCOUNT_S: Final = 7 * 24 * 3600.0
BURST_S: Final = 60.0
MAX_ACCOUNTS: Final = 200_000


@dataclass(frozen=True)
class Crowding:
    same_text_new_accounts: int  # distinct new accounts that posted this text lately
    burst: int  # the author's posts in the last BURST_S seconds, this one included


class Crowd:
    def __init__(self) -> None:
        self._first_seen: OrderedDict[str, float] = OrderedDict()
        self._texts: dict[bytes, dict[str, float]] = {}
        self._order: deque[tuple[float, bytes, str]] = deque()
        self._recent: dict[str, deque[float]] = {}

    def _prune(self, now: float) -> None:
        while self._order and self._order[0][0] < now - WINDOW_S:
            at, digest, did = self._order.popleft()
            posters = self._texts.get(digest)
            if posters is not None and posters.get(did) == at:
                del posters[did]
                if not posters:
                    del self._texts[digest]
        while len(self._first_seen) > MAX_ACCOUNTS:
            did, _ = self._first_seen.popitem(last=False)
            self._recent.pop(did, None)

    def observe(self, did: str, text: str, now: float, created: float | None = None) -> Crowding:
        """Record a post by ``did`` at ``now`` (``created``: the account's creation time
        when known, else its first post seen here)."""
        self._prune(now)
        first = self._first_seen.setdefault(did, now if created is None else created)
        digest = hashlib.sha256(" ".join(text.lower().split()).encode()).digest()[:16]
        posters = self._texts.setdefault(digest, {})
        posters[did] = now
        self._order.append((now, digest, did))
        recent = self._recent.setdefault(did, deque())
        recent.append(now)
        while recent and recent[0] < now - BURST_S:
            recent.popleft()
        new = sum(1 for d in posters if now - self._first_seen.get(d, first) < NEW_ACCOUNT_S)
        return Crowding(new, len(recent))
