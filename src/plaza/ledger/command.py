"""The command core: how a package turns a decision into ledger events, once for all.

Theory of operation
-------------------

A package (the DAO, the market) keeps its state as a
:class:`~plaza.ledger.replay.Projection`: ``check(event)`` raises if the event is not
legal now and changes nothing, ``apply(event)`` checks and then changes the state. A
:class:`Commands` core owns one such state over one log (a
:class:`~plaza.ledger.ledger.Ledger`) and records events for it in five steps:

1. **sync** — apply the events other writers appended since the state's head;
2. **build** — sign the next event at the *state's* head (never the store's: an event is
   only ever checked against a state that holds its predecessor);
3. **check** — the state raises the package's own error and nothing changes;
4. **append** — the ledger verifies the signature and appends; if another writer took
   the position first, the store raises :class:`~plaza.ledger.errors.AppendConflictError`
   and nothing was written;
5. **apply** — only an appended event changes the state.

A lost race is the one failure that is retried: the core waits a jittered, growing
pause (:class:`Retry`), syncs, and builds again on the new head — so the retry decides
afresh on the state other writers left. Every other error propagates untouched.

**Batches.** :meth:`Commands.run` runs a command that records several events as one
atomic run (a market step and the DAO action that pays for it). Inside the run each
event is built on the previous one and applied to the state at once, so later steps see
earlier ones; at the end the whole run is appended in one transaction. If the append
loses the race, or the command raises after recording, the state is rebuilt from the
log (the core holds a factory for a fresh state) and, on a lost race, the whole command
runs again. The state therefore never holds an event the log does not.
:meth:`Commands.record` called while a run is open joins that run, so helpers that
record one event work inside and outside a batch alike.

:meth:`Commands.check` builds and checks an event without writing it.

**Pre-signed events.** :meth:`Commands.submit` takes an event someone else built and
signed (an HTTP write path): it is built for one position, so it is checked, appended
and applied, and a lost race is the caller's to retry.

A package declares how its state evolves in one table of typed handlers
(:class:`~plaza.ledger.handlers.HandlerTable`); the core does not care how the state is
written, only that it is a projection.

Example::

    core = Commands(ledger, DaoState)          # replays the log into DaoState()
    core.record(signer, "dao.member.vouched", {"member": did}, now)

    def fund(batch: Batch) -> None:            # two events, one atomic append
        batch.record(op, "market.escrow.funded", {...}, now)
        batch.record(op, "dao.action.executed", {...}, now)
    core.run(fund)
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from plaza.atproto.crypto import PrivateKey
from plaza.ledger.errors import AppendConflictError
from plaza.ledger.event import Event
from plaza.ledger.keystore import Signer
from plaza.ledger.replay import Projection
from plaza.ledger.store import EMPTY_HEAD, Head

__all__ = ["RETRY", "Batch", "Commands", "Log", "Retry", "head_after"]

P = TypeVar("P", bound=Projection)
T = TypeVar("T")


class Log(Protocol):
    """What the core needs of a ledger (:class:`~plaza.ledger.ledger.Ledger` is one)."""

    def head(self) -> Head: ...

    def read(self, start: int = 0, stop: int | None = None) -> Iterator[Event]: ...

    def get(self, seq: int) -> Event: ...

    def build(
        self,
        key: PrivateKey,
        *,
        author_did: str,
        type: str,
        payload: dict[str, Any],
        time: int,
        head: Head | None = None,
    ) -> Event: ...

    def verify(self, event: Event) -> None: ...

    def append(self, event: Event) -> Head: ...

    def append_many(self, events: Sequence[Event]) -> Head: ...


@dataclass(frozen=True, slots=True)
class Retry:
    """The one retry policy for lost append races: up to ``attempts`` tries, pausing
    before try ``n + 1`` for a uniformly random time in ``[0, min(cap_s, base_s * 2**n))``.

    Writers that collided once would collide again in lockstep; the random pause lets
    one through. ``sleep`` and ``jitter`` (a source of floats in ``[0, 1)``) are
    injectable so tests neither wait nor depend on chance.
    """

    attempts: int = 32
    base_s: float = 0.001
    cap_s: float = 0.05
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)
    jitter: Callable[[], float] = field(default=random.random, compare=False)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("a retry policy needs at least one attempt")

    def pause(self, attempt: int) -> None:
        """Wait after losing try number ``attempt`` (counted from 0)."""
        self.sleep(self.jitter() * min(self.cap_s, self.base_s * 2**attempt))


RETRY = Retry()
"""The default policy: 32 tries, pauses growing from about 1 ms up to 50 ms."""


def build_at(
    log: Log, head: Head, signer: Signer, type_: str, payload: Mapping[str, Any], *, now: int
) -> Event:
    """The event ``signer`` signs at ``head`` of ``log``: the one way the core builds."""
    return log.build(
        signer.key,
        author_did=signer.did,
        type=type_,
        payload=dict(payload),
        time=now,
        head=head,
    )


def head_after(event: Event) -> Head:
    """The head of a log whose last event is ``event``."""
    return Head(event.seq + 1, event.hash, event.time)


class Batch:
    """An atomic run being recorded inside :meth:`Commands.run`."""

    def __init__(self, core: Commands[Any], head: Head) -> None:
        self._core = core
        self.head = head
        self.events: list[Event] = []

    def record(self, signer: Signer, type_: str, payload: Mapping[str, Any], now: int) -> Event:
        """Build the next event of the run, check it and apply it to the state at once
        (it is appended with the rest of the run)."""
        ev = build_at(self._core.log, self.head, signer, type_, payload, now=now)
        self._core.state.apply(ev)
        self.events.append(ev)
        self.head = head_after(ev)
        return ev


class Commands(Generic[P]):
    """The command core over one log and the state replayed from it (see the module
    docstring). ``fresh`` makes an empty state; the core replays the log into it now
    and again whenever it must rebuild. Thread-safe: commands on one core run one at
    a time.

    ``position`` (optional) reads the seq of the last event the state applied (-1 when
    none): with it the core follows a state that is also applied to outside the core
    (one state shared by two writers in a process) instead of applying an event twice.

    With ``replay=False`` the core keeps no state: it never reads events, builds at the
    store's head, and its state (``fresh()``) should accept everything — a bare writer
    such as :meth:`~plaza.ledger.ledger.Ledger.record`.
    """

    def __init__(
        self,
        log: Log,
        fresh: Callable[[], P],
        *,
        retry: Retry = RETRY,
        replay: bool = True,
        position: Callable[[P], int] | None = None,
    ) -> None:
        self.log = log
        self.retry = retry
        self._fresh = fresh
        self._replay = replay
        self._position = position
        self._state = fresh()
        self._head = EMPTY_HEAD
        self._lock = threading.RLock()
        self._batch: Batch | None = None
        self.sync()

    @property
    def state(self) -> P:
        """The current state. :meth:`reload` replaces the object: do not hold on to it
        across commands."""
        return self._state

    @property
    def head(self) -> Head:
        """Where the state ends: the position the next event is built for."""
        return self._head

    # -- reading ---------------------------------------------------------------------
    def sync(self) -> int:
        """Apply the events other writers appended; return how many."""
        with self._lock:
            if not self._replay:
                self._head = self.log.head()
                return 0
            if self._position is not None:
                self._follow(self._position(self._state))
            n = 0
            for ev in self.log.read(self._head.size):
                self._state.apply(ev)
                self._head = head_after(ev)
                n += 1
            return n

    def reload(self) -> None:
        """Rebuild the state from the whole log."""
        with self._lock:
            self._state = self._fresh()
            self._head = EMPTY_HEAD
            self.sync()

    # -- writing ---------------------------------------------------------------------
    def record(self, signer: Signer, type_: str, payload: Mapping[str, Any], now: int) -> Event:
        """Sync, build, check, append and apply one event by ``signer`` (timed ``now``,
        raised to the head's time if earlier); retry on a lost race per the policy.

        Inside an open :meth:`run` the event joins that run instead. Raises the state's
        error if the event is not legal (nothing changes), or the last
        :class:`AppendConflictError` if every attempt lost.
        """
        with self._lock:
            if self._batch is not None:
                return self._batch.record(signer, type_, payload, now=now)
            last: AppendConflictError | None = None
            for attempt in range(self.retry.attempts):
                self.sync()
                ev = build_at(self.log, self._head, signer, type_, payload, now=now)
                self._state.check(ev)
                try:
                    self.log.append(ev)
                except AppendConflictError as exc:
                    last = exc
                    self._lost(attempt)
                    continue
                self._advance(ev)
                return ev
            assert last is not None
            raise last

    def check(self, signer: Signer, type_: str, payload: Mapping[str, Any], now: int) -> Event:
        """Sync, build and check the event :meth:`record` would write, without writing
        it; return it (a caller checks a document before a costly batch). Inside an open
        run the event is built on the run's head."""
        with self._lock:
            if self._batch is None:
                self.sync()
            head = self._batch.head if self._batch is not None else self._head
            ev = build_at(self.log, head, signer, type_, payload, now=now)
            self._state.check(ev)
            return ev

    def run(self, command: Callable[[Batch], T]) -> T:
        """Run ``command`` with a :class:`Batch`; append what it recorded as one atomic
        run and return its result. On a lost race the state is rebuilt and the command
        runs again (per the retry policy); if the command raises, the state is rebuilt
        and the error propagates with nothing appended. A run inside a run joins it."""
        with self._lock:
            if self._batch is not None:
                return command(self._batch)
            last: AppendConflictError | None = None
            for attempt in range(self.retry.attempts):
                self.sync()
                batch = Batch(self, self._head)
                self._batch = batch
                try:
                    result = command(batch)
                    if batch.events:
                        self.log.append_many(batch.events)
                except AppendConflictError as exc:
                    self._batch = None
                    if batch.events:
                        self.reload()
                    last = exc
                    self._lost(attempt)
                    continue
                except BaseException:
                    self._batch = None
                    if batch.events:
                        self.reload()
                    raise
                self._batch = None
                if batch.events:
                    self._head = batch.head
                return result
            assert last is not None
            raise last

    def submit(self, event: Event) -> Event:
        """Check, append and apply an event someone else built and signed.

        Order matters: position first (a stale or replayed event raises
        :class:`AppendConflictError`), then the signature (authentication before any
        rule is evaluated), then the state's rules. Losing the append race also raises
        :class:`AppendConflictError`, after the core has synced. Not retried: the
        event's author must rebuild it.
        """
        with self._lock:
            self.sync()
            self.require_position(event)
            self.log.verify(event)
            self._state.check(event)
            try:
                self.log.append(event)
            except AppendConflictError:
                self.sync()
                raise
            self._advance(event)
            return event

    def require_position(self, event: Event) -> None:
        """Raise :class:`AppendConflictError` unless ``event`` is built for the head."""
        if event.seq != self._head.size:
            raise AppendConflictError(
                f"event {event.seq} was built for another position: "
                f"the log has {self._head.size} events",
                seq=event.seq,
                head=self._head.size,
            )

    def _follow(self, seq: int) -> None:
        if seq + 1 != self._head.size:
            self._head = EMPTY_HEAD if seq < 0 else head_after(self.log.get(seq))

    def _lost(self, attempt: int) -> None:
        if attempt + 1 < self.retry.attempts:
            self.retry.pause(attempt)

    def _advance(self, ev: Event) -> None:
        if self._replay:
            self._state.apply(ev)
        self._head = head_after(ev)
