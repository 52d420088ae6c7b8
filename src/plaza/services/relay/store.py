"""The relay's persistent state, over :mod:`plaza.db` (SQLite by default, PostgreSQL by
URL), in three tables made by the steps of :data:`MIGRATIONS`:

- ``relay_host``: every host the relay follows, with the sequence number of the last
  event of that host the relay has dealt with (its *cursor*), its status and how it was
  found;
- ``relay_account``: every account seen, with the host it is on, the head commit, rev
  and MST root (``data``) the relay last verified, and its status;
- ``relay_event``: the relay's own stream, each event as the exact frame it is sent as,
  by the relay's sequence number; only the newest ``window`` are kept.

Everything the relay learns from its hosts lands through :meth:`RelayStore.flush`, one
transaction per batch: the events it emits, the account states they leave behind and
the host cursors that say those events were dealt with. So after a crash the store
holds either all of a batch or none of it, and resuming each host from its stored
cursor neither skips nor repeats an event of the relay's own sequence.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from plaza.db import Database, Migration, Migrations, connect, migrate

_INITIAL: Final = """
CREATE TABLE IF NOT EXISTS relay_host (
    hostname TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    cursor INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL DEFAULT 'active',
    source TEXT NOT NULL,
    added_s INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS relay_account (
    did TEXT PRIMARY KEY,
    hostname TEXT NOT NULL,
    head TEXT,
    rev TEXT,
    data TEXT,
    active INTEGER NOT NULL DEFAULT 1,
    status TEXT
);
CREATE INDEX IF NOT EXISTS relay_account_by_host ON relay_account (hostname);
CREATE TABLE IF NOT EXISTS relay_event (
    seq INTEGER PRIMARY KEY,
    did TEXT NOT NULL,
    kind TEXT NOT NULL,
    frame BLOB NOT NULL
)
"""

MIGRATIONS: Final = Migrations("relay", (Migration(1, "initial tables", _INITIAL),))
"""The relay's schema, step by step (see :mod:`plaza.db.migrations`)."""


@dataclass(frozen=True)
class HostRow:
    hostname: str
    url: str
    cursor: int
    status: str
    source: str
    added_s: int


@dataclass
class AccountState:
    """What the relay knows of one account; ``head``/``rev``/``data`` are None until a
    first commit (or ``#sync``) is verified. ``status`` None means active."""

    did: str
    hostname: str
    head: str | None = None
    rev: str | None = None
    data: str | None = None
    active: bool = True
    status: str | None = None


@dataclass(frozen=True)
class EventRow:
    seq: int
    did: str
    kind: str
    frame: bytes


@dataclass
class Batch:
    """What one :meth:`RelayStore.flush` writes: events, the accounts they changed and
    the host cursors they advanced."""

    events: list[EventRow] = field(default_factory=list)
    accounts: dict[str, AccountState] = field(default_factory=dict)
    cursors: dict[str, int] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.events or self.accounts or self.cursors)


class RelayStore:
    """Hosts, accounts and the relay's event log (see the module docstring)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        migrate(db, MIGRATIONS)

    @classmethod
    def open(cls, url: str) -> RelayStore:
        return cls(connect(url))

    def close(self) -> None:
        self.db.close()

    # -- hosts -----------------------------------------------------------------------
    def hosts(self) -> list[HostRow]:
        """Every host, oldest first."""
        rows = self.db.query(
            "SELECT hostname, url, cursor, status, source, added_s FROM relay_host "
            "ORDER BY added_s, hostname"
        )
        return [HostRow(r[0], r[1], int(r[2]), r[3], r[4], int(r[5])) for r in rows]

    def add_host(self, hostname: str, url: str, source: str, now_s: int) -> bool:
        """Record a host (cursor 0); False if it was already known."""
        with self.db.transaction():
            if self.db.one("SELECT 1 FROM relay_host WHERE hostname = ?", (hostname,)):
                return False
            self.db.execute(
                "INSERT INTO relay_host (hostname, url, cursor, status, source, added_s) "
                "VALUES (?, ?, 0, 'active', ?, ?)",
                (hostname, url, source, now_s),
            )
        return True

    def set_host_status(self, hostname: str, status: str) -> None:
        self.db.execute("UPDATE relay_host SET status = ? WHERE hostname = ?", (status, hostname))

    def account_counts(self) -> dict[str, int]:
        rows = self.db.query("SELECT hostname, COUNT(*) FROM relay_account GROUP BY hostname")
        return {r[0]: int(r[1]) for r in rows}

    # -- accounts --------------------------------------------------------------------
    def accounts(self) -> Iterable[AccountState]:
        rows = self.db.query(
            "SELECT did, hostname, head, rev, data, active, status FROM relay_account"
        )
        for r in rows:
            yield AccountState(r[0], r[1], r[2], r[3], r[4], bool(r[5]), r[6])

    def list_accounts(self, after: str, limit: int) -> list[AccountState]:
        """Accounts with a verified head, by DID, after ``after``."""
        rows = self.db.query(
            "SELECT did, hostname, head, rev, data, active, status FROM relay_account "
            "WHERE did > ? AND head IS NOT NULL ORDER BY did LIMIT ?",
            (after, limit),
        )
        return [AccountState(r[0], r[1], r[2], r[3], r[4], bool(r[5]), r[6]) for r in rows]

    # -- the event log ---------------------------------------------------------------
    def flush(self, batch: Batch) -> None:
        """Write one batch in one transaction (see the module docstring)."""
        db = self.db
        with db.transaction():
            db.executemany(
                "INSERT INTO relay_event (seq, did, kind, frame) VALUES (?, ?, ?, ?)",
                [(e.seq, e.did, e.kind, e.frame) for e in batch.events],
            )
            db.executemany(
                "INSERT INTO relay_account (did, hostname, head, rev, data, active, status) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (did) DO UPDATE SET "
                "hostname = excluded.hostname, head = excluded.head, rev = excluded.rev, "
                "data = excluded.data, active = excluded.active, status = excluded.status",
                [
                    (a.did, a.hostname, a.head, a.rev, a.data, int(a.active), a.status)
                    for a in batch.accounts.values()
                ],
            )
            db.executemany(
                "UPDATE relay_host SET cursor = ? WHERE hostname = ?",
                [(seq, host) for host, seq in batch.cursors.items()],
            )

    def events_after(self, seq: int, limit: int) -> list[EventRow]:
        rows = self.db.query(
            "SELECT seq, did, kind, frame FROM relay_event WHERE seq > ? ORDER BY seq LIMIT ?",
            (seq, limit),
        )
        return [EventRow(int(r[0]), r[1], r[2], bytes(r[3])) for r in rows]

    def seq_bounds(self) -> tuple[int | None, int | None]:
        row = self.db.one("SELECT MIN(seq), MAX(seq) FROM relay_event")
        if row is None or row[0] is None:
            return None, None
        return int(row[0]), int(row[1])

    def prune_events(self, keep: int) -> int:
        """Drop all but the newest ``keep`` events; return how many went."""
        _, newest = self.seq_bounds()
        if newest is None:
            return 0
        return self.db.execute("DELETE FROM relay_event WHERE seq <= ?", (newest - keep,))
