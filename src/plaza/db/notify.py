"""PostgreSQL notifications between processes that share a database.

:func:`notify` sends on a channel from inside the caller's transaction: PostgreSQL
delivers it when (and only if) the transaction commits, so a listener woken by it reads
what the transaction wrote. :func:`listen` keeps a connection of its own listening on a
channel, calling ``woken()`` for every notification and once after every (re)connection
(whatever was sent while it was away is not delivered again, so the caller reads
afresh); a lost connection is opened again after ``retry_s``.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from typing import Final

from plaza.db.database import Database, pg_conninfo
from plaza.errors import InvalidInputError

log = logging.getLogger("plaza.db")

_CHANNEL: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def _checked(channel: str) -> str:
    if not _CHANNEL.match(channel):
        raise InvalidInputError(f"invalid notification channel {channel[:80]!r}")
    return channel


def notify(db: Database, channel: str, payload: str = "") -> None:
    """Send ``payload`` on ``channel`` when the current transaction commits (PostgreSQL;
    nothing on SQLite, whose writers are all in one process)."""
    if db.dialect == "postgresql":
        db.scalar("SELECT pg_notify(?, ?)", (_checked(channel), payload))


async def listen(
    url: str, channel: str, woken: Callable[[], None], *, retry_s: float = 1.0
) -> None:
    """Call ``woken()`` on every notification on ``channel`` of the PostgreSQL database
    at ``url`` (and after each connection), until cancelled."""
    import psycopg

    conninfo, _ = pg_conninfo(url)
    name = _checked(channel)
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
                await conn.execute(f'LISTEN "{name}"')
                woken()
                async for _ in conn.notifies():
                    woken()
        except psycopg.Error as exc:
            log.info("listening on %s: %r; again in %.1f s", name, exc, retry_s)
        await asyncio.sleep(retry_s)
