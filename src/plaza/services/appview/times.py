"""Record times as the index keeps them: integer microseconds since the epoch (sans-IO)."""

from __future__ import annotations

import datetime as dt
from typing import Any


def parse_time_us(value: Any) -> int:
    """An atproto datetime as integer microseconds since the epoch (0 if unreadable)."""
    if not isinstance(value, str):
        return 0
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return 0
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return int(parsed.timestamp() * 1_000_000)


def format_time_us(us: int) -> str:
    """Integer microseconds as an atproto datetime with milliseconds."""
    d = dt.datetime.fromtimestamp(us / 1_000_000, dt.UTC)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond // 1000:03d}Z"
