"""Every command is documented: a ``--help`` text with an ``Example:`` block."""

from __future__ import annotations

from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from plaza.cli import app


def _is_group(cmd: Any) -> bool:
    return hasattr(cmd, "commands")


def _walk(cmd: Any, path: tuple[str, ...] = ()) -> list[tuple[str, Any]]:
    out = [(" ".join(path), cmd)]
    if _is_group(cmd):
        for name, sub in sorted(cmd.commands.items()):
            out.extend(_walk(sub, (*path, name)))
    return out


COMMANDS = _walk(typer.main.get_command(app), ("plaza",))
LEAVES = [(name, cmd) for name, cmd in COMMANDS if not _is_group(cmd)]


def test_there_are_commands() -> None:
    assert len(LEAVES) >= 1


@pytest.mark.parametrize(("name", "cmd"), LEAVES, ids=[n for n, _ in LEAVES])
def test_command_has_help_with_example(name: str, cmd: Any) -> None:
    help_text = cmd.help or ""
    assert help_text.strip(), f"{name} has no help text"
    assert "Example:" in help_text, f"{name} --help has no 'Example:' block"
    example = help_text.split("Example:", 1)[1]
    assert name.rsplit(maxsplit=1)[-1] in example, f"{name}: the example does not show the command"


@pytest.mark.parametrize(("name", "cmd"), COMMANDS, ids=[n for n, _ in COMMANDS])
def test_help_renders(name: str, cmd: Any) -> None:
    args = [*name.split()[1:], "--help"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output
