"""The SQL event store: SQLite by default, PostgreSQL by URL, through :mod:`plaza.db`.

Each event is one row keyed by ``seq`` (the primary key is what makes two writers at one
position collide: SQLite serializes writers with ``BEGIN IMMEDIATE`` and the loser sees
the new head; on PostgreSQL the loser's insert waits for the winner's commit and then
violates the key). Either way the loser gets
:class:`~plaza.ledger.errors.AppendConflictError` and nothing of its run is written.
``type``, ``author`` and ``time`` are copied out of the event bytes only so that other
packages can query by them; ``body`` is the authority.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Final

from plaza.db import Database, IntegrityError, Migration, Migrations, connect, migrate
from plaza.ledger.checkpoint import Checkpoint
from plaza.ledger.errors import AppendConflictError
from plaza.ledger.event import Event
from plaza.ledger.store import EMPTY_HEAD, EventStore, Head, check_run

_PREFIX_RE: Final = re.compile(r"^[a-z][a-z0-9_]{0,30}$")
_BATCH: Final = 2000
_MAX_SEQ: Final = 2**62

_INITIAL: Final = """
CREATE TABLE IF NOT EXISTS {p}_events (
    seq INTEGER PRIMARY KEY,
    hash BLOB NOT NULL,
    type TEXT NOT NULL,
    author TEXT NOT NULL,
    time INTEGER NOT NULL,
    body BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS {p}_events_type ON {p}_events (type, seq);
CREATE TABLE IF NOT EXISTS {p}_checkpoints (
    size INTEGER PRIMARY KEY,
    body BLOB NOT NULL
)
"""


def migrations(prefix: str = "ledger") -> Migrations:
    """The schema of the store with table prefix ``prefix``, step by step (see
    :mod:`plaza.db.migrations`); the prefix is also the store's name in
    ``schema_migrations``. The DAO and the market keep no tables of their own: their
    state is a replay of this store's events."""
    return Migrations(prefix, (Migration(1, "initial tables", _INITIAL.format(p=prefix)),))


class SqlEventStore(EventStore):
    """An event store in the tables ``{prefix}_events`` and ``{prefix}_checkpoints``,
    brought to the latest schema (:func:`migrations`) when it opens."""

    def __init__(self, db: Database, *, prefix: str = "ledger") -> None:
        if not _PREFIX_RE.match(prefix):
            raise ValueError(f"invalid table prefix {prefix!r}")
        self.db = db
        self._p = prefix
        migrate(db, migrations(prefix))

    @classmethod
    def open(cls, url: str, *, prefix: str = "ledger") -> SqlEventStore:
        """Open (creating tables if needed) the store at a database URL or SQLite path."""
        return cls(connect(url), prefix=prefix)

    def head(self) -> Head:
        row = self.db.one(f"SELECT seq, hash, time FROM {self._p}_events ORDER BY seq DESC LIMIT 1")
        return EMPTY_HEAD if row is None else Head(int(row[0]) + 1, bytes(row[1]), int(row[2]))

    def append(self, events: Sequence[Event]) -> Head:
        try:
            with self.db.transaction():
                check_run(events, self.head())
                self.db.executemany(
                    f"INSERT INTO {self._p}_events (seq, hash, type, author, time, body) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    [(e.seq, e.hash, e.type, e.author_did, e.time, e.raw) for e in events],
                )
        except IntegrityError as exc:
            raise AppendConflictError(
                f"position {events[0].seq} was taken by a concurrent writer; "
                "rebuild the event at the new head and retry",
                seq=events[0].seq,
            ) from exc
        last = events[-1]
        return Head(last.seq + 1, last.hash, last.time)

    def read_raw(self, start: int = 0, stop: int | None = None) -> Iterator[tuple[int, bytes]]:
        # Keyset pagination by seq: a hole left by someone editing the table is skipped
        # here and shows up to the verifier as a jump in seq. Positions are clamped to
        # what an INTEGER column holds (SQLite's driver overflows on larger ones).
        pos = start
        bound = min(stop, _MAX_SEQ) if stop is not None else _MAX_SEQ
        while pos < bound:
            rows = self.db.query(
                f"SELECT seq, body FROM {self._p}_events WHERE seq >= ? AND seq < ? "
                f"ORDER BY seq LIMIT {_BATCH}",
                (pos, bound),
            )
            for seq, body in rows:
                yield int(seq), bytes(body)
            if len(rows) < _BATCH:
                return
            pos = int(rows[-1][0]) + 1

    def hashes(self, start: int = 0, stop: int | None = None) -> list[bytes]:
        if start >= _MAX_SEQ:
            return []
        if stop is not None:
            stop = min(stop, _MAX_SEQ)
        if stop is None:
            rows = self.db.query(
                f"SELECT hash FROM {self._p}_events WHERE seq >= ? ORDER BY seq", (start,)
            )
        else:
            rows = self.db.query(
                f"SELECT hash FROM {self._p}_events WHERE seq >= ? AND seq < ? ORDER BY seq",
                (start, stop),
            )
        return [bytes(r[0]) for r in rows]

    def add_checkpoint(self, checkpoint: Checkpoint) -> None:
        body = checkpoint.encode()
        try:
            with self.db.transaction():
                old = self.db.scalar(
                    f"SELECT body FROM {self._p}_checkpoints WHERE size = ?", (checkpoint.size,)
                )
                if old is not None:
                    if bytes(old) != body:
                        raise AppendConflictError(
                            f"a different checkpoint exists at size {checkpoint.size}"
                        )
                    return
                self.db.execute(
                    f"INSERT INTO {self._p}_checkpoints (size, body) VALUES (?, ?)",
                    (checkpoint.size, body),
                )
        except IntegrityError as exc:
            raise AppendConflictError(
                f"a checkpoint at size {checkpoint.size} was stored concurrently"
            ) from exc

    def checkpoints(self) -> list[Checkpoint]:
        rows = self.db.query(f"SELECT body FROM {self._p}_checkpoints ORDER BY size")
        return [Checkpoint.decode(bytes(r[0])) for r in rows]

    def close(self) -> None:
        self.db.close()
