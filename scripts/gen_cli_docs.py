"""Write docs/cli.md from the ``plaza`` command tree (every command's --help text).

Usage: python scripts/gen_cli_docs.py [--check]
With --check, exit 1 if docs/cli.md differs from what would be written.
"""

from __future__ import annotations

import sys
from pathlib import Path

from plaza.cli.docs import render_cli_markdown

TARGET = Path(__file__).resolve().parents[1] / "docs" / "cli.md"


def main() -> int:
    text = render_cli_markdown()
    if "--check" in sys.argv[1:]:
        if not TARGET.exists() or TARGET.read_text() != text:
            print("docs/cli.md is out of date: run `make docs`", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text)
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
