"""The market's write path: sync, build at the head, check, append, apply.

:class:`Recorder` owns the :class:`~plaza.market.state.MarketState` a market replays
from its ledger and is the one place that appends to that ledger. Each
:meth:`Recorder.record` catches up with the ledger (other writers, such as the DAO,
append too), builds the event at the head of what the states have applied, lets the
market state (and, when connected, the DAO's projection through the
:class:`~plaza.market.dao_port.DaoPort`) check it — which raises the specific error and
changes nothing if it is not acceptable — appends it, and only then applies it.

Several events can be written as one atomic run (:meth:`Recorder.atomic`): they are
applied to the states as they are built and appended at once; if the append (or
anything in the run) fails the states are rebuilt from the ledger, so they never hold
what the ledger does not. A lost race for the ledger head is retried on the new head
by :meth:`Recorder.retry`.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Final, TypeVar

from plaza.atproto.crypto import PrivateKey
from plaza.ledger import EMPTY_HEAD, AppendConflictError, Event, Head, Ledger
from plaza.market.dao_port import DaoPort
from plaza.market.data import Commit
from plaza.market.errors import MarketInputError
from plaza.market.state import MarketState

T = TypeVar("T")
ATTEMPTS: Final = 5


class Recorder:
    """Records market events in ``ledger``, signed by the operator; see the module
    docstring. ``dao``: the DAO sharing the ledger, whose projection checks and applies
    every event too."""

    def __init__(
        self,
        ledger: Ledger,
        *,
        operator_did: str,
        operator_key: PrivateKey | None,
        dao: DaoPort | None,
    ) -> None:
        self.ledger = ledger
        self.operator_did = operator_did
        self._key = operator_key
        self._dao = dao
        self.state = MarketState()
        self._lock = threading.RLock()
        self._batch: list[Event] | None = None
        # Events are built at the head of what the states have applied, never at the
        # store's head: a concurrent writer then makes the append fail (and the command
        # retry after catching up) instead of slipping an unseen event past the states.
        self._head = EMPTY_HEAD
        self.sync()

    def sync(self) -> None:
        """Apply the ledger's events the states have not seen yet."""
        with self._lock:
            if self._dao is not None:
                self._dao.sync()
            for ev in self.ledger.read(self.state.last_seq + 1):
                self.state.apply(ev)
                self._head = Head(ev.seq + 1, ev.hash, ev.time)

    def reload(self) -> None:
        """Rebuild the states from the whole ledger."""
        with self._lock:
            if self._dao is not None:
                self._dao.reload()
            self.state = MarketState()
            self._head = EMPTY_HEAD
            self.sync()

    def record(self, type_: str, payload: dict[str, Any], now_ms: int) -> Event:
        """Check, append and apply one event (joining the atomic run in progress, if
        any). Raises what the check raises, or :class:`AppendConflictError` when the race
        for the head was lost ``ATTEMPTS`` times."""
        with self._lock:
            if self._batch is not None:
                head = self._head
                if self._batch:
                    last = self._batch[-1]
                    head = Head(last.seq + 1, last.hash, last.time)
                ev = self._build(type_, payload, now_ms, head)
                self._commit(ev, self._prepare(ev))
                self._batch.append(ev)
                return ev
            for _ in range(ATTEMPTS):
                self.sync()
                ev = self._build(type_, payload, now_ms, self._head)
                commit = self._prepare(ev)
                try:
                    self.ledger.append(ev)
                except AppendConflictError:
                    continue
                self._commit(ev, commit)
                self._head = Head(ev.seq + 1, ev.hash, ev.time)
                return ev
            raise AppendConflictError(f"lost the race for the ledger head {ATTEMPTS} times")

    def precheck(self, type_: str, payload: dict[str, Any], now_ms: int) -> None:
        """Check an event before starting an atomic run that writes it (so a rejected
        document costs no rebuild)."""
        with self._lock:
            self.sync()
            self.state.check(self._build(type_, payload, now_ms, self._head))

    @contextmanager
    def atomic(self) -> Iterator[list[Event]]:
        """Record several events as one atomic run (see the module docstring); a run
        started inside another joins it."""
        with self._lock:
            if self._batch is not None:
                yield self._batch
                return
            self.sync()
            self._batch = []
            try:
                yield self._batch
                if self._batch:
                    self.ledger.append_many(self._batch)
                    last = self._batch[-1]
                    self._head = Head(last.seq + 1, last.hash, last.time)
            except BaseException:
                self._batch = None
                self.reload()
                raise
            finally:
                self._batch = None

    def retry(self, command: Callable[[], T]) -> T:
        """Run ``command``, again on the new head when its atomic run lost the race for
        the ledger (the states were rebuilt, so it decides afresh). Inside an atomic run
        the conflict is the run's to handle, so it is raised."""
        for attempt in range(ATTEMPTS):
            try:
                return command()
            except AppendConflictError:
                if attempt == ATTEMPTS - 1 or self._batch is not None:
                    raise
                time.sleep(random.uniform(0, 0.005 * (attempt + 1)))
        raise AssertionError("unreachable")

    def _signer(self) -> PrivateKey:
        if self._key is None:
            raise MarketInputError("this market handle is read-only (no operator key)")
        return self._key

    def _build(self, type_: str, payload: dict[str, Any], now_ms: int, head: Head) -> Event:
        return self.ledger.build(
            self._signer(),
            author_did=self.operator_did,
            type=type_,
            payload=payload,
            time=now_ms,
            head=head,
        )

    def _prepare(self, ev: Event) -> Commit:
        """Check ``ev`` against every state; return the function that applies it."""
        commit = self.state.prepare(ev)
        if self._dao is not None:
            self._dao.check(ev)
        return commit

    def _commit(self, ev: Event, commit: Commit) -> None:
        commit()
        if self._dao is not None:
            self._dao.apply(ev)
