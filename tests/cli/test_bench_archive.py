"""``plaza bench archive`` runs end to end at toy sizes, on SQLite and PostgreSQL, and
prints the promised JSON. Sizes and speeds are never asserted; docs/archive.md has them."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from plaza.cli import app
from tests.conftest import _PG_MISSING, PG_URL


def test_bench_archive_prints_bytes_per_record() -> None:
    if _PG_MISSING:
        pytest.skip(_PG_MISSING)
    args = ["bench", "archive", "--records", "60", "--per-commit", "7", "--pg", PG_URL]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert (out["records"], out["per_commit"]) == (60, 7)
    for backend in ("sqlite", "postgresql"):
        m = out[backend]
        assert m["records"] == 60 and m["commits"] == 9  # ceil(60 / 7)
        assert m["store_bytes"] > 0
        assert m["bytes_per_record"] == round(m["store_bytes"] / 60, 1)
        assert 0 < m["block_bytes_per_record"] < m["bytes_per_record"]
        assert m["verified_commits_per_s"] > 0
