"""``plaza market books`` says how many entries it wrote and where."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from plaza.cli import app


def run(data: Path, *args: str) -> tuple[str, str]:
    res = CliRunner().invoke(app, [*args, "--data-dir", str(data)])
    assert res.exit_code == 0, res.output
    return res.stdout, res.stderr


def test_books_to_a_file_and_to_standard_output(tmp_path: Path) -> None:
    data = tmp_path / "plaza"
    run(data, "dao", "keys", "new", "ops")
    run(data, "market", "open", "--operator", "ops", "--at", "2025-01-01T00:00:00Z")
    out, err = run(data, "market", "books")
    assert 'option "operating_currency" "EUR"' in out
    assert err == "0 journal entries in EUR to standard output\n"
    path = tmp_path / "market.beancount"
    out, err = run(data, "market", "books", "-o", str(path))
    assert out == ""
    assert err == f"0 journal entries in EUR to {path}\n"
    assert 'option "title" "Plaza market"' in path.read_text(encoding="utf-8")


def test_books_under_a_dao_point_to_the_daos_books(tmp_path: Path) -> None:
    data = tmp_path / "plaza"
    at = "2025-01-01T00:00:00Z"
    run(data, "dao", "init", "--founder", "alice", "--founder", "bob", "--agent", "ops",
        "--at", at)  # fmt: skip
    run(data, "market", "open", "--operator", "ops", "--at", at)
    _, err = run(data, "market", "books")
    assert "plaza dao books" in err
