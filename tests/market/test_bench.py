"""``plaza bench market`` at a tiny size: it runs the real pipeline and reports its counts
(speed is measured by the command itself, never asserted here)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from plaza.cli import app


def test_bench_market_small() -> None:
    result = CliRunner().invoke(app, ["bench", "market", "--runs", "1", "--providers", "30"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["providers"] == 30
    assert out["invoices"] == out["payments"] == 30
    # One provider in ten is down for a few windows: those invoices carry credits, and
    # the rest leave probation after their clean epoch.
    assert out["status_changes"] == 27
    assert out["settle_s"] > 0 and out["replay_events_per_s"] > 0
