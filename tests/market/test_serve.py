"""``plaza serve market`` and ``plaza serve prober`` as real processes on loopback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from typer.testing import CliRunner

from plaza.cli import app
from plaza.ledger import SqlEventStore
from tests.market.test_cli import MANDATE

MINUTE = 60_000
# Under this mandate one provider may take a whole request and awards are automatic,
# so a contract is active without waiting out a veto window on the wall clock.
ONE_PROVIDER = (
    MANDATE.replace('class = "optimistic"\nwindow = "1h"', 'class = "automatic"')
    .replace("max_provider_share_ppm = 400000", "max_provider_share_ppm = 1000000")
    .replace("hhi_ceiling = 4000", "hhi_ceiling = 10000")
)


def _plaza(*args: str) -> list[str]:
    return [str(Path(sys.executable).parent / "plaza"), *args]


def _wait(url: str, seconds: float = 30) -> httpx.Response:
    deadline = time.monotonic() + seconds
    while True:
        try:
            return httpx.get(url, timeout=2)
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


class _Healthy(BaseHTTPRequestHandler):
    """A relay that answers its health check."""

    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/xrpc/_health" else 404)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def _relay() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Healthy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _probe_reports(data: Path) -> list[dict[str, Any]]:
    store = SqlEventStore.open(f"sqlite://{data / 'ledger.db'}")
    try:
        return [e.payload["doc"] for e in store.read(0) if e.type == "market.probes.reported"]
    finally:
        store.close()


def _contract(data: Path, runner: CliRunner, relay: str, now: int) -> str:
    """A market on ``data`` with one-second probe windows and an active relay contract
    with provider ``h1`` at ``relay``, built in the recent past; returns h1's DID."""
    mandate = data.parent / "mandate.toml"
    mandate.write_text(ONE_PROVIDER, encoding="utf-8")
    genesis = datetime.fromtimestamp((now - 30 * MINUTE) / 1000, UTC).isoformat()

    def run(*args: str, at: int | None = None) -> str:
        when = ["--at", str(at)] if at is not None else []
        result = runner.invoke(app, [*args, *when, "--data-dir", str(data)])
        assert result.exit_code == 0, (args, result.output)
        return result.output

    for name in ("ops", "p1", "p2", "h1"):
        run("dao", "keys", "new", name)
    run("market", "open", "--operator", "ops", "--mandate", str(mandate), "--window", "1s",
        "--epoch", "3600s", "--genesis", genesis, at=now - 20 * MINUTE)  # fmt: skip
    run("market", "provider", "register", "--as", "p1", "--services", "prober", "--regions",
        "eu", "--endpoint", "https://p1.example", "--operator", "ops",
        at=now - 19 * MINUTE)  # fmt: skip
    run("market", "provider", "register", "--as", "h1", "--services", "relay", "--regions",
        "eu", "--capacity", "relay:accounts=100", "--price", "relay:account=0.05",
        "--endpoint", relay, "--operator", "ops", at=now - 19 * MINUTE)  # fmt: skip
    run("market", "rfb", "create", "--operator", "ops", "--service", "relay", "--quantity",
        "10", "--region", "eu", "--max-price", "account=0.10", "--start",
        str(now - 5 * MINUTE), "--term", "3600s", "--deadline", str(now - 6 * MINUTE),
        at=now - 15 * MINUTE)  # fmt: skip
    run("market", "bid", "--as", "h1", "--rfb", "rfb-1", "--quantity", "10", "--price",
        "account=0.05", "--expires", str(now + 60 * MINUTE), "--operator", "ops",
        at=now - 14 * MINUTE)  # fmt: skip
    award = json.loads(run("market", "award", "rfb-1", "--operator", "ops", "--json",
                           at=now - 4 * MINUTE))  # fmt: skip
    assert len(award["contracts"]) == 1, award
    [cid] = award["contracts"]
    terms = json.loads(run("market", "contract", "show", cid))
    run("market", "contract", "sign", cid, "--as", "h1", "--digest", terms["terms_digest"],
        "--operator", "ops", at=now - 3 * MINUTE)  # fmt: skip
    out = run("market", "contract", "approve", cid, "--operator", "ops", at=now - 2 * MINUTE)
    assert out.strip() == f"{cid} is active"
    return str(terms["provider"])


def test_serve_market_and_prober(tmp_path: Path, free_port: int) -> None:
    data = tmp_path / "plaza"
    runner = CliRunner()
    with _relay() as relay:
        relay_did = _contract(data, runner, relay, int(time.time() * 1000))
        _serve_and_probe(data, runner, free_port, relay_did)


def _serve_and_probe(data: Path, runner: CliRunner, free_port: int, relay_did: str) -> None:
    env = {**os.environ, "PLAZA_MARKET_TOKEN": "secret-token"}
    url = f"http://127.0.0.1:{free_port}"
    market = subprocess.Popen(
        _plaza("serve", "market", "--operator", "ops", "--port", str(free_port),
               "--data-dir", str(data)),
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    prober = None
    logs: list[str] = []
    try:
        body = _wait(f"{url}/market").json()
        assert body["providers"] == 2 and body["params"]["window_s"] == 1
        # A provider signs for the market it posts to: its operator's DID, read from
        # GET /market; a registration for another market (--market) is refused.
        register = ["market", "provider", "register", "--as", "p2", "--services", "prober",
                    "--regions", "eu", "--endpoint", "https://p2.example", "--url", url,
                    "--data-dir", str(data)]  # fmt: skip
        elsewhere = runner.invoke(app, [*register, "--market", "did:key:zQ3shelsewhere"])
        assert elsewhere.exit_code == 1 and "WrongMarket" in elsewhere.output, elsewhere.output
        result = runner.invoke(app, register, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        assert httpx.get(f"{url}/market", timeout=5).json()["providers"] == 3
        denied = httpx.post(f"{url}/market/settle", json={"epoch": 0}, timeout=5)
        assert (denied.status_code, denied.json()["error"]) == (401, "AuthRequired")
        prober = subprocess.Popen(
            _plaza("serve", "prober", "--as", "p1", "--market", url, "--interval", "0.2",
                   "--data-dir", str(data)),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        assert prober.stdout is not None
        first = prober.stdout.readline()  # printed once the prober is about to start
        assert "probing for" in first, first + prober.communicate()[0]
        # The prober probes the relay, and once a one-second window closes signs its
        # sample and posts it; the market records it in the ledger.
        deadline = time.monotonic() + 30
        while not (reports := _probe_reports(data)):
            assert prober.poll() is None, prober.communicate()[0]
            assert time.monotonic() < deadline, "no probe sample reached the ledger in 30 s"
            time.sleep(0.05)
        p1 = httpx.get(f"{url}/market/providers/{reports[0]['prober']}", timeout=5).json()
        assert p1["services"] == ["prober"] and p1["endpoint"] == "https://p1.example"
        [series] = reports[0]["series"]
        assert (series["provider"], series["up"]) == (relay_did, b"\x01")
        prober.send_signal(signal.SIGINT)
        out, _ = prober.communicate(timeout=20)
        assert "stopped" in out
    finally:
        for proc in (prober, market):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                logs.append(proc.communicate(timeout=20)[0])
    assert "market listening on" in logs[-1]
    assert "secret-token" not in logs[-1]
