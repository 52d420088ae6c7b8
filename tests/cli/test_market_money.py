"""``plaza market`` reads and prints amounts in the DAO's currency, with the minor digits
its constitution gives (JPY 0, BHD 3), and prices scale the same way."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest
from typer.testing import CliRunner

from plaza.cli import app

AT = "2025-01-01T00:00:00Z"


def run(data: Path, *args: str, ok: bool = True) -> str:
    res = CliRunner().invoke(app, [*args, "--data-dir", str(data)])
    out = res.output + (res.stderr if res.stderr_bytes else "")
    assert (res.exit_code == 0) == ok, f"{args}: exit {res.exit_code}\n{out}"
    return out


def _dao(tmp_path: Path, currency: str, digits: int, opening: str) -> Path:
    files = resources.files("plaza.dao")
    constitution = files.joinpath("default_constitution.toml").read_text("utf-8")
    constitution = constitution.replace('currency = "EUR"', f'currency = "{currency}"')
    constitution = constitution.replace("minor_digits = 2", f"minor_digits = {digits}")
    mandate = files.joinpath("default_mandate.toml").read_text("utf-8")
    mandate = mandate.replace('currency = "EUR"', f'currency = "{currency}"')
    (tmp_path / "c.toml").write_text(constitution, "utf-8")
    (tmp_path / "m.toml").write_text(mandate, "utf-8")
    data = tmp_path / "plaza"
    run(data, "dao", "init", "--founder", "alice", "--founder", "bob", "--agent", "ops",
        "--constitution", str(tmp_path / "c.toml"), "--mandate", str(tmp_path / "m.toml"),
        "--opening", opening, "--at", AT)  # fmt: skip
    run(data, "market", "open", "--operator", "ops", "--genesis", AT, "--at", AT)
    return data


@pytest.mark.parametrize(
    "case",
    [
        ("JPY", 0, "1000000", "1500", "1500 JPY", "1.5", "account=5", 5_000_000),
        ("BHD", 3, "10000.000", "1.250", "1.250 BHD", "0.0001", "account=0.004", 4_000_000),
        ("EUR", 2, "10000.00", "12.50", "12.50 EUR", "0.001", "account=0.04", 4_000_000),
    ],
    ids=["jpy-0", "bhd-3", "eur-2"],
)
def test_amounts_follow_the_constitutions_minor_digits(
    tmp_path: Path, case: tuple[str, int, str, str, str, str, str, int]
) -> None:
    currency, digits, opening, fund, held, too_fine, price, scaled = case
    data = _dao(tmp_path, currency, digits, opening)
    assert f"escrow holds {held}" in run(data, "market", "escrow", "fund", fund,
                                         "--operator", "ops", "--at", AT)  # fmt: skip
    out = run(data, "market", "escrow", "fund", too_fine, "--operator", "ops", "--at", AT,
              ok=False)  # fmt: skip
    assert f"more than {digits} decimals ({currency})" in out
    run(data, "market", "rfb", "create", "--operator", "ops", "--service", "hosting",
        "--quantity", "10", "--region", "eu", "--max-price", price, "--start", "+2d",
        "--term", "30d", "--deadline", "+1d", "--min-bond", fund, "--at", AT)  # fmt: skip
    [rfb] = json.loads(run(data, "market", "rfb", "list", "--json"))
    # A price is millionths of a minor unit per unit, whatever the minor unit is.
    assert rfb["max_prices"] == {"account": scaled}
    assert rfb["min_bond"] == int(fund.replace(".", ""))
    # --start and --deadline count from --at, not from the wall clock.
    assert rfb["deadline_ms"] == 1_735_689_600_000 + 86_400_000
