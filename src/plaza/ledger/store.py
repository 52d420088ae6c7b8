"""Event stores: where a ledger's bytes live. One abstract contract, several backends.

A store is deliberately dumb about signatures (the :class:`~plaza.ledger.ledger.Ledger`
checks those before it appends) but strict about position: an append must continue the
log exactly where it ends — the first event's ``seq`` equals the current size and its
``prev_hash`` equals the hash of the last event — and the whole run is written
atomically or not at all. Two writers that built an event for the same position race;
the loser gets :class:`~plaza.ledger.errors.AppendConflictError` and the winner's event
stays. Every backend (:class:`MemoryEventStore` here, ``SqlEventStore`` for SQLite and
PostgreSQL) passes the same conformance tests (tests/ledger/test_store_conformance.py).
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from plaza.ledger.checkpoint import Checkpoint
from plaza.ledger.errors import AppendConflictError, EventNotFoundError, InvalidEventError
from plaza.ledger.event import GENESIS_PREV, Event


@dataclass(frozen=True, slots=True)
class Head:
    """Where the log ends: ``size`` events, the last of which hashes to ``hash``
    (:data:`~plaza.ledger.event.GENESIS_PREV` when empty) and has time ``time``. The next
    event has ``seq == size``, ``prev_hash == hash`` and ``time >= time``."""

    size: int
    hash: bytes
    time: int = 0


EMPTY_HEAD = Head(0, GENESIS_PREV, 0)


def check_run(events: Sequence[Event], head: Head) -> None:
    """Raise unless ``events`` continue the log at ``head`` as one contiguous chain."""
    if not events:
        raise InvalidEventError("nothing to append")
    first = events[0]
    if first.seq < head.size:
        raise AppendConflictError(
            f"position {first.seq} is already taken: the log has {head.size} events; "
            "rebuild the event at the new head and retry",
            seq=first.seq,
            head=head.size,
        )
    if first.seq > head.size:
        raise InvalidEventError(f"event {first.seq} leaves a gap: the next position is {head.size}")
    prev, time = head.hash, head.time
    for i, ev in enumerate(events):
        if ev.seq != first.seq + i:
            raise InvalidEventError(f"events to append are not contiguous at seq {ev.seq}")
        if ev.prev_hash != prev:
            raise AppendConflictError(
                f"event {ev.seq} does not link to the hash of event {ev.seq - 1}: "
                "it was built on a different history",
                seq=ev.seq,
                head=head.size,
            )
        if ev.time < time:
            raise InvalidEventError(
                f"event {ev.seq} is timed {ev.time}, before its predecessor ({time}): "
                "ledger time never runs backwards"
            )
        prev, time = ev.hash, ev.time


class EventStore(ABC):
    """The storage contract every ledger backend meets."""

    @abstractmethod
    def head(self) -> Head:
        """The current end of the log."""

    @abstractmethod
    def append(self, events: Sequence[Event]) -> Head:
        """Atomically append a contiguous run that continues the log; return the new head.

        Raises :class:`AppendConflictError` if the position is taken (or the run was built
        on another history) and :class:`InvalidEventError` if it leaves a gap; in both
        cases nothing is written.
        """

    @abstractmethod
    def read_raw(self, start: int = 0, stop: int | None = None) -> Iterator[tuple[int, bytes]]:
        """Stored ``(seq, bytes)`` for ``start <= seq < stop``, in order, undecoded."""

    @abstractmethod
    def hashes(self, start: int = 0, stop: int | None = None) -> list[bytes]:
        """Event hashes for ``start <= seq < stop``, in order."""

    @abstractmethod
    def add_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Store a checkpoint; a different checkpoint at the same size is a conflict."""

    @abstractmethod
    def checkpoints(self) -> list[Checkpoint]:
        """Every stored checkpoint, by increasing size."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (no-op by default)."""

    def read(self, start: int = 0, stop: int | None = None) -> Iterator[Event]:
        """Decoded events for ``start <= seq < stop``."""
        for _, raw in self.read_raw(start, stop):
            yield Event.decode(raw)

    def get(self, seq: int) -> Event:
        for ev in self.read(seq, seq + 1):
            return ev
        raise EventNotFoundError(f"no event at seq {seq}")

    def __len__(self) -> int:
        return self.head().size

    def latest_checkpoint(self) -> Checkpoint | None:
        cps = self.checkpoints()
        return cps[-1] if cps else None


class MemoryEventStore(EventStore):
    """Events in a Python list; thread-safe. The simulator runs the real ledger on it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._raw: list[bytes] = []
        self._hashes: list[bytes] = []
        self._time = 0
        self._checkpoints: dict[int, Checkpoint] = {}

    def head(self) -> Head:
        with self._lock:
            return self._head()

    def _head(self) -> Head:
        return Head(len(self._raw), self._hashes[-1], self._time) if self._raw else EMPTY_HEAD

    def append(self, events: Sequence[Event]) -> Head:
        with self._lock:
            check_run(events, self._head())
            self._raw.extend(ev.raw for ev in events)
            self._hashes.extend(ev.hash for ev in events)
            self._time = events[-1].time
            return self._head()

    def read_raw(self, start: int = 0, stop: int | None = None) -> Iterator[tuple[int, bytes]]:
        with self._lock:
            chunk = self._raw[start:stop]
        for i, raw in enumerate(chunk):
            yield start + i, raw

    def hashes(self, start: int = 0, stop: int | None = None) -> list[bytes]:
        with self._lock:
            return self._hashes[start:stop]

    def add_checkpoint(self, checkpoint: Checkpoint) -> None:
        with self._lock:
            old = self._checkpoints.get(checkpoint.size)
            if old is not None and old != checkpoint:
                raise AppendConflictError(
                    f"a different checkpoint exists at size {checkpoint.size}"
                )
            self._checkpoints[checkpoint.size] = checkpoint

    def checkpoints(self) -> list[Checkpoint]:
        with self._lock:
            return [self._checkpoints[k] for k in sorted(self._checkpoints)]

    def tamper(self, seq: int, raw: bytes) -> None:
        """Overwrite stored bytes without any check — for tests of verification only."""
        with self._lock:
            self._raw[seq] = raw
