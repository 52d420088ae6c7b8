"""``plaza agents run`` on a data directory: a DAO founded with ``plaza dao init`` under
the shipped default mandate, its market with two contracted providers and an ended
epoch; one pass funds escrow and settles it, printing each action with its verdict and
reason; every action lands in the ledger."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from typer.testing import CliRunner

from plaza.cli import app

GENESIS = 1_700_000_000_000
EPOCH_S = 6_000
HOUR = 3_600_000


def run(data: Path, *args: str, code: int = 0) -> str:
    result = CliRunner().invoke(app, [*args, "--data-dir", str(data)], catch_exceptions=False)
    output = result.output + (result.stderr if result.stderr_bytes else "")
    assert result.exit_code == code, f"{args}: exit {result.exit_code}\n{output}"
    return output


def market_with_an_ended_epoch(data: Path) -> None:
    for name in ("acme", "beta", "p1", "p2", "p3"):
        run(data, "dao", "keys", "new", name)
    run(data, "dao", "init", "--founder", "alice", "--founder", "bob", "--founder", "carol",
        "--agent", "ops", "--opening", "10000.00", "--at", str(GENESIS - 10 * HOUR))  # fmt: skip
    genesis = datetime.fromtimestamp(GENESIS / 1000, UTC).isoformat()
    run(data, "market", "open", "--operator", "ops", "--epoch", f"{EPOCH_S}s", "--window", "60s",
        "--genesis", genesis, "--at", str(GENESIS - 9 * HOUR))  # fmt: skip
    t = str(GENESIS - 8 * HOUR)
    for name in ("acme", "beta"):
        run(data, "market", "provider", "register", "--as", name, "--services", "hosting",
            "--regions", "eu", "--capacity", "hosting:accounts=1000", "--price",
            "hosting:account=0.05", "--bond", "10.00", "--endpoint", f"https://{name}.example",
            "--operator", "ops", "--at", t)  # fmt: skip
    for name in ("p1", "p2", "p3"):
        run(data, "market", "provider", "register", "--as", name, "--services", "prober",
            "--regions", "eu", "--endpoint", f"https://{name}.example", "--operator", "ops",
            "--at", t)  # fmt: skip
    run(data, "market", "rfb", "create", "--operator", "ops", "--service", "hosting",
        "--quantity", "400", "--region", "eu", "--max-price", "account=0.10",
        "--start", str(GENESIS), "--term", f"{2 * EPOCH_S}s", "--deadline",
        str(GENESIS - 2 * HOUR), "--at", str(GENESIS - 3 * HOUR))  # fmt: skip
    for name in ("acme", "beta"):
        run(data, "market", "bid", "--as", name, "--rfb", "rfb-1", "--quantity", "200",
            "--price", "account=0.05", "--expires", str(GENESIS), "--operator", "ops",
            "--at", str(GENESIS - int(2.5 * HOUR)))  # fmt: skip
    award = json.loads(run(data, "market", "award", "rfb-1", "--operator", "ops", "--json",
                           "--at", str(GENESIS - 2 * HOUR)))  # fmt: skip
    for cid in award["contracts"]:
        terms = json.loads(run(data, "market", "contract", "show", cid))
        name = "acme" if terms["provider"] == _did(data, "acme") else "beta"
        run(data, "market", "contract", "sign", cid, "--as", name, "--digest",
            terms["terms_digest"], "--operator", "ops",
            "--at", str(GENESIS - 90 * 60_000))  # fmt: skip
        run(data, "market", "contract", "approve", cid, "--operator", "ops",
            "--at", str(GENESIS - HOUR))  # fmt: skip
    after = str(GENESIS + EPOCH_S * 1000 + 60_000)
    ups, lat = "1" * 100, ",".join(["100"] * 100)
    for prober in ("p1", "p2", "p3"):
        for name in ("acme", "beta"):
            run(data, "market", "probe", "report", "--as", prober, "--provider", _did(data, name),
                "--window", "0", "--up", ups, "--latency", lat, "--operator", "ops",
                "--at", after)  # fmt: skip
    for cid in award["contracts"]:
        terms = json.loads(run(data, "market", "contract", "show", cid))
        name = "acme" if terms["provider"] == _did(data, "acme") else "beta"
        run(data, "market", "usage", "report", "--as", name, "--contract", cid, "--epoch", "0",
            "--accounts", "200", "--operator", "ops", "--at", after)  # fmt: skip


def _did(data: Path, name: str) -> str:
    keys = json.loads((data / "keys.json").read_text())
    return str(keys["identities"][name]["did"])


def test_one_pass_settles_and_prints_every_action(tmp_path: Path) -> None:
    data = tmp_path / "plaza"
    market_with_an_ended_epoch(data)
    at = str(GENESIS + EPOCH_S * 1000 + 10 * 60_000)
    out = run(data, "agents", "run", "--as", "ops", "--once", "--at", at)
    assert "settlement.pay executed (allow)" in out
    assert "settlement.settle executed (allow)" in out
    assert "why: settling epochs 0 will owe 20.00 EUR" in out  # 2 x 200 accounts x 0.05
    assert "paid 20.00 EUR of 20.00 EUR owed" in out
    # A second pass has nothing left to do; --json prints one object per action.
    again = run(data, "agents", "run", "--as", "ops", "--once", "--at", at, "--json")
    assert again.strip() == ""
    # Every action is a signed ledger event with its verdict and reason.
    from plaza.ledger import SqlEventStore

    store = SqlEventStore.open(f"sqlite://{data / 'ledger.db'}")
    actions = [ev.payload for ev in store.read() if ev.type == "agent.action"]
    assert [(a["action"]["kind"], a["outcome"], a["verdict"]) for a in actions] == [
        ("settlement.pay", "executed", "allow"),
        ("settlement.settle", "executed", "allow"),
    ]
    assert actions[1]["reason"]["rule"] == "settlement.settle-ended-epochs"
    store.close()


def test_once_or_interval(tmp_path: Path) -> None:
    out = run(tmp_path, "agents", "run", "--as", "ops", code=2)
    assert "exactly one of --once and --interval" in out
    out = run(tmp_path, "agents", "run", "--as", "ops", "--once", "--interval", "5", code=2)
    assert "exactly one" in out
