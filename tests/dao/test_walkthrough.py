"""docs/governance.md's walkthrough runs as written: every command exits 0, in order.

The commands are read from the document (the ```sh block after the walkthrough marker),
so the documentation cannot drift from what the command line does.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from plaza.cli import app

DOC = Path(__file__).resolve().parents[2] / "docs" / "governance.md"


def walkthrough() -> list[str]:
    text = DOC.read_text(encoding="utf-8")
    block = re.search(r"<!-- walkthrough.*?-->\s*```sh\n(.*?)```", text, re.S)
    assert block, "docs/governance.md has no walkthrough block"
    return [ln for ln in block.group(1).splitlines() if ln.strip() and not ln.startswith("#")]


def test_the_walkthrough_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    env = {"PLAZA_DATA": str(tmp_path / ".plaza")}
    outputs: list[str] = []
    for line in walkthrough():
        argv = shlex.split(line)
        if argv[0] == "bean-check":
            tool = Path(sys.executable).with_name("bean-check")
            run = subprocess.run(
                [str(tool), *argv[1:]], check=False, capture_output=True, text=True, timeout=120
            )
            assert run.returncode == 0, (line, run.stdout, run.stderr)
            continue
        assert argv[0] == "plaza", line
        res = CliRunner().invoke(app, argv[1:], env=env)
        assert res.exit_code == 0, f"{line}\n{res.output}"
        outputs.append(res.output)
    text = "\n".join(outputs)
    # What the prose around the block promises.
    assert "proposal 5: Pay for the logo" in text
    assert "proposal 5: open" in text  # tallied before its window closed
    assert "proposal 5 executed" in text  # alice, and bob carrying carol: 3 of 4 yes
    assert "optimistic: motion 10 opened" in text
    assert "motion 10 executed" in text
    assert "now proposal 13" in text
    assert "proposal 16: Name the mobile app" in text
    assert "round 1: agora 1, forum 2, plaza 1; exhausted 0; eliminated plaza" in text
    assert "round 2: agora 1, forum 3; exhausted 0" in text
    assert "winner: forum" in text
    assert "ok: " in text  # the export verified
    # The keystore's secrets never reach the output.
    import json

    keys = json.loads((tmp_path / ".plaza" / "keys.json").read_text())
    for ident in keys["identities"].values():
        assert ident["secret"] not in text
    assert oct((tmp_path / ".plaza" / "keys.json").stat().st_mode)[-3:] == "600"
