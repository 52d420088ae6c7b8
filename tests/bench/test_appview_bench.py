"""``plaza bench appview`` runs end to end on a tiny network, on SQLite and PostgreSQL,
and prints the promised JSON. Speed is never asserted; the figures live in
docs/benchmarks.md."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from plaza.cli import app
from tests.conftest import _PG_MISSING, PG_URL

KEYS = {
    "index_records_per_s",
    "backfill_records_per_s",
    "timeline_p95_ms",
    "posts_indexed",
    "bytes_per_record",
}


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_bench_appview_prints_its_figures(backend: str) -> None:
    args = ["bench", "appview", "--accounts", "30", "--posts", "300", "--follows", "10"]
    args += ["--live", "40", "--calls", "5", "--json"]
    if backend == "postgresql":
        if _PG_MISSING is not None:
            pytest.skip(_PG_MISSING)
        args += ["--db", PG_URL]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out.keys() >= KEYS
    assert out["posts_indexed"] == 300
    assert out["database"] == backend
    # 260 posts backfilled with 64 likes (posts 4, 8, ... 256) and 10 follows; 40 live
    assert out["records_indexed"] == 260 + 64 + 10 + 40
    for key in KEYS - {"posts_indexed"}:
        assert out[key] > 0
