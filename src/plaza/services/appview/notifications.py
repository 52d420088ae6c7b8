"""Reading an account's notifications and keeping when it last saw them.

The indexer writes a ``notifications`` row for every like, repost, follow, reply,
mention and quote aimed at an account (reason codes: :data:`NOTIFICATION_REASONS`),
and deletes it with the record that caused it. This module reads them back newest
first (by row id; the cursor is the last id of a page), leaving out those whose author
the recipient blocks, is blocked by, or muted; counts those indexed after the account's
``seen_at``; and moves ``seen_at`` (``app.bsky.notification.updateSeen``).

A notification's record is the post, like, repost or follow that caused it, rebuilt
from that row when the notification keeps none of its own
(:mod:`plaza.services.appview.compact`); a like's or repost's names the post it is
about by that row's ``subject_rkey``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from plaza.atproto.cid import CID
from plaza.db import Row
from plaza.services.appview import records as rec
from plaza.services.appview.compact import DERIVED, follow_block, subject_block, unpack_post
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
        where = f"n.recipient = ? AND {not_hidden('n.author')}"
        args: list[object] = [recipient, *hidden_args(recipient)]
        if key is not None:
            where += " AND n.id < ?"
            args.append(key[0])
        if reasons is not None:
            if not reasons:
                return []
            where += f" AND n.reason IN ({','.join('?' * len(reasons))})"
            args += reasons
        rows = self.db.query(
            "SELECT n.id, n.author, n.reason, n.rkey, "
            "COALESCE(n.subject_rkey, l.subject_rkey, r.subject_rkey), n.record, n.indexed_at, "
            "p.record, p.text, p.sort_at, l.subject_author, l.subject_cid, l.created, "
            "r.subject_author, r.subject_cid, r.created, f.subject, f.created "
            f"FROM notifications n {_SOURCES} WHERE {where} ORDER BY n.id DESC LIMIT ?",
            (*args, limit),
        )
        dids = self.store.dids_of(
            int(i) for r in rows for i in (r[10], r[13], r[16]) if i is not None
        )
        out = []
        for r in rows:
            record = _record(r, dids)
            if record is None:
                continue  # its source is gone (removed in the same transaction as it)
            out.append(
                NotificationRow(
                    int(r[0]),
                    int(r[1]),
                    NOTIFICATION_REASONS[int(r[2])],
                    str(r[3]),
                    None if r[4] is None else str(r[4]),
                    record,
                    int(r[6]),
                )
            )
        return out

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


_R = {name: i for i, name in enumerate(NOTIFICATION_REASONS)}
_SOURCES: Final = (
    "LEFT JOIN posts p ON n.reason IN ({}, {}, {}) AND p.author = n.author AND p.rkey = n.rkey "
    "LEFT JOIN likes l ON n.reason = {} AND l.actor = n.author AND l.rkey = n.rkey "
    "LEFT JOIN reposts r ON n.reason = {} AND r.actor = n.author AND r.rkey = n.rkey "
    "LEFT JOIN follows f ON n.reason = {} AND f.actor = n.author AND f.rkey = n.rkey"
).format(_R["mention"], _R["reply"], _R["quote"], _R["like"], _R["repost"], _R["follow"])
"""The rows that notifications keeping no record of their own rebuild it from."""


def _record(r: Row, dids: dict[int, str]) -> bytes | None:
    """A notification's record: kept, or rebuilt from its source row (see
    :mod:`plaza.services.appview.compact`); None if that row is gone."""
    kept = bytes(r[5])
    if kept != DERIVED:
        return kept
    reason = NOTIFICATION_REASONS[int(r[2])]
    if reason in ("mention", "reply", "quote"):
        return None if r[7] is None else unpack_post(bytes(r[7]), str(r[8]), int(r[9]))
    if reason in ("like", "repost"):
        at = 10 if reason == "like" else 13
        if r[at] is None:
            return None
        collection = rec.LIKE if reason == "like" else rec.REPOST
        return subject_block(
            collection, dids[int(r[at])], str(r[4]), bytes(r[at + 1]), int(r[at + 2])
        )
    if r[16] is None:
        return None
    return follow_block(dids[int(r[16])], int(r[17]))
