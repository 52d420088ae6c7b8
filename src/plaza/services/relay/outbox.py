"""The relay's own event stream: sequence numbers, group commit, delivery.

Theory of operation. Handling an event from a host changes the relay's state in memory
and notes here what must become durable: the events the relay emits (:meth:`emit`, which
hands out the next sequence number and encodes the frame once), the accounts they
changed (:meth:`account`) and the host cursors they advanced (:meth:`cursor`). Every
few milliseconds :meth:`flush` writes all of it in one transaction
(:meth:`RelayStore.flush`) and only then *publishes* the events: they go into an
in-memory tail and every waiting subscriber wakes up. Nothing unflushed is ever sent,
so a crash loses only events whose host cursors were not stored either: the hosts send
them again after a restart and they get the numbers that follow the last stored one —
no gap and no duplicate in the relay's sequence. A failed flush keeps its batch and the
next flush retries it with whatever came since.

Subscribers ask "what comes after seq N?" (:meth:`read_after`): from the tail when it
reaches back far enough, else from the store, so backfill and live delivery are one
loop, as in the PDS's sequencer.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from typing import Any, Final

from plaza.errors import PlazaError
from plaza.services.relay.frames import encode_frame, encode_wire_frame
from plaza.services.relay.store import AccountState, Batch, EventRow, RelayStore

log = logging.getLogger("plaza.relay")

TAIL_SIZE: Final = 20_000
READ_PAGE: Final = 500


class Outbox:
    """Sequence numbers, the pending batch and the published tail (see module doc)."""

    def __init__(self, store: RelayStore, *, tail_size: int = TAIL_SIZE) -> None:
        self.store = store
        _, newest = store.seq_bounds()
        self._last = newest or 0
        self._published = self._last
        self._tail: collections.deque[EventRow] = collections.deque(maxlen=tail_size)
        self._changed = asyncio.Event()
        self._batch = Batch()
        self.flushes = 0
        self.flush_failures = 0

    @property
    def last_seq(self) -> int:
        """The newest published sequence number (0 for none): where live readers start."""
        return self._published

    @property
    def pending(self) -> int:
        return len(self._batch.events)

    def emit(self, did: str, kind: str, body: dict[str, Any], *, wire: bool = False) -> int:
        """Queue an event (``body`` without ``seq``); return its sequence number.
        ``wire``: ``body`` is made of a frame's :attr:`~.frames.Frame.wire` values
        (links as bytes) and plain new ones, written with :func:`encode_wire_frame`."""
        self._last += 1
        body["seq"] = self._last
        frame = encode_wire_frame(kind, body) if wire else encode_frame(kind, body)
        self._batch.events.append(EventRow(self._last, did, kind, frame))
        return self._last

    def account(self, state: AccountState) -> None:
        self._batch.accounts[state.did] = state

    def cursor(self, hostname: str, seq: int) -> None:
        self._batch.cursors[hostname] = seq

    def flush(self) -> int:
        """Write the pending batch and publish its events; return how many. A storage
        failure is logged and the batch kept for the next call."""
        batch = self._batch
        if not batch:
            return 0
        # Accounts are the live objects, written as they stand: the state after every
        # event handled so far, all of which is in this batch.
        self._batch = Batch()
        try:
            self.store.flush(batch)
        except PlazaError as exc:
            self.flush_failures += 1
            log.error("relay: writing %d events failed, will retry: %s", len(batch.events), exc)
            self._batch = _merge(batch, self._batch)
            return 0
        self.flushes += 1
        if batch.events:
            self._tail.extend(batch.events)
            self._published = batch.events[-1].seq
            changed, self._changed = self._changed, asyncio.Event()
            changed.set()
        return len(batch.events)

    def read_after(self, seq: int, limit: int = READ_PAGE) -> list[EventRow]:
        """Up to ``limit`` published events after ``seq``, in order."""
        tail = self._tail
        if tail and tail[0].seq <= seq + 1:
            if tail[-1].seq <= seq:
                return []
            out: list[EventRow] = []
            for row in reversed(tail):
                if row.seq <= seq:
                    break
                out.append(row)
            out.reverse()
            return out[:limit]
        if seq >= self._published:
            return []
        return [r for r in self.store.events_after(seq, limit) if r.seq <= self._published]

    async def wait_after(self, seq: int) -> None:
        """Return once an event newer than ``seq`` has been published."""
        while self._published <= seq:
            await self._changed.wait()

    def bounds(self) -> tuple[int | None, int | None]:
        """The oldest and newest published sequence numbers kept (None, None if none)."""
        oldest, newest = self.store.seq_bounds()
        if newest is None:
            return None, None
        return oldest, min(newest, self._published)


def _merge(old: Batch, new: Batch) -> Batch:
    old.events.extend(new.events)
    old.accounts.update(new.accounts)
    old.cursors.update(new.cursors)
    return old
