"""Explain: an agent action in plain words from its ledger record and the clause of the
mandate in force at it, and nothing else."""

from __future__ import annotations

import hashlib

import pytest

from plaza.assist.backends import TemplateBackend
from plaza.assist.explain import (
    MAX_CHARS,
    clause_of,
    explain,
    facts_of_event,
    facts_of_executed,
    mandate_at,
    mandate_timeline,
    template,
)
from plaza.atproto.crypto import PrivateKey
from plaza.dao.constitution import default_constitution
from plaza.dao.mandate import default_mandate, parse_mandate
from plaza.dao.service import Dao
from plaza.ledger import Ledger, MemoryEventStore
from plaza.ledger.keystore import Signer
from tests.assist.conftest import FakeModel

HOST = "did:plc:host00000000000000000000"
M = default_mandate()


def _signer(name: str) -> Signer:
    key = PrivateKey.from_bytes("ES256K", hashlib.sha256(name.encode()).digest())
    return Signer(key.did_key(), key)


def _payload(kind: str, accounts: int, verdict: str = "allow") -> dict[str, object]:
    return {
        "outcome": "executed",
        "verdict": verdict,
        "detail": "placed 12 accounts",
        "action": {"kind": kind, "params": {}, "amount": 0, "category": "",
                   "provider": HOST, "source": "", "accounts": accounts},
        "reason": {"rule": "placement.free-capacity", "digest": "", "numbers": {},
                   "text": "12 sign-ups wait; host has room"},
    }  # fmt: skip


def test_the_clause_comes_from_the_mandate_in_force_at_the_record() -> None:
    store = MemoryEventStore()
    alice, agent = _signer("alice"), _signer("agent")
    local = parse_mandate(
        M.to_toml()
        .replace("version = 1", "version = 2")
        .replace("place new accounts on a hosting provider", "seat newcomers")
    )
    Dao.init(store, alice, constitution=default_constitution(), mandate=local, now=1000)
    Ledger(store).record(agent.key, author_did=agent.did, type="agent.action",
                         payload=_payload("placement.assign", 12), time=2000)  # fmt: skip
    events = list(store.read())
    timeline = mandate_timeline(events, M)
    assert [m.version for _, m in timeline] == [2]
    ev = events[-1]
    facts = facts_of_event(ev)
    assert (facts["seq"], facts["kind"], facts["subject"], facts["accounts"]) == (
        ev.seq, "placement.assign", HOST, 12)  # fmt: skip
    clause = clause_of(mandate_at(timeline, ev.seq), facts["kind"])
    assert clause is not None and clause["mandate_version"] == 2
    text = template(facts, clause).explanation
    assert text.startswith(f"Record #{ev.seq}: the agent carried out placement.assign")
    assert "(version 2): seat newcomers" in text and "The guard allowed it at once." in text
    assert "Why: 12 sign-ups wait" in text and "Result: placed 12 accounts" in text


def test_a_ledger_without_a_dao_uses_the_default_mandate() -> None:
    assert mandate_timeline([], M) == [(0, M)]


def test_a_kind_without_a_clause_says_so() -> None:
    facts = facts_of_executed({"seq": 4, "action": {"kind": "mandate.rewrite"}, "reason": "r"})
    assert clause_of(M, "mandate.rewrite") is None
    assert "no clause for mandate.rewrite" in template(facts, None).explanation


def test_executed_dao_actions_name_their_authority() -> None:
    facts = facts_of_executed({"seq": 9, "action": {"kind": "capacity.procure", "amount": 25000},
                               "reason": "load", "authority": "motion:5"})  # fmt: skip
    text = template(facts, clause_of(M, "capacity.procure")).explanation
    assert "veto it within the window" in text and "Authority: motion:5" in text
    assert "charged to the capacity budget" in text and "member vote above 300000" in text


def test_long_and_hidden_text_stays_within_the_schema() -> None:
    action = {"kind": "provider.suspend", "provider": "did:plc:\u202eevil"}
    facts = facts_of_executed({"seq": 1, "action": action, "reason": "x" * 5000})
    text = template(facts, clause_of(M, "provider.suspend")).explanation
    assert len(text) <= MAX_CHARS and "\u202e" not in text and "\\u202e" in text


def test_none_explains_by_template() -> None:
    facts = facts_of_executed({"seq": 2, "action": {"kind": "rfb.create"}, "reason": "r"})
    got = explain(TemplateBackend(), facts, clause_of(M, "rfb.create"))
    assert got.source == "template" and got.value == template(facts, clause_of(M, "rfb.create"))


@pytest.mark.parametrize(
    ("answers", "source"),
    [
        (
            ["The agent placed 12 accounts on the host (placement.assign).\n"],
            "model",
        ),
        (["The agent moved 5000 EUR to the treasury."], "fallback"),
        (["  ", "x" * (MAX_CHARS + 1)], "fallback"),
    ],
    ids=["grounded", "invented-number", "invalid-twice"],
)
def test_a_model_explanation_may_name_only_numbers_from_the_record(
    fake_model: FakeModel, answers: list[str], source: str
) -> None:
    fake_model.will_answer(*answers)
    facts = facts_of_executed({"seq": 3, "action": {"kind": "placement.assign", "accounts": 12},
                               "reason": "12 sign-ups wait"})  # fmt: skip
    got = explain(fake_model.backend(), facts, clause_of(M, "placement.assign"))
    assert got.source == source
    assert fake_model.requests[0].get("response_format") is None  # plain text, no schema
    if source == "model":
        assert got.value.explanation == answers[0].strip()
    if source == "fallback":
        assert got.value == template(facts, clause_of(M, "placement.assign"))
