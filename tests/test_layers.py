"""The package layers point one way, and no modules import each other in a cycle
(docs/architecture.md, "Packages and layers").

Each package may import only the packages below it. The checks read every module's
import statements with ``ast`` (function-level imports and those under ``TYPE_CHECKING``
count), so a new upward import or a new cycle anywhere fails here. A module past
:data:`MAX_LINES` lines holds more than one concept and fails too.
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
    "moderation": BASE | {"asgi", "atproto", "db", "ledger", "services"},
    "agents": BASE | {"atproto", "db", "ledger", "dao", "market", "services"},
    "sim": BASE | {"atproto", "db", "ledger", "dao", "market", "agents"},
    "assist": BASE | {"atproto", "db", "ledger", "dao", "market", "agents"},
    "network": BASE
    | {"asgi", "atproto", "db", "ledger", "dao", "market", "services", "agents", "sim", "assist"},
    "web": BASE | {"asgi", "atproto", "db", "ledger", "dao", "market", "services", "assist"},
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
    assert {
        "atproto",
        "ledger",
        "dao",
        "market",
        "agents",
        "sim",
        "services",
        "network",
        "web",
        "moderation",
    } <= packages


@pytest.mark.parametrize("path", MODULES, ids=[str(p.relative_to(SRC)) for p in MODULES])
def test_imports_point_down(path: Path) -> None:
    package = _package_of(path)
    upward = _plaza_imports(path) - ALLOWED[package] - {package}
    assert not upward, f"plaza.{package} must not import {sorted(upward)} ({path.name})"


MAX_LINES = 600


def _module_name(path: Path, root: Path) -> str:
    parts = ("plaza", *path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported_modules(path: Path, root: Path, known: set[str]) -> set[str]:
    """The plaza modules ``path`` imports, absolute or relative, each resolved to the
    longest known module name (``from plaza.x import y`` is ``plaza.x.y`` if that is a
    module, else ``plaza.x``)."""
    name = _module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            targets += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets += [base] + [f"{base}.{alias.name}" for alias in node.names]
    found = set()
    for target in targets:
        while target and target not in known:
            target = target.rpartition(".")[0]
        # a package's own __init__ re-exporting its submodules is not a cycle
        if target and target != name and not target.startswith(name + "."):
            found.add(target)
    return found


def import_cycles(root: Path) -> list[list[str]]:
    """The strongly connected sets of two or more modules of the ``plaza`` package at
    ``root`` (Tarjan's algorithm)."""
    modules = {_module_name(p, root): p for p in sorted(root.rglob("*.py"))}
    edges = {m: _imported_modules(p, root, set(modules)) for m, p in modules.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(m: str) -> None:
        index[m] = low[m] = len(index)
        stack.append(m)
        for n in sorted(edges[m]):
            if n not in index:
                visit(n)
                low[m] = min(low[m], low[n])
            elif n in stack:
                low[m] = min(low[m], index[n])
        if low[m] == index[m]:
            component = []
            while True:
                n = stack.pop()
                component.append(n)
                if n == m:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for m in sorted(modules):
        if m not in index:
            visit(m)
    return cycles


ALL_MODULES = sorted(SRC.rglob("*.py"))


def test_no_import_cycles() -> None:
    cycles = import_cycles(SRC)
    assert not cycles, "modules importing each other in a cycle: " + " | ".join(
        ", ".join(c) for c in cycles
    )


def test_the_cycle_checker_sees_a_cycle_through_a_function_import(tmp_path: Path) -> None:
    root = tmp_path / "plaza"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "a.py").write_text("from plaza.pkg import b\n")
    (root / "pkg" / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import x\n"
    )
    assert import_cycles(root) == [["plaza.pkg.a", "plaza.pkg.b"]]
    (root / "pkg" / "b.py").write_text("")
    assert import_cycles(root) == []


@pytest.mark.parametrize("path", ALL_MODULES, ids=[str(p.relative_to(SRC)) for p in ALL_MODULES])
def test_a_module_holds_one_concept(path: Path) -> None:
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{path.name} has {lines} lines: split it along a real boundary"


def test_the_checker_sees_an_upward_import(tmp_path: Path) -> None:
    bad = tmp_path / "m.py"
    bad.write_text("def f():\n    from plaza.market import Market\n")
    assert _plaza_imports(bad) == {"market"}
