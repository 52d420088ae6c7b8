"""``plaza labeler train`` and ``eval`` on small slices of the shipped YouTube files."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from plaza.cli import app
from plaza.moderation.modelfile import load

LABEL_TEXT = Path(__file__).resolve().parents[2] / "data" / "spam" / "label-text"


def run(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    output = result.output + (result.stderr if result.stderr_bytes else "")
    assert result.exit_code == code, f"{args}: exit {result.exit_code}\n{output}"
    return output


def test_train_and_eval(tmp_path: Path) -> None:
    train = str(LABEL_TEXT / "Youtube02-KatyPerry.csv")
    test = str(LABEL_TEXT / "Youtube03-LMFAO.csv")
    out = tmp_path / "model.json"
    assert "auto-label threshold" in run("labeler", "train", "--data", train, "--out", str(out))
    assert load(out).threshold > 0.5
    result = json.loads(run("labeler", "eval", "--train", train, "--test", test, "--json"))
    assert set(result) >= {"f1", "precision", "recall", "auto_label"}
    assert set(result["auto_label"]) == {"threshold", "precision", "recall"}
    assert result["f1"] > 0.8


def test_bad_input_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\nx,spam\n")
    output = run("labeler", "train", "--data", str(bad), "--out", str(tmp_path / "m"), code=1)
    assert "InvalidDataset" in output and "header" in output
    assert not (tmp_path / "m").exists()
