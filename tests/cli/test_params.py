"""Options that cannot be right are usage errors (exit 2) that name the option."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from plaza.cli import app


def _usage_error(*argv: str) -> str:
    res = CliRunner().invoke(app, list(argv))
    assert res.exit_code == 2, res.output
    return res.output


@pytest.mark.parametrize("base", ["70000", "65531", "0", "-5"])
def test_up_refuses_a_port_base_whose_range_leaves_the_ports(base: str) -> None:
    # Every HTTP service of the network on base .. base + PORTS - 1.
    from plaza.network.processes import PORTS

    out = _usage_error("up", "--port-base", base, "--data-dir", "never-created")
    assert "'--port-base'" in out
    assert f"must be 1..{65536 - PORTS}" in out


def test_up_takes_the_highest_port_base_that_fits() -> None:
    from plaza.cli.params import port_range

    assert port_range(65530, 6) == 65530
    assert port_range(1, 6) == 1


@pytest.mark.parametrize(
    ("argv", "option"),
    [
        (["serve", "directory", "--port", "65536"], "'--port'"),
        (["serve", "directory", "--port", "-1"], "'--port'"),
        (["serve", "pds", "--port", "0"], "'--port'"),
        (["dao", "serve", "--port", "70000"], "'--port'"),
        (["serve", "market", "--operator", "ops", "--port", "70000"], "'--port'"),
    ],
    ids=["directory-high", "directory-negative", "pds-zero", "dao", "market"],
)
def test_ports_out_of_range_are_usage_errors(argv: list[str], option: str) -> None:
    assert option in _usage_error(*argv)


@pytest.mark.parametrize(
    "argv",
    [
        ["account", "migrate", "--did", "notadid", "--from", "http://a", "--to", "http://b"],
        ["repo", "verify", "x.car", "--did", "did:PLC:x"],
        ["market", "provider", "show", "did:PLC:x"],
        ["market", "probe", "report", "--as", "p", "--provider", "did:x", "--window", "1",
         "--up", "1", "--latency", "5"],
        ["market", "bid", "--as", "a", "--rfb", "rfb-1", "--quantity", "1", "--price",
         "account=1", "--expires", "+1d", "--did", "acme"],
        ["dao", "keys", "register", "dora", "--did", "did:web:example.com"],
        ["serve", "pds", "--appview-did", "appview"],
    ],
    ids=["migrate", "repo-verify", "provider-show", "probe-provider", "bid-did", "keys-plc",
         "appview-did"],
)  # fmt: skip
def test_malformed_dids_are_usage_errors(argv: list[str]) -> None:
    out = _usage_error(*argv)
    assert "invalid did" in out.lower()


@pytest.mark.parametrize(
    "argv",
    [
        ["market", "bid", "--as", "acme", "--rfb", "rfb-1", "--quantity", "1",
         "--price", "account=0.04", "--expires", "+1d"],
        ["market", "usage", "report", "--as", "acme", "--contract", "c-1", "--epoch", "0"],
        ["market", "contract", "sign", "c-1", "--as", "acme", "--digest", "00"],
    ],
    ids=["bid", "usage", "sign"],
)  # fmt: skip
def test_url_with_at_is_a_usage_error(argv: list[str], free_port: int) -> None:
    # Nothing listens at the URL: the refusal comes before any request.
    url = f"http://127.0.0.1:{free_port}"
    out = _usage_error(*argv, "--url", url, "--at", "2025-01-01T00:00Z")
    assert "'--at'" in out and "records at its own time" in out
