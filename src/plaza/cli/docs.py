"""Render the whole ``plaza`` command tree as Markdown (the source of docs/cli.md)."""

from __future__ import annotations

import inspect
import textwrap
from typing import Any

import typer.main

HEADER = """# Command line reference

<!-- Generated from the commands' own --help texts by scripts/gen_cli_docs.py (`make docs`).
     Do not edit by hand: a test fails when this file and the commands disagree. -->

Every command also prints this text with `plaza COMMAND --help`.
"""


def _walk(cmd: Any, path: tuple[str, ...]) -> list[tuple[tuple[str, ...], Any]]:
    out = [(path, cmd)]
    for name, sub in sorted(getattr(cmd, "commands", {}).items()):
        if not getattr(sub, "hidden", False):
            out.extend(_walk(sub, (*path, name)))
    return out


def _options(cmd: Any) -> list[str]:
    lines = []
    for param in cmd.params:
        if getattr(param, "hidden", False):
            continue
        if param.param_type_name == "argument":
            lines.append(f"- `{(param.name or '').upper()}` (argument)")
            continue
        names = ", ".join(f"`{o}`" for o in [*param.opts, *param.secondary_opts])
        help_text = " ".join((getattr(param, "help", None) or "").split())
        lines.append(f"- {names}" + (f": {help_text}" if help_text else ""))
    return lines


def _help(text: str) -> str:
    # "\b" lines are click's keep-formatting markers, not content.
    text = "\n".join(line for line in text.splitlines() if line.strip() != "\b")
    body, sep, example = inspect.cleandoc(text).partition("Example:")
    out = "\n" + body.strip() + "\n" if body.strip() else ""
    if sep:
        out += "\nExample:\n\n```sh\n" + textwrap.dedent(example).strip("\n") + "\n```\n"
    return out


def render_cli_markdown() -> str:
    """Markdown for every command, in tree order: its help text and its options."""
    from plaza.cli import app

    root = typer.main.get_command(app)
    parts = [HEADER]
    for path, cmd in _walk(root, ("plaza",)):
        if len(path) == 1:
            continue
        is_group = hasattr(cmd, "commands")
        level = "#" * min(len(path), 4)
        parts.append(f"\n{level} `{' '.join(path)}`\n")
        parts.append(_help(cmd.help or ""))
        if not is_group:
            opts = _options(cmd)
            if opts:
                parts.append("\nOptions:\n\n" + "\n".join(opts) + "\n")
    return "".join(parts)
