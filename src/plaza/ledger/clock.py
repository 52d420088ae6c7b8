"""Ledger times as people read them.

Every time in the ledger is Unix milliseconds, UTC. Messages and command output show
them as ISO 8601 in UTC (``2025-01-01T09:30:00Z``), with milliseconds only when the time
has them.
"""

from __future__ import annotations

from datetime import UTC, datetime


def iso_ms(ms: int) -> str:
    """Unix milliseconds as ISO 8601 UTC: ``1735723800000`` -> ``"2025-01-01T09:30:00Z"``."""
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    if ms % 1000:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
