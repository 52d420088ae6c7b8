"""``make up PORT_BASE=N`` hands the port base to ``plaza up``."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _make_up(*args: str) -> str:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    run = subprocess.run(
        ["make", "-n", "--no-print-directory", "-C", str(ROOT), "up", *args],
        check=True, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    return run.stdout.strip().splitlines()[-1]


def test_make_up_passes_the_port_base() -> None:
    assert _make_up("PORT_BASE=8000").endswith("plaza up --port-base 8000")


def test_make_up_without_a_port_base_uses_the_default() -> None:
    assert _make_up().endswith("plaza up")
