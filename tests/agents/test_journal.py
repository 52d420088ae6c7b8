"""The agents' log: every ``agent.action`` record as one entry (sequence number, kind,
subject, reason in words, verdict, outcome), in JSON lines or as people read it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from plaza.agents.journal import entries, line, subject
from plaza.ledger import Ledger, SqlEventStore
from plaza.ledger.keystore import Signer

HOST = "did:key:zQ3shost"
DEAD = "did:key:zQ3shdead"


def _payload(kind: str, outcome: str, text: str, **action: str) -> dict[str, object]:
    return {
        "outcome": outcome,
        "verdict": "allow",
        "detail": f"{kind} done",
        "action": {"kind": kind, "params": {}, "amount": 0, "category": "",
                   "provider": action.get("provider", ""), "source": action.get("source", ""),
                   "accounts": 0},
        "reason": {"rule": f"{kind}.rule", "digest": "", "numbers": {}, "text": text},
    }  # fmt: skip


def _ledger(path: Path) -> Signer:
    agent = Signer.generate()
    store = SqlEventStore.open(f"sqlite://{path}")
    ledger = Ledger(store)
    for i, (type_, payload) in enumerate([
        ("agent.action", _payload("placement.assign", "executed", "2 sign-ups wait",
                                  provider=HOST)),
        ("note.other", {"ignored": True}),
        ("agent.action", _payload("migration.batch", "executed", "p1 has been unreachable",
                                  provider=HOST, source=DEAD)),
    ]):  # fmt: skip
        ledger.record(agent.key, author_did=agent.did, type=type_, payload=payload,
                      time=1_900_000_000_000 + i)  # fmt: skip
    store.close()
    return agent


def test_each_agent_action_is_one_entry_naming_its_subject(tmp_path: Path) -> None:
    agent = _ledger(tmp_path / "ledger.db")
    store = SqlEventStore.open(f"sqlite://{tmp_path / 'ledger.db'}")
    got = list(entries(store.read()))
    store.close()
    assert [(e["seq"], e["kind"], e["subject"]) for e in got] == [
        (0, "placement.assign", HOST),
        (2, "migration.batch", DEAD),  # a migration is about the host the accounts leave
    ]
    assert got[1]["reason"] == "p1 has been unreachable"
    assert (got[1]["verdict"], got[1]["outcome"], got[1]["agent"]) == ("allow", "executed",
                                                                        agent.did)  # fmt: skip
    assert got[0]["time"].startswith("2030-")
    assert line(got[1]).startswith(f"#2 {got[1]['time']} migration.batch {DEAD}: executed")
    assert subject({"action": {"params": {"contract": "c-1"}}}) == "c-1"


def test_plaza_agents_log_prints_json_lines(tmp_path: Path) -> None:
    _ledger(tmp_path / "ledger.db")
    run = [sys.executable, "-m", "plaza.cli", "agents", "log", "--db"]
    out = subprocess.run([*run, str(tmp_path / "ledger.db"), "--json"], capture_output=True,
                         text=True, timeout=60, check=True).stdout  # fmt: skip
    rows = [json.loads(x) for x in out.splitlines()]
    assert [r["kind"] for r in rows] == ["placement.assign", "migration.batch"]
    assert set(rows[0]) >= {"seq", "time", "kind", "subject", "reason", "verdict", "outcome"}
    # explained in plain words from the record and the (default) mandate's clause
    assert rows[0]["explanation"].startswith(
        f"Record #0: the agent carried out placement.assign concerning {HOST}."
    )
    assert 'Mandate clause [actions."placement.assign"] (version 1)' in rows[0]["explanation"]
    plain = subprocess.run([*run, str(tmp_path / "ledger.db")], capture_output=True, text=True,
                           timeout=60, check=True).stdout  # fmt: skip
    assert "why: 2 sign-ups wait" in plain
    assert "    explained: Record #2: the agent carried out migration.batch" in plain
    missing = subprocess.run([*run, str(tmp_path / "nope.db")], capture_output=True, text=True,
                             timeout=60, check=False)  # fmt: skip
    assert missing.returncode == 1 and "no ledger at" in missing.stderr
