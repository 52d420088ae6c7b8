"""The package layers point one way (docs/architecture.md, "Layers").

Each package may import only the packages below it. The check reads every module's
import statements (including function-level imports) with ``ast``, so a new upward
import anywhere fails here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "plaza"
BASE = {"errors"}

# package -> the plaza packages (top-level names) it may import besides itself
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "db": BASE,
    "asgi": BASE,
    "atproto": BASE,
    "ledger": BASE | {"atproto", "db"},
    "dao": BASE | {"asgi", "atproto", "db", "ledger"},
    "market": BASE | {"asgi", "atproto", "db", "ledger", "dao"},
    "services": BASE | {"asgi", "atproto", "db", "ledger"},
    "agents": BASE | {"atproto", "db", "ledger", "dao", "market", "services"},
    "sim": BASE | {"atproto", "db", "ledger", "dao", "market", "agents"},
}


def _plaza_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "plaza" and len(parts) > 1:
                found.add(parts[1])
    return found


def _package_of(path: Path) -> str:
    rel = path.relative_to(SRC).parts
    return rel[0].removesuffix(".py")


MODULES = sorted(p for p in SRC.rglob("*.py") if _package_of(p) in ALLOWED)


def test_every_layered_package_is_checked() -> None:
    packages = {_package_of(p) for p in MODULES}
    assert {"atproto", "ledger", "dao", "market", "agents", "sim", "services"} <= packages


@pytest.mark.parametrize("path", MODULES, ids=[str(p.relative_to(SRC)) for p in MODULES])
def test_imports_point_down(path: Path) -> None:
    package = _package_of(path)
    upward = _plaza_imports(path) - ALLOWED[package] - {package}
    assert not upward, f"plaza.{package} must not import {sorted(upward)} ({path.name})"


def test_the_checker_sees_an_upward_import(tmp_path: Path) -> None:
    bad = tmp_path / "m.py"
    bad.write_text("def f():\n    from plaza.market import Market\n")
    assert _plaza_imports(bad) == {"market"}
