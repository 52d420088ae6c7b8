"""``plaza serve market`` and ``plaza serve prober`` as real processes on loopback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from typer.testing import CliRunner

from plaza.cli import app
from tests.market.test_cli import MANDATE


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


def test_serve_market_and_prober(tmp_path: Path, free_port: int) -> None:
    data = tmp_path / "plaza"
    mandate = tmp_path / "mandate.toml"
    mandate.write_text(MANDATE, encoding="utf-8")
    runner = CliRunner()
    for args in (
        ["dao", "keys", "new", "ops"],
        ["dao", "keys", "new", "p1"],
        ["dao", "keys", "new", "p2"],
        ["market", "open", "--operator", "ops", "--mandate", str(mandate), "--window", "60s"],
        ["market", "provider", "register", "--as", "p1", "--services", "prober",
         "--regions", "eu", "--endpoint", "https://p1.example", "--operator", "ops"],
    ):  # fmt: skip
        result = runner.invoke(app, [*args, "--data-dir", str(data)], catch_exceptions=False)
        assert result.exit_code == 0, result.output
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
        assert body["providers"] == 1 and body["params"]["window_s"] == 60
        # A provider signs for the market it posts to: its operator's DID, read from
        # GET /market; a registration for another market (--market) is refused.
        register = ["market", "provider", "register", "--as", "p2", "--services", "prober",
                    "--regions", "eu", "--endpoint", "https://p2.example", "--url", url,
                    "--data-dir", str(data)]  # fmt: skip
        elsewhere = runner.invoke(app, [*register, "--market", "did:key:zQ3shelsewhere"])
        assert elsewhere.exit_code == 1 and "WrongMarket" in elsewhere.output, elsewhere.output
        result = runner.invoke(app, register, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        assert httpx.get(f"{url}/market", timeout=5).json()["providers"] == 2
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
        time.sleep(1.0)  # a few probe rounds
        assert prober.poll() is None, prober.communicate()[0]
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
