"""``plaza bench web`` runs end to end on a tiny network (every service, the web client
included, in its own ``plaza serve`` process) and prints the promised JSON. Speed is
never asserted; the JavaScript budget (per page, uncompressed) is."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from plaza.cli import app

KEYS = {
    "ttfb_p50_ms",
    "ttfb_p95_ms",
    "page_p95_ms",
    "pages_per_s",
    "web_cpu_ms_per_page",
    "load_avg",
}
PAGES = {f"{p}_ttfb_p95_ms" for p in ("home", "profile", "thread", "governance", "network")}


@pytest.mark.slow
def test_bench_web_prints_its_figures() -> None:
    args = ["bench", "web", "--users", "3", "--requests", "4", "--posts", "1", "--follows", "2"]
    result = CliRunner().invoke(app, [*args, "--think-ms", "0", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out.keys() >= KEYS | PAGES and out["users"] == 3 and out["requests"] == 12
    assert out["workers"] >= 2  # as plaza up runs it
    assert out["baseline"].keys() >= KEYS | PAGES and out["baseline"]["requests"] == 12
    assert all(out[k] > 0 and out["baseline"][k] > 0 for k in KEYS - {"load_avg"})
    per_page = out["js_bytes_raw_per_page"]
    assert per_page.keys() >= {"home", "profile", "thread", "governance", "network"}
    assert out["js_bytes_raw_max"] == max(per_page.values()) <= 50_000
    assert 0 < out["js_bytes_gzip_max"] < out["js_bytes_raw_max"]
    assert per_page["governance"] < per_page["home"]  # the signer, not htmx
    assert out["failed"] == 0 and out["baseline"]["failed"] == 0
