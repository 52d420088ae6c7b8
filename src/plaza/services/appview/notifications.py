"""Reading an account's notifications and keeping when it last saw them.

The indexer writes a ``notifications`` row for every like, repost, follow, reply,
mention and quote aimed at an account (reason codes: :data:`NOTIFICATION_REASONS`),
and deletes it with the record that caused it. This module reads them back newest
first (by row id; the cursor is the last id of a page), leaving out those whose author
the recipient blocks, is blocked by, or muted; counts those indexed after the account's
``seen_at``; and moves ``seen_at`` (``app.bsky.notification.updateSeen``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from plaza.atproto.cid import CID
from plaza.services.appview.reader_graph import hidden_args, not_hidden, parse_cursor
from plaza.services.appview.schema import NOTIFICATION_REASONS
from plaza.services.appview.store import AppviewStore


@dataclass(frozen=True)
class NotificationRow:
    id: int
    author: int
    reason: str
    rkey: str
    subject_rkey: str | None
    record: bytes
    indexed_at: int

    @property
    def cid(self) -> bytes:
        """The CID (bytes) of the record that caused it: the hash of that block."""
        return CID.compute(self.record).raw


def reason_codes(names: Iterable[str]) -> list[int]:
    """The stored codes of the reasons among ``names`` this app view produces (other
    Lexicon reasons, such as ``starterpack-joined``, have none)."""
    return sorted({NOTIFICATION_REASONS.index(n) for n in names if n in NOTIFICATION_REASONS})


class Notifications:
    """One store's notifications (see the module docstring)."""

    def __init__(self, store: AppviewStore) -> None:
        self.store = store
        self.db = store.db

    def list(
        self, recipient: int, limit: int, cursor: str | None, reasons: list[int] | None = None
    ) -> list[NotificationRow]:
        """A page of ``recipient``'s notifications, newest first; only ``reasons`` (codes)
        when given."""
        key = parse_cursor(cursor, "i")
        where = f"recipient = ? AND {not_hidden('author')}"
        args: list[object] = [recipient, *hidden_args(recipient)]
        if key is not None:
            where += " AND id < ?"
            args.append(key[0])
        if reasons is not None:
            if not reasons:
                return []
            where += f" AND reason IN ({','.join('?' * len(reasons))})"
            args += reasons
        rows = self.db.query(
            "SELECT id, author, reason, rkey, subject_rkey, record, indexed_at "
            f"FROM notifications WHERE {where} ORDER BY id DESC LIMIT ?",
            (*args, limit),
        )
        return [
            NotificationRow(
                int(r[0]),
                int(r[1]),
                NOTIFICATION_REASONS[int(r[2])],
                str(r[3]),
                None if r[4] is None else str(r[4]),
                bytes(r[5]),
                int(r[6]),
            )
            for r in rows
        ]

    def unread(self, recipient: int, seen_at: int) -> int:
        """How many of ``recipient``'s notifications were indexed after ``seen_at``."""
        return int(
            self.db.scalar(
                "SELECT COUNT(*) FROM notifications WHERE recipient = ? AND indexed_at > ? "
                f"AND {not_hidden('author')}",
                (recipient, seen_at, *hidden_args(recipient)),
            )
            or 0
        )

    def seen_at(self, actor: int) -> int:
        """When ``actor`` last saw its notifications (microseconds; 0: never)."""
        return int(self.db.scalar("SELECT seen_at FROM actors WHERE id = ?", (actor,)) or 0)

    def set_seen(self, actor: int, seen_at: int) -> None:
        with self.store.transaction():
            self.db.execute("UPDATE actors SET seen_at = ? WHERE id = ?", (seen_at, actor))
