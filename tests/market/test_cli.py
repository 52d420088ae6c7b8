"""``plaza market ...`` end to end on a data directory: a DAO founded with ``plaza dao
init``, providers joining, a request, bids (one rejected), an award, signatures, probes,
usage, settlement, and the DAO's books through bean-check."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from typer.testing import CliRunner

from plaza.cli import app
from tests.market.conftest import EPOCH_S, GENESIS, HOUR, TEST_MANDATE
from tests.market.test_end_to_end import check_books

MANDATE = TEST_MANDATE


def run(data: Path, *args: str, ok: bool = True) -> str:
    result = CliRunner().invoke(app, [*args, "--data-dir", str(data)], catch_exceptions=False)
    output = result.output + (result.stderr if result.stderr_bytes else "")
    assert (result.exit_code == 0) == ok, f"{args}: exit {result.exit_code}\n{output}"
    return output


def test_cli_market_under_a_dao(tmp_path: Path) -> None:
    data = tmp_path / "plaza"
    mandate = tmp_path / "mandate.toml"
    mandate.write_text(MANDATE, encoding="utf-8")
    for name in ("acme", "beta", "gamma", "p1", "p2", "p3"):
        run(data, "dao", "keys", "new", name)
    run(data, "dao", "init", "--founder", "alice", "--founder", "bob", "--founder", "carol",
        "--agent", "ops", "--mandate", str(mandate), "--opening", "10000.00",
        "--at", str(GENESIS - 10 * HOUR))  # fmt: skip
    genesis = datetime.fromtimestamp(GENESIS / 1000, UTC).isoformat()
    out = run(data, "market", "open", "--operator", "ops", "--epoch", f"{EPOCH_S}s",
              "--window", "60s", "--genesis", genesis, "--at", str(GENESIS - 9 * HOUR))  # fmt: skip
    assert "market open" in out
    t_reg = str(GENESIS - 8 * HOUR)
    for name in ("acme", "beta", "gamma"):
        run(data, "market", "provider", "register", "--as", name, "--services", "hosting",
            "--regions", "eu", "--capacity", "hosting:accounts=1000,gb=500",
            "--price", "hosting:account=0.05", "--bond", "1000.00",
            "--endpoint", f"https://{name}.example", "--operator", "ops",
            "--at", t_reg)  # fmt: skip
    for name in ("p1", "p2", "p3"):
        run(data, "market", "provider", "register", "--as", name, "--services", "prober",
            "--regions", "eu", "--endpoint", f"https://{name}.example", "--operator", "ops",
            "--at", t_reg)  # fmt: skip
    listed = json.loads(run(data, "market", "provider", "list", "--json"))
    assert [p["status"] for p in listed] == ["probation"] * 6
    dids = {p["endpoint"].split("//")[1].split(".")[0]: p["did"] for p in listed}

    out = run(data, "market", "rfb", "create", "--operator", "ops", "--service", "hosting",
              "--quantity", "1000", "--region", "eu",
              "--max-price", "account=0.10,gb_hour=0.02,request=0.00001,egress_gb=0.05",
              "--start", str(GENESIS), "--term", f"{2 * EPOCH_S}s",
              "--deadline", str(GENESIS - 2 * HOUR), "--profile", "gb_hour=1,request=100",
              "--at", str(GENESIS - 3 * HOUR))  # fmt: skip
    assert out.startswith("rfb-1:")
    t_bid = str(GENESIS - int(2.5 * HOUR))
    bid_args = ["--rfb", "rfb-1", "--quantity", "600", "--expires", str(GENESIS),
                "--operator", "ops", "--at", t_bid]  # fmt: skip
    rest = "gb_hour=0.01,request=0.000005,egress_gb=0.02"
    out = run(data, "market", "bid", "--as", "gamma", "--price", f"account=0.12,{rest}",
              *bid_args, ok=False)  # fmt: skip
    assert "OverMaxPrice" in out
    # The declared bond counts once the operator records the payment's receipt.
    out = run(data, "market", "bid", "--as", "acme", "--price", f"account=0.04,{rest}",
              "--bond", "100.00", *bid_args, ok=False)  # fmt: skip
    assert "no receipt yet" in out
    for name in ("acme", "beta", "gamma"):
        out = run(data, "market", "provider", "bond-received", dids[name], "--amount", "1000.00",
                  "--reference", f"SEPA-{name}", "--operator", "ops", "--at", t_bid)  # fmt: skip
        assert "bond held: 1000.00 EUR of 1000.00 EUR declared" in out
    out = run(data, "market", "provider", "bond-received", dids["acme"], "--amount", "1.00",
              "--reference", "SEPA-acme", "--operator", "ops", "--at", t_bid, ok=False)  # fmt: skip
    assert "already receipted" in out
    for name, price in (("acme", "0.04"), ("beta", "0.05"), ("gamma", "0.06")):
        run(data, "market", "bid", "--as", name, "--price", f"account={price},{rest}",
            "--bond", "100.00", *bid_args)  # fmt: skip
    award = json.loads(run(data, "market", "award", "rfb-1", "--operator", "ops", "--json",
                           "--at", str(GENESIS - 2 * HOUR)))  # fmt: skip
    assert [ln["allocated"] for ln in award["lines"]] == [400, 400, 200]
    contracts = award["contracts"]
    for cid in contracts:
        terms = json.loads(run(data, "market", "contract", "show", cid))
        name = next(n for n, d in dids.items() if d == terms["provider"])
        run(data, "market", "contract", "sign", cid, "--as", name, "--digest",
            terms["terms_digest"], "--operator", "ops",
            "--at", str(GENESIS - 90 * 60_000))  # fmt: skip
        out = run(data, "market", "contract", "approve", cid, "--operator", "ops",
                  "--at", str(GENESIS - HOUR))  # fmt: skip
        assert out.strip() == f"{cid} is active"
    run(data, "market", "escrow", "fund", "50.00", "--operator", "ops", "--at", str(GENESIS))

    after = str(GENESIS + EPOCH_S * 1000 + 60_000)
    ups, lat = "1" * 100, ",".join(["100"] * 100)
    for prober in ("p1", "p2", "p3"):
        for name in ("acme", "beta", "gamma"):
            run(data, "market", "probe", "report", "--as", prober, "--provider", dids[name],
                "--window", "0", "--up", ups, "--latency", lat, "--operator", "ops",
                "--at", after)  # fmt: skip
    acme_contract = next(c for c in contracts if json.loads(
        run(data, "market", "contract", "show", c))["provider"] == dids["acme"])  # fmt: skip
    run(data, "market", "usage", "report", "--as", "acme", "--contract", acme_contract,
        "--epoch", "0", "--accounts", "400", "--operator", "ops", "--at", after)  # fmt: skip
    result = json.loads(run(data, "market", "settle", "--epoch", "0", "--operator", "ops",
                            "--json", "--at", after))  # fmt: skip
    # 400 accounts x 0.04 EUR = 16.00 EUR for acme; the others reported nothing.
    assert result["payments"] == {f"inv-{acme_contract}-0": 1600}
    invoice = json.loads(run(data, "market", "invoice", "show", f"inv-{acme_contract}-0"))
    assert (invoice["amount"], invoice["outstanding"]) == (1600, 0)
    books = tmp_path / "dao.beancount"
    run(data, "dao", "books", "-o", str(books))
    check_books(books.read_text(encoding="utf-8"), tmp_path)
    assert "Expenses:Infrastructure" in books.read_text(encoding="utf-8")
