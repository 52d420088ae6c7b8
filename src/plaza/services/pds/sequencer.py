"""The persisted, ordered event log behind ``com.atproto.sync.subscribeRepos``.

Theory of operation. Every repository change and every identity or account change gets
the next sequence number and is written, as the exact WebSocket frame it will be sent
as, to the store inside the same transaction as the change itself: an event exists if
and only if its change happened. Numbers are handed out by this process (one sequencer
per PDS; the store's primary key refuses a second writer), so a rolled-back transaction
leaves a gap, which the spec allows. After the transaction commits, the caller
:meth:`publishes <Sequencer.publish>` the rows: they go into a bounded in-memory tail
and every waiting subscriber wakes up.

A repository write on PostgreSQL commits on a connection of its own while the event
loop serves other requests (:mod:`plaza.services.pds.pg_commit`), so commits can finish
out of sequence order. Such an event is *in flight* from :meth:`Sequencer.commit` (with
``in_flight``) to :meth:`Sequencer.settle`; nothing at or after the oldest in-flight
number is published or read back from the store until it settles, so subscribers still
see every event once, in sequence order.

A subscriber only ever asks "what comes after seq N?" (:meth:`Sequencer.read_after`):
the answer comes from the in-memory tail when it reaches back far enough, else from the
store. Backfill and live delivery are therefore one loop, with no gap and no duplicate
at the switch-over, and a slow consumer simply falls back to reading the store.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Sequence
from typing import Any

from plaza.atproto.cid import CID
from plaza.atproto.mst import Op
from plaza.atproto.sync import encode_ops
from plaza.services.eventstream import encode_frame, iso_time
from plaza.services.pds.store import EventRow, PdsStore

COMMIT = "#commit"
IDENTITY = "#identity"
ACCOUNT = "#account"
SYNC = "#sync"
INFO = "#info"

__all__ = ["Sequencer", "encode_frame", "iso_time"]

TAIL_SIZE = 20_000
READ_PAGE = 500


class Sequencer:
    """Assigns sequence numbers, persists frames and wakes subscribers (see module doc)."""

    def __init__(self, store: PdsStore) -> None:
        self.store = store
        _, newest = store.seq_bounds()
        self._last = newest or 0
        self._tail: collections.deque[EventRow] = collections.deque(maxlen=TAIL_SIZE)
        self._changed = asyncio.Event()
        self._published_seq = self._last
        self._in_flight: set[int] = set()
        self._held: dict[int, EventRow] = {}
        self.published = 0

    @property
    def last_seq(self) -> int:
        """The newest sequence number published (0 when there is none): where a live
        subscriber starts."""
        return self._published_seq

    def _row(self, did: str, kind: str, body: dict[str, Any], now: float) -> EventRow:
        self._last += 1
        body = {**body, "seq": self._last, "time": iso_time(now)}
        return EventRow(self._last, did, kind, int(now), encode_frame(kind, body))

    def _append(self, did: str, kind: str, body: dict[str, Any], now: float) -> EventRow:
        row = self._row(did, kind, body, now)
        self.store.append_event(row)
        return row

    # -- the event kinds; call inside the store transaction of the change ------------
    def commit(
        self,
        *,
        did: str,
        commit: CID,
        rev: str,
        since: str | None,
        blocks: bytes,
        ops: Sequence[Op],
        prev_data: CID | None,
        now: float,
        in_flight: bool = False,
    ) -> EventRow:
        """A ``#commit`` event, stored in the caller's transaction; or, ``in_flight``,
        a row the caller stores itself, held back until :meth:`settle`."""
        body: dict[str, Any] = {
            "repo": did,
            "commit": commit,
            "rev": rev,
            "since": since,
            "blocks": blocks,
            "ops": encode_ops(ops),
            "blobs": [],
            "rebase": False,
            "tooBig": False,
        }
        if prev_data is not None:
            body["prevData"] = prev_data
        row = self._row(did, COMMIT, body, now)
        if in_flight:
            self._in_flight.add(row.seq)
        else:
            self.store.append_event(row)
        return row

    def settle(self, row: EventRow, *, committed: bool) -> None:
        """End the flight of a row from :meth:`prepare`: publish it if it was
        committed, else leave its number as a gap."""
        self._in_flight.discard(row.seq)
        self.publish([row] if committed else [])

    def identity(self, did: str, handle: str | None, now: float) -> EventRow:
        body: dict[str, Any] = {"did": did}
        if handle is not None:
            body["handle"] = handle
        return self._append(did, IDENTITY, body, now)

    def account(self, did: str, active: bool, status: str | None, now: float) -> EventRow:
        body: dict[str, Any] = {"did": did, "active": active}
        if status is not None and not active:
            body["status"] = status
        return self._append(did, ACCOUNT, body, now)

    def sync(self, did: str, rev: str, blocks: bytes, now: float) -> EventRow:
        return self._append(did, SYNC, {"did": did, "rev": rev, "blocks": blocks}, now)

    # -- delivery --------------------------------------------------------------------
    def publish(self, rows: Sequence[EventRow]) -> None:
        """Make committed rows visible to subscribers (call after the transaction).

        Rows after an event still in flight wait for it, so the tail stays in order.
        """
        for row in rows:
            self._held[row.seq] = row
        if not self._held:
            return
        floor = self._floor()
        ready = sorted(seq for seq in self._held if seq < floor)
        if not ready:
            return
        self._tail.extend(self._held.pop(seq) for seq in ready)
        self._published_seq = max(self._published_seq, ready[-1])
        self.published += len(ready)
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def _floor(self) -> int | float:
        """The oldest sequence number still in flight (infinity when none is)."""
        return min(self._in_flight) if self._in_flight else float("inf")

    def read_after(self, seq: int, limit: int = READ_PAGE) -> list[EventRow]:
        """Up to ``limit`` events with sequence number greater than ``seq``, in order."""
        if self._in_flight:
            floor = self._floor()
            return [row for row in self._read_after(seq, limit) if row.seq < floor]
        return self._read_after(seq, limit)

    def _read_after(self, seq: int, limit: int) -> list[EventRow]:
        tail = self._tail
        if tail and tail[0].seq <= seq + 1:
            if tail[-1].seq <= seq:
                return []
            out: list[EventRow] = []
            # Walk from the end: live subscribers are almost always near it.
            for row in reversed(tail):
                if row.seq <= seq:
                    break
                out.append(row)
            out.reverse()
            return out[:limit]
        return self.store.events_after(seq, limit)

    async def wait_after(self, seq: int) -> None:
        """Return once an event newer than ``seq`` has been published."""
        while self._published_seq <= seq:
            await self._changed.wait()

    def bounds(self) -> tuple[int | None, int | None]:
        return self.store.seq_bounds()

    def prune(self, before_s: int) -> int:
        return self.store.prune_events(before_s)
