"""``plaza serve web`` refuses a configuration it cannot run with a clear message (the
served client itself runs in tests/bench/test_web_bench.py and tests/web)."""

from __future__ import annotations

from typer.testing import CliRunner

from plaza.cli import app


def test_it_needs_somewhere_to_sign_in() -> None:
    result = CliRunner().invoke(app, ["serve", "web", "--port", "0"])
    assert result.exit_code == 2 and "--entryway or --pds" in result.output


def test_a_url_that_is_not_http_is_refused() -> None:
    result = CliRunner().invoke(app, ["serve", "web", "--pds", "ftp://x", "--port", "0"])
    assert result.exit_code == 1 and "must be an http(s) URL" in result.output
    result = CliRunner().invoke(
        app, ["serve", "web", "--pds", "http://x", "--dao", "x", "--port", "0"]
    )
    assert result.exit_code == 1 and "--dao must be" in result.output
