"""Run a document's walkthrough as written: its marked ``sh`` blocks, in order.

A block belongs to the walkthrough when the line before its opening fence is an HTML
comment starting ``<!-- walkthrough``. The lines run one at a time (a trailing
backslash continues a line; ``#`` comments and blank lines are skipped) in the current
directory, each of these forms only, so that a block stays plain ``sh`` a reader can
paste into a shell:

- ``plaza ARGS...`` runs the command line in-process, through the app the ``plaza``
  console script runs;
- ``NAME=$(plaza ARGS...)`` does the same and keeps its standard output, stripped, as
  ``$NAME`` (or ``"$NAME"``, ``${NAME}``) for the lines after it;
- any other program (``bean-check FILE``) runs from the folder of ``sys.executable``,
  where the project's environment installs its tools.

Every command must exit 0; :func:`run_walkthrough` returns what each one printed.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from typer.testing import CliRunner

from plaza.cli import app

DOCS = Path(__file__).resolve().parents[1] / "docs"

_BLOCK = re.compile(r"<!-- walkthrough[^>]*-->\s*\n```sh\n(.*?)```", re.S)
_CAPTURE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=\$\((.*)\)")
_VAR = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")


@dataclass(frozen=True)
class Step:
    """One command line of a walkthrough and what it printed."""

    line: str
    output: str


def walkthrough_lines(doc: Path) -> list[str]:
    """The command lines of ``doc``'s marked ``sh`` blocks, continuations joined."""
    blocks = _BLOCK.findall(doc.read_text(encoding="utf-8"))
    assert blocks, f"{doc.name} has no <!-- walkthrough --> sh block"
    lines: list[str] = []
    for block in blocks:
        pending = ""
        for raw in block.splitlines():
            text = raw.strip()
            if not pending and (not text or text.startswith("#")):
                continue
            if text.endswith("\\"):
                pending += text[:-1].rstrip() + " "
                continue
            lines.append(pending + text)
            pending = ""
        assert not pending, f"{doc.name}: a walkthrough block ends in a continuation"
    return lines


def _expand(token: str, names: dict[str, str], line: str) -> str:
    def value(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        assert name in names, f"{line}: ${name} is not set by an earlier line"
        return names[name]

    return _VAR.sub(value, token)


def _run(argv: list[str], line: str, env: dict[str, str]) -> str:
    if argv[0] == "plaza":
        res = CliRunner().invoke(app, argv[1:], env=env)
        assert res.exit_code == 0, f"{line}\nexit {res.exit_code}\n{res.output}"
        return res.stdout
    assert "/" not in argv[0], f"{line}: name the program, not a path"
    tool = Path(sys.executable).with_name(argv[0])
    done = subprocess.run(
        [str(tool), *argv[1:]], check=False, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"{line}\nexit {done.returncode}\n{done.stdout}{done.stderr}"
    return done.stdout


def run_walkthrough(doc: Path, env: dict[str, str] | None = None) -> list[Step]:
    """Run ``doc``'s walkthrough in the current directory (see the module docstring)."""
    names: dict[str, str] = {}
    steps = []
    for line in walkthrough_lines(doc):
        assert not re.search(r"[|;&<>`]", line.replace("$(", "")), f"not a plain command: {line}"
        capture = _CAPTURE.fullmatch(line)
        command = capture.group(2) if capture else line
        argv = [_expand(t, names, line) for t in shlex.split(command)]
        output = _run(argv, line, env or {})
        if capture:
            names[capture.group(1)] = output.strip()
        steps.append(Step(line, output))
    return steps
