"""Timestamp identifiers (TIDs): record keys and repository revisions.

A TID is a 64-bit integer written as 13 characters of base32-sortable
(``234567abcdefghijklmnopqrstuvwxyz``), so string order equals numeric order. The
top bit is 0, the next 53 bits are microseconds since the Unix epoch and the last
10 bits are a clock identifier that keeps concurrent generators apart.

Theory of operation of :class:`TidClock`. The generator owns the last timestamp it
issued. Each call reads the injected clock and issues ``max(now, last + 1)``, so its
output strictly increases even when the clock stalls, repeats or steps backwards
(NTP corrections, clock smear); when the clock catches up it simply follows it
again. The clock is a callable returning microseconds, so the module stays free of
I/O and tests drive it by hand.

A host shares one generator between all its repositories, so nothing from outside
may move it: a TID another party chose (a repository ``rev`` from an import, say) can
be as large as the TID space, and a generator lifted to it would issue far-future
TIDs, or none at all, to everyone. The floor of one repository's revisions is kept
per repository instead: :func:`tid_after` gives the next TID above that repository's
last ``rev`` without touching any generator.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Final

from plaza.atproto.errors import InvalidSyntaxError
from plaza.atproto.syntax import validate_tid

ALPHABET: Final = "234567abcdefghijklmnopqrstuvwxyz"
TID_LENGTH: Final = 13
MAX_TIMESTAMP: Final = 2**53 - 1
MAX_CLOCK_ID: Final = 2**10 - 1
_INDEX: Final = {c: i for i, c in enumerate(ALPHABET)}


def int_to_tid(value: int) -> str:
    """The TID string of a 63-bit integer."""
    if type(value) is not int or not 0 <= value < 2**63:
        raise InvalidSyntaxError(f"TID integer out of range: {value!r}")
    out = []
    for _ in range(TID_LENGTH):
        value, r = divmod(value, 32)
        out.append(ALPHABET[r])
    return "".join(reversed(out))


def tid_to_int(tid: str) -> int:
    """The integer of a valid TID string."""
    validate_tid(tid)
    value = 0
    for c in tid:
        value = value * 32 + _INDEX[c]
    return value


def encode_tid(timestamp_us: int, clock_id: int) -> str:
    """The TID for ``timestamp_us`` (microseconds since the epoch) and ``clock_id``."""
    if type(timestamp_us) is not int or not 0 <= timestamp_us <= MAX_TIMESTAMP:
        raise InvalidSyntaxError(f"TID timestamp out of range (0 to 2^53-1): {timestamp_us!r}")
    if type(clock_id) is not int or not 0 <= clock_id <= MAX_CLOCK_ID:
        raise InvalidSyntaxError(f"TID clock id out of range (0 to 1023): {clock_id!r}")
    return int_to_tid((timestamp_us << 10) | clock_id)


def decode_tid(tid: str) -> tuple[int, int]:
    """``(timestamp_us, clock_id)`` of a valid TID."""
    value = tid_to_int(tid)
    return value >> 10, value & MAX_CLOCK_ID


def tid_timestamp(tid: str) -> int:
    """The microsecond timestamp carried by a TID (user-chosen: never trust it)."""
    return tid_to_int(tid) >> 10


class TidClock:
    """A strictly increasing TID generator over an injected microsecond clock.

    ``clock`` returns microseconds since the Unix epoch (for example
    ``lambda: time.time_ns() // 1000``); ``clock_id`` (0-1023) should be drawn at
    random per process. ``floor``, when given, is a TID every issued TID exceeds: one
    this host issued, never one another party chose (see the module docstring).
    Safe to share between threads.
    """

    __slots__ = ("_clock", "_last", "_lock", "clock_id")

    def __init__(
        self, clock: Callable[[], int], clock_id: int, *, floor: str | None = None
    ) -> None:
        if type(clock_id) is not int or not 0 <= clock_id <= MAX_CLOCK_ID:
            raise InvalidSyntaxError(f"TID clock id out of range (0 to 1023): {clock_id!r}")
        self._clock = clock
        self.clock_id = clock_id
        self._last = -1
        self._lock = threading.Lock()
        if floor is not None:
            self.observe(floor)

    def observe(self, tid: str) -> None:
        """Make every later TID greater than ``tid`` (one this host issued)."""
        value = tid_to_int(tid)
        with self._lock:
            # Our TID beats ``tid`` when its timestamp is larger, or equal with a larger
            # clock id; the floor is the largest timestamp that does not yet win.
            ts, cid = value >> 10, value & MAX_CLOCK_ID
            floor = ts - 1 if self.clock_id > cid else ts
            self._last = max(self._last, floor)

    def next(self) -> str:
        """A TID greater than every TID this clock issued or observed."""
        now = self._clock()
        if type(now) is not int:
            raise TypeError(f"the TID clock must return int microseconds, got {now!r}")
        with self._lock:
            ts = max(now, self._last + 1)
            if ts > MAX_TIMESTAMP:
                raise InvalidSyntaxError("TID timestamp space exhausted (2^53 microseconds)")
            self._last = ts
        return encode_tid(ts, self.clock_id)


def tid_after(tid: str, now_us: int, clock_id: int) -> str:
    """A TID strictly greater than ``tid``, at ``now_us`` if that is late enough.

    Pure: the next ``rev`` of a repository whose last ``rev`` is ``tid``. Raises
    :class:`~plaza.atproto.errors.InvalidSyntaxError` when no TID follows ``tid``.
    """
    return TidClock(lambda: now_us, clock_id, floor=tid).next()
