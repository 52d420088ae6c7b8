"""`plaza load` against a small real network: two PDSs under contract in a DAO's market.
Members sign up on the PDSs, post, follow and read; the trace is written; the run is
priced against the simulator's oracle for the same accounts per step."""

from __future__ import annotations

import asyncio
import csv
import json
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from plaza.cli import app
from plaza.errors import InvalidInputError
from plaza.network.load import LoadPlan, LoadRun
from plaza.network.load_cost import MarketPicture, compare
from tests.network.livenet import GENESIS, contract, live_net, register, signer


def test_a_plan_without_a_target_or_users_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="entryway"):
        LoadPlan(users=1, duration_s=1)
    with pytest.raises(InvalidInputError, match="users"):
        LoadPlan(users=0, duration_s=1, pds=("http://x",))


def test_the_oracle_prices_exactly_the_capacity_the_load_needed() -> None:
    c = {
        "service": "hosting", "quantity": 4, "released": 0, "approval": "mandate",
        "start_ms": 0, "end_ms": 10**9, "ended_ms": 0, "min_term_s": 3600,
        "unit_prices": {"account": 1_000_000},
    }  # fmt: skip
    m = MarketPicture(epoch_s=10, currency="EUR", minor_digits=2, contracts=(c,))
    # 4 accounts held for 10 s at 1 cent per account and epoch of 10 s: 0.04 EUR; the
    # load held 4 accounts throughout, so the oracle buys the same.
    out = compare(m, [4] * 10, 1.0, 0)
    assert out["cost"] == pytest.approx(0.04) and out["oracle"] == pytest.approx(0.04, rel=1e-3)
    half = compare(m, [2] * 10, 1.0, 0)
    assert half["ratio"] == pytest.approx(2.0, rel=1e-3)


def test_load_on_a_small_network(tmp_path: Path) -> None:
    acme, beta = signer("acme-l"), signer("beta-l")
    with live_net(tmp_path, 2) as net:
        m = net.market
        register(m, acme, net.pds[0], accounts=50, price=1_000_000, t=net.now[0])
        register(m, beta, net.pds[1], accounts=50, price=2_000_000, t=net.now[0])
        contract(m, [(acme, 5), (beta, 5)], net.now[0] + 10)
        lines: list[str] = []
        run = LoadRun(
            LoadPlan(users=4, duration_s=3.0, pds=tuple(net.pds), think_s=0.3, step_s=1.0),
            progress=lines.append,
        )
        report = asyncio.run(run.run())
        assert report["ok"]["signup"] == 4 and report["errors"] == {}
        assert report["ok"]["post"] >= 4 and report["ok"]["follow"] >= 4
        assert report["ok"]["read"] >= 1 and report["reads"] == "listRecords (no app view)"
        assert report["accounts"] == {"before": 0, "after": 4}
        assert report["throughput_rps"] > 0
        # Every member's posts and follows are in their repositories.
        posts = 0
        for pds in net.pds:
            for repo in httpx.get(f"{pds}/xrpc/com.atproto.sync.listRepos").json()["repos"]:
                posts += len(
                    httpx.get(
                        f"{pds}/xrpc/com.atproto.repo.listRecords",
                        params={"repo": repo["did"], "collection": "app.bsky.feed.post"},
                    ).json()["records"]
                )
        assert posts == report["ok"]["post"]
        trace = tmp_path / "trace.csv"
        run.trace.write(trace)
        rows = list(csv.DictReader(trace.open()))
        assert sum(int(r["requests"]) for r in rows) == report["requests"]
        assert rows[-1]["accounts"] == "4"

        # Priced over a span when the contracts ran: 10 accounts held, 4 needed.
        picture = MarketPicture.of(
            httpx.get(f"{net.market_url}/market").json(),
            httpx.get(f"{net.market_url}/market/contracts").json(),
        )
        cost = compare(picture, [4] * 10, 1.0, GENESIS)
        assert cost["contracts"] == 2 and cost["ratio"] > 2

        # The command: sign-ups straight on a PDS, the trace, the JSON report.
        out = CliRunner().invoke(
            app,
            ["load", "--users", "2", "--duration", "1", "--pds", net.pds[0], "--think", "0.2",
             "--trace", str(tmp_path / "cli.csv"), "--market", net.market_url, "--json"],
        )  # fmt: skip
        assert out.exit_code == 0, out.output
        body = json.loads(out.stdout[out.stdout.index("{") :])
        assert body["ok"]["signup"] == 2 and body["accounts"]["before"] >= 2
        assert body["cost"]["why"].startswith("no hosting contract")  # they start later
        assert (tmp_path / "cli.csv").exists()
