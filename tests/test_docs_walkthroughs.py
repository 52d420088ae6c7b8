"""The walkthroughs of docs/governance.md, docs/market.md and docs/agents.md run as
written, from the local set-up each describes (tests/docs_walkthrough.py reads the
commands from the documents, so the documentation cannot drift from the command line).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.docs_walkthrough import DOCS, run_walkthrough, walkthrough_lines


def _text(doc: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.chdir(tmp_path)
    steps = run_walkthrough(DOCS / doc)
    return "\n".join(s.output for s in steps)


def test_governance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = _text("governance.md", tmp_path, monkeypatch)
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
    keys = json.loads((tmp_path / ".plaza" / "keys.json").read_text())
    for ident in keys["identities"].values():
        assert ident["secret"] not in text
    assert oct((tmp_path / ".plaza" / "keys.json").stat().st_mode)[-3:] == "600"


def test_market(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = _text("market.md", tmp_path, monkeypatch)
    assert "rfb-1: 600 hosting accounts in eu; bids until 2025-01-04T12:00:00Z" in text
    assert text.count("accepted on rfb-1") == 2  # both bids
    # Below the mandate's concentration floor the share cap does not cut: acme's 400,
    # then beta's 200 of the 300 it offered, to fill the 600.
    assert re.search(r"score +\d+ ppm +400/400 +allow", text)
    assert re.search(r"score +\d+ ppm +200/300 +allow", text)
    assert "c-1 is active" in text and "c-2 is active" in text
    assert "escrow holds 1500.00 EUR" in text
    assert "settled epochs [0]: owed 39.62 EUR, paid 39.62 EUR, short 0.00 EUR" in text
    assert '"amount": 2508' in text  # inv-c-1-0: acme's 25.08 EUR, every number shown
    assert (tmp_path / "dao.beancount").exists()  # and bean-check passed


def test_agents(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = _text("agents.md", tmp_path, monkeypatch)
    assert "settlement.pay executed (allow)" in text
    assert "settlement.settle executed (allow)" in text
    # 200 accounts x 0.04 (acme) + 200 x 0.05 (beta).
    assert "why: settling epochs 0 will owe 18.00 EUR and escrow holds 0.00 EUR" in text
    assert "done: settled epochs 0: 2 invoices, paid 18.00 EUR of 18.00 EUR owed" in text


def test_the_runner_reads_marked_blocks_only_and_stops_at_a_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text(
        "```sh\nplaza not-run\n```\n"
        "<!-- walkthrough -->\n```sh\n# a comment\nplaza dao keys new \\\n    acme\n"
        "KEYS=$(plaza dao keys list)\nplaza dao keys new $KEYS\n```\n",
        encoding="utf-8",
    )
    assert walkthrough_lines(doc) == [
        "plaza dao keys new acme",
        "KEYS=$(plaza dao keys list)",
        "plaza dao keys new $KEYS",
    ]
    monkeypatch.chdir(tmp_path)
    # The captured listing is not a valid identity name: that command fails, and says so.
    with pytest.raises(AssertionError, match=r"plaza dao keys new \$KEYS\nexit [12]"):
        run_walkthrough(doc)
