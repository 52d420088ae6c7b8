"""The one loader of the shared interop vectors (``../shared/vectors``).

Vectors are read from the shared folder beside the repository, never copied in. The
folder is found from ``PLAZA_SHARED`` or by walking up from the repository root.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

_ROOT = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    env = os.environ.get("PLAZA_SHARED")
    if env:
        return Path(env)
    for parent in _ROOT.parents:
        candidate = parent / "shared"
        if (candidate / "vectors").is_dir():
            return candidate
    raise RuntimeError(
        "shared vectors not found: put the shared folder beside the repository "
        "or set PLAZA_SHARED to its path"
    )


def vector_path(*parts: str) -> Path:
    path = shared_dir().joinpath("vectors", *parts)
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
