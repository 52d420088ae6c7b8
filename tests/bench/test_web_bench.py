"""``plaza bench web`` runs end to end on a tiny network (every service, the web client
included, in its own ``plaza serve`` process) and prints the promised JSON. Speed is
never asserted; the JavaScript budget is."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from plaza.cli import app

KEYS = {"ttfb_p50_ms", "ttfb_p95_ms", "home_ttfb_p95_ms", "profile_ttfb_p95_ms", "pages_per_s"}


@pytest.mark.slow
def test_bench_web_prints_its_figures() -> None:
    args = ["bench", "web", "--users", "3", "--requests", "2", "--posts", "1", "--follows", "2"]
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out.keys() >= KEYS and out["users"] == 3 and out["requests"] == 6
    assert all(out[k] > 0 for k in KEYS)
    assert 0 < out["js_bytes_gzip"] < out["js_bytes_raw"] <= 50 * 1024
