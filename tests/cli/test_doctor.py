from __future__ import annotations

import json

from typer.testing import CliRunner

from plaza.cli import app


def test_doctor_reports_python_and_packages() -> None:
    result = CliRunner().invoke(app, ["doctor", "--json"])
    assert result.exit_code == 0, result.output
    checks = {c["name"]: c for c in json.loads(result.output)}
    assert checks["python"]["ok"] is True
    assert checks["package libipld"]["ok"] is True


def test_doctor_flags_unreachable_postgres_without_failing() -> None:
    result = CliRunner().invoke(
        app, ["doctor", "--json", "--pg", "postgresql://nobody@127.0.0.1:1/none"]
    )
    assert result.exit_code == 0
    checks = {c["name"]: c for c in json.loads(result.output)}
    assert checks["postgresql"]["ok"] is False


def test_doctor_never_prints_a_database_password() -> None:
    for url in (
        "postgresql://postgres:s3cret-pw@127.0.0.1:5432/test",  # answers (trust auth)
        "postgresql://nobody:s3cret-pw@127.0.0.1:1/none",  # refused
    ):
        for args in (["doctor", "--pg", url], ["doctor", "--json", "--pg", url]):
            result = CliRunner().invoke(app, args)
            assert "s3cret-pw" not in result.output, result.output
            assert "***" in result.output
