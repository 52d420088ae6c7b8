"""Repository commits on PostgreSQL without holding the event loop through the commit.

Theory of operation. A PostgreSQL commit waits for its WAL to reach the disk (a few
milliseconds here), and the PDS's one synchronous connection holds the event loop for
that whole wait: commits are serialized, one flush each. :class:`PgCommitter` keeps a
few asynchronous connections (autocommit, the store's schema on the search path) and
runs a commit on a free one as a single statement
(:func:`plaza.services.pds.store_repo.pg_commit_statement`): one transaction, one
network round trip, prepared by the server, while the loop serves other requests.
Commits in flight together on different connections share WAL flushes (PostgreSQL's
group commit), which is what lets write throughput grow past one flush per write.

Each commit is still exactly one transaction, acknowledged only after ``COMMIT``
returns. Ordering is the caller's business: writes to one repository hold its lock
across the commit (:class:`plaza.services.pds.repos.RepoManager`), and the sequencer
holds back events behind any still in flight
(:class:`plaza.services.pds.sequencer.Sequencer`).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import select
from collections.abc import AsyncIterator, Sequence
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import psycopg

from plaza.db import IntegrityError
from plaza.errors import StorageError

CONNECTIONS = 6
_SCHEMA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def _dead(conn: psycopg.AsyncConnection[Any]) -> bool:
    """True if an idle connection is broken, or has something to read: nothing is owed
    to it while idle, so that is the server's farewell and the closed socket."""
    if conn.broken or conn.closed:
        return True
    probe = select.poll()
    probe.register(conn.pgconn.socket, select.POLLIN)
    return bool(probe.poll(0))


class PgCommitter:
    """A small pool of asynchronous connections that run one transaction each.

    The pool's queue holds a connection or ``None`` per slot; ``None`` is a slot to fill
    with a new connection, so a broken connection frees its slot for whoever waits next.
    A connection found dead when taken from the queue (see :func:`_dead`) is replaced
    before the statement is sent, as :class:`plaza.db.Database` does; one that dies
    during a statement fails that statement, which is never sent again.
    """

    def __init__(self, url: str, size: int = CONNECTIONS) -> None:
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        schema = query.pop("schema", [None])[0]
        if schema is not None and not _SCHEMA_NAME.match(schema):
            raise StorageError(f"invalid schema name {schema!r}")
        self._conninfo = urlunsplit(parts._replace(query=urlencode(query, doseq=True)))
        self._host = parts.hostname
        self._schema = schema
        self._size = size
        self._free: asyncio.Queue[psycopg.AsyncConnection[Any] | None] | None = None
        self._all: list[psycopg.AsyncConnection[Any]] = []

    async def execute(self, sql: str, params: Sequence[object]) -> None:
        """Run one statement (psycopg placeholders) as its own transaction.

        Raises :class:`plaza.db.IntegrityError` or :class:`plaza.errors.StorageError`.
        A statement the server refused wrote nothing; when the connection itself failed
        the outcome is unknown, and the caller must read the state back from the store.
        """
        async with self._connection() as conn:
            try:
                await conn.execute(sql, params)
            except psycopg.errors.IntegrityError as exc:
                raise IntegrityError(f"constraint failed: {exc}".strip()) from exc
            except psycopg.Error as exc:
                raise StorageError(f"postgresql: {exc}".strip()) from exc

    async def open(self) -> None:
        """Open every connection now rather than on the first commits."""
        free = self._queue()
        for _ in range(free.qsize()):
            conn = await free.get()
            if conn is None:
                try:
                    conn = await self._connect()
                except BaseException:
                    free.put_nowait(None)
                    raise
            free.put_nowait(conn)

    def _queue(self) -> asyncio.Queue[psycopg.AsyncConnection[Any] | None]:
        if self._free is None:
            self._free = asyncio.Queue()
            for _ in range(self._size):
                self._free.put_nowait(None)
        return self._free

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        free = self._queue()
        conn = await free.get()
        if conn is not None and _dead(conn):
            # Found dead before use (killed while idle): replaced, nothing was sent on it.
            self._all.remove(conn)
            with contextlib.suppress(Exception):
                await conn.close()
            conn = None
        if conn is None:
            try:
                conn = await self._connect()
            except BaseException:
                free.put_nowait(None)
                raise
        try:
            yield conn
        finally:
            if conn.closed or conn.broken:
                self._all.remove(conn)
                free.put_nowait(None)
            else:
                free.put_nowait(conn)

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        try:
            conn = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)
            if self._schema:
                await conn.execute(f'SET search_path TO "{self._schema}"')
        except psycopg.Error as exc:
            raise StorageError(f"cannot connect to PostgreSQL at {self._host}: {exc}") from exc
        self._all.append(conn)
        return conn

    async def aclose(self) -> None:
        for conn in self._all:
            await conn.close()
        self._all.clear()
        self._free = None
