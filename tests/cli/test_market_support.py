"""``plaza market`` durations: ASCII digits of bounded length with an optional unit, and a
clear error (exit 1) for anything else — superscript and Arabic-Indic digits included."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from plaza.cli import app


def run(data: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, [*args, "--data-dir", str(data)], catch_exceptions=False)
    return result.exit_code, result.output + (result.stderr if result.stderr_bytes else "")


@pytest.mark.parametrize(
    "bad",
    ["²", "٥", "٥d", "1²", "5000000000000", "9" * 5000, "-5", "+5", "1_0", "5 d 1", "", "5x"],
    ids=[
        "superscript",
        "arabic-indic",
        "arabic-indic-days",
        "mixed",
        "13-digits",
        "5000-digits",
        "negative",
        "plus",
        "underscore",
        "junk",
        "empty",
        "unit",
    ],
)
def test_market_open_refuses_a_duration_that_is_not_ascii_digits(tmp_path: Path, bad: str) -> None:
    data = tmp_path / "plaza"
    assert run(data, "dao", "keys", "new", "ops")[0] == 0
    code, out = run(data, "market", "open", "--operator", "ops", "--epoch", bad, "--window", "60s")
    assert code == 1, out
    assert "invalid duration" in out and "0-9" in out, out
    code, out = run(data, "market", "open", "--operator", "ops", "--epoch", "1d", "--window", bad)
    assert code == 1, out
    assert "invalid duration" in out, out
    # Nothing was opened: the same command with good durations works afterwards.
    code, out = run(
        data, "market", "open", "--operator", "ops", "--epoch", "86400", "--window", "5m"
    )
    assert (code, "market open" in out) == (0, True), out
