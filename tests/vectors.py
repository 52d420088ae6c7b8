"""The one loader of the interop vectors and data sets in ``data/`` (see ``data/README.md``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

_ROOT = Path(__file__).resolve().parents[1]


DATA = _ROOT / "data"


def vector_path(*parts: str) -> Path:
    path = DATA.joinpath("vectors", *parts)
    if not path.exists():
        raise FileNotFoundError(f"missing interop vector file {path}")
    return path


def load_json(*parts: str) -> Any:
    return json.loads(vector_path(*parts).read_text())


def load_lines(*parts: str) -> list[str]:
    """Non-comment, non-blank lines of a syntax vector file (whitespace kept inside)."""
    lines = []
    for line in vector_path(*parts).read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        lines.append(line)
    return lines


def params(items: list[Any], id_of: Any = None) -> list[Any]:
    """Wrap items as ``pytest.param`` with readable ids."""
    out = []
    for i, item in enumerate(items):
        ident = id_of(item) if id_of else str(item)
        out.append(pytest.param(item, id=f"{i}-{ident}"[:80]))
    return out
