"""The app view's database: the schema of :mod:`plaza.services.appview.schema`, actor ids
and the ingest cursor. Writing records is :class:`~plaza.services.appview.indexer.Indexer`'s
job and reading them :class:`~plaza.services.appview.reader.Reader`'s; both work through
this store's :class:`~plaza.db.Database`.

Actor ids are assigned once per DID and never change, so they are cached in memory in
both directions (an id handed out inside a transaction that rolls back is dropped from
the cache with it: :meth:`AppviewStore.transaction` forgets the ids it assigned).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qs, quote, urlencode, urlsplit, urlunsplit

from plaza.db import Database, connect, migrate
from plaza.services.appview.schema import MIGRATIONS, REPO_UNSEEN

DB_FILE = "appview.db"


def with_custom_plans(url: str) -> str:
    """A PostgreSQL URL whose sessions plan every statement for its parameters
    (``plan_cache_mode = force_custom_plan``) and commit without waiting for the WAL
    flush (``synchronous_commit = off``), unless the URL sets ``options`` itself.

    Not waiting for the flush is safe for this index: a crash loses at most the last
    transactions, cursor included, and the follower replays them from the cursor it
    finds stored; the database itself stays consistent.

    The driver prepares a statement after a few runs and PostgreSQL then switches to a
    generic plan; for the index's queries (a timeline's ``author IN (follows)``, counts by
    key) the generic plan is many times slower (getTimeline p95 went from 25 ms to over
    150 ms after its tenth call in ``plaza bench appview``). SQLite URLs are unchanged."""
    if not url.startswith(("postgresql://", "postgres://")):
        return url
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    query.setdefault("options", ["-cplan_cache_mode=force_custom_plan -csynchronous_commit=off"])
    # %20 for the space between options: libpq reads no '+' as a space
    return urlunsplit(parts._replace(query=urlencode(query, doseq=True, quote_via=quote)))


def now_us() -> int:
    return time.time_ns() // 1000


class AppviewStore:
    """The app view's tables over one :class:`plaza.db.Database`."""

    def __init__(self, db: Database) -> None:
        """Bring ``db`` to the latest schema (:data:`MIGRATIONS`) and use it."""
        self.db = db
        migrate(db, MIGRATIONS)
        self._ids: dict[str, int] = {}
        self._dids: dict[int, str] = {}
        self._fresh: list[str] = []  # ids assigned in the open transaction
        self.heard_of: list[str] = []  # DIDs first seen since the last take_heard_of()

    @classmethod
    def open(cls, url: str) -> AppviewStore:
        return cls(connect(with_custom_plans(url)))

    @classmethod
    def for_data_dir(cls, data_dir: Path, url: str | None = None) -> AppviewStore:
        """PostgreSQL when ``url`` is given, else SQLite at ``DATA_DIR/appview.db``."""
        return cls.open(url or f"sqlite://{data_dir / DB_FILE}")

    def close(self) -> None:
        self.db.close()

    @property
    def dialect(self) -> str:
        return self.db.dialect

    @contextmanager
    def transaction(self) -> Iterator[AppviewStore]:
        outer = self.db._depth == 0
        try:
            with self.db.transaction():
                yield self
        except BaseException:
            if outer:
                for did in self._fresh:
                    self._dids.pop(self._ids.pop(did, -1), None)
                self._fresh.clear()
            raise
        if outer:
            self.heard_of.extend(self._fresh)
            self._fresh.clear()

    # -- actors ----------------------------------------------------------------------
    def actor_id(self, did: str) -> int:
        """The id of ``did``, assigning one (an actor in state ``REPO_UNSEEN``) if new."""
        got = self._ids.get(did)
        if got is not None:
            return got
        row = self.db.one("SELECT id FROM actors WHERE did = ?", (did,))
        if row is None:
            with self.transaction():
                self.db.execute(
                    "INSERT INTO actors (did, indexed_at, repo_state) VALUES (?, ?, ?)",
                    (did, now_us(), REPO_UNSEEN),
                )
                row = self.db.one("SELECT id FROM actors WHERE did = ?", (did,))
                assert row is not None
                self._fresh.append(did)
        ident = int(row[0])
        self._ids[did] = ident
        self._dids[ident] = did
        return ident

    def take_heard_of(self) -> list[str]:
        """The DIDs that got an id (in committed transactions) since the last call."""
        out, self.heard_of = self.heard_of, []
        return out

    def find_actor(self, did: str) -> int | None:
        """The id of ``did`` if it is known, without assigning one."""
        got = self._ids.get(did)
        if got is not None:
            return got
        row = self.db.one("SELECT id FROM actors WHERE did = ?", (did,))
        if row is None:
            return None
        self._ids[did] = int(row[0])
        self._dids[int(row[0])] = did
        return int(row[0])

    def find_cached(self, did: str) -> int | None:
        """The id of ``did`` if this process has seen it (no query)."""
        return self._ids.get(did)

    def lookup_many(self, dids: Iterable[str]) -> dict[str, int]:
        """Ids of those of ``dids`` that are known (no ids assigned)."""
        out: dict[str, int] = {}
        wanted = list(dids)
        for i in range(0, len(wanted), 500):
            chunk = wanted[i : i + 500]
            marks = ",".join("?" * len(chunk))
            for ident, did in self.db.query(
                f"SELECT id, did FROM actors WHERE did IN ({marks})", chunk
            ):
                out[str(did)] = int(ident)
                self._ids[str(did)] = int(ident)
                self._dids[int(ident)] = str(did)
        return out

    def find_handle(self, handle: str) -> int | None:
        row = self.db.one("SELECT id FROM actors WHERE handle = ?", (handle.lower(),))
        return None if row is None else int(row[0])

    def did_of(self, ident: int) -> str:
        got = self._dids.get(ident)
        if got is not None:
            return got
        row = self.db.one("SELECT did FROM actors WHERE id = ?", (ident,))
        if row is None:
            raise KeyError(ident)
        self._dids[ident] = str(row[0])
        self._ids[str(row[0])] = ident
        return str(row[0])

    def dids_of(self, idents: Iterable[int]) -> dict[int, str]:
        out: dict[int, str] = {}
        missing: list[int] = []
        for i in set(idents):
            did = self._dids.get(i)
            if did is None:
                missing.append(i)
            else:
                out[i] = did
        for chunk in _chunks(missing, 500):
            marks = ",".join("?" * len(chunk))
            for ident, did in self.db.query(
                f"SELECT id, did FROM actors WHERE id IN ({marks})", chunk
            ):
                out[int(ident)] = str(did)
                self._dids[int(ident)] = str(did)
                self._ids[str(did)] = int(ident)
        return out

    # -- ingest cursor ---------------------------------------------------------------
    def cursor(self, source: str) -> int | None:
        """The last sequence number of ``source`` indexed (None: never read)."""
        value = self.db.scalar("SELECT seq FROM ingest WHERE source = ?", (source,))
        return None if value is None else int(value)

    def set_cursor(self, source: str, seq: int) -> None:
        """Record ``seq`` as indexed; call it inside the transaction that indexed it."""
        if not self.db.execute("UPDATE ingest SET seq = ? WHERE source = ?", (seq, source)):
            self.db.execute("INSERT INTO ingest (source, seq) VALUES (?, ?)", (source, seq))


def _chunks(items: list[int], size: int) -> Iterator[list[int]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
