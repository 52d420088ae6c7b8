"""Ledger times (Unix ms) read as ISO 8601 UTC."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from plaza.ledger.clock import iso_ms


@pytest.mark.parametrize(
    ("ms", "text"),
    [(0, "1970-01-01T00:00:00Z"), (1_735_723_800_000, "2025-01-01T09:30:00Z"),
     (1_735_723_800_007, "2025-01-01T09:30:00.007Z")],
    ids=["epoch", "whole-second", "milliseconds"],
)  # fmt: skip
def test_iso_ms(ms: int, text: str) -> None:
    assert iso_ms(ms) == text
    back = datetime.fromisoformat(text.replace("Z", "+00:00"))
    assert back == datetime.fromtimestamp(ms / 1000, UTC)
