"""The archive's counters, shown at ``GET /_metrics`` beside the store's sizes."""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ArchiveMetrics:
    """What the follower and the fetchers did since the process started.

    ``dropped`` counts refused firehose input by reason (``bad_signature``,
    ``invalid_commit``, ``stale_rev``, ``malformed_frame``, ...): each such event
    changed nothing in the archive.
    """

    events: collections.Counter[str] = field(default_factory=collections.Counter)
    dropped: collections.Counter[str] = field(default_factory=collections.Counter)
    commits_applied: int = 0
    syncs_applied: int = 0
    backfilled: int = 0
    resyncs_wanted: int = 0
    resyncs_done: int = 0
    resyncs_failed: int = 0
    blobs_fetched: int = 0
    blobs_failed: int = 0
    blobs_refused: int = 0
    connected: bool = False
    connections: int = 0
    last_seq: int | None = None

    def drop(self, reason: str) -> None:
        self.dropped[reason] += 1

    def as_json(self) -> dict[str, Any]:
        return {
            "events": dict(self.events),
            "dropped": dict(self.dropped),
            "commits_applied": self.commits_applied,
            "syncs_applied": self.syncs_applied,
            "backfilled": self.backfilled,
            "resyncs": {
                "wanted": self.resyncs_wanted,
                "done": self.resyncs_done,
                "failed": self.resyncs_failed,
            },
            "blob_fetches": {
                "fetched": self.blobs_fetched,
                "failed": self.blobs_failed,
                "refused": self.blobs_refused,
            },
            "firehose": {
                "connected": self.connected,
                "connections": self.connections,
                "last_seq": self.last_seq,
            },
        }
