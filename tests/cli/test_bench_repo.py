"""``plaza bench repo`` runs end to end at toy sizes and prints the promised JSON.

Speed itself is never asserted here; the figures live in docs/benchmarks.md.
"""

from __future__ import annotations

import json

from typer.testing import CliRunner

from plaza.cli import app


def test_bench_repo_prints_medians_beside_libipld() -> None:
    result = CliRunner().invoke(
        app, ["bench", "repo", "--runs", "2", "--keys", "400", "--records", "150"]
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["runs"] == 2
    for name in (
        "mst_insert",
        "mst_put_and_root_per_write",
        "commit_sign",
        "repo_commit_one_write",
        "car_export",
        "car_import_and_verify",
    ):
        assert out[name]["plaza"]["median"] > 0
        assert len(out[name]["plaza"]["runs"]) == 2
    for name in ("mst_node_encode", "car_import_and_verify", "car_read_hash_checked"):
        assert out[name]["libipld"]["median"] > 0
        assert out[name]["ratio_plaza_to_libipld"] > 0
    assert out["car"]["records"] == 150
