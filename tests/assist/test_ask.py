"""Ask: answers from ledger records only, each citation naming a record that exists."""

from __future__ import annotations

import pytest

from plaza.assist.ask import REFUSAL, Answer, Record, ask, retrieve, template, verify_citations
from plaza.assist.backends import TemplateBackend
from tests.assist.conftest import FakeModel

ME = "did:plc:me000000000000000000000000"
OTHER = "did:plc:other0000000000000000000"
RECORDS = [
    Record(1, "dao.genesis", 1, OTHER, {"title": "Plaza"}),
    Record(4, "agent.action", 2, OTHER, {
        "outcome": "executed", "verdict": "allow",
        "action": {"kind": "migration.batch", "params": {"params": {"did": ME}}},
        "reason": {"text": "host pds2 unreachable for 30 s", "rule": "restore"}}),
    Record(7, "agent.action", 3, OTHER, {
        "outcome": "executed", "verdict": "allow",
        "action": {"kind": "placement.assign"}, "reason": {"text": "sign-ups wait"}}),
]  # fmt: skip


def test_retrieval_follows_the_did_and_the_words() -> None:
    assert [r.seq for r in retrieve(RECORDS, "why was my account moved?", ME)] == [4]
    assert [r.seq for r in retrieve(RECORDS, "placement sign-ups")] == [7]
    assert retrieve(RECORDS, "weather in Paris") == []


def test_the_template_cites_what_it_found() -> None:
    got = ask(TemplateBackend(), RECORDS, "why was my account moved?", ME)
    assert got.value.citations == [4] and not got.value.refused
    assert "#4 agent.action: migration.batch executed (allow): host pds2 unreachable" in (
        got.value.answer
    )


def test_nothing_found_is_a_refusal() -> None:
    got = ask(TemplateBackend(), RECORDS, "weather in Paris")
    assert got.value == Answer(answer=REFUSAL, citations=[], refused=True)


@pytest.mark.parametrize(
    ("reply", "source"),
    [
        (
            {
                "answer": "Your account moved because pds2 was down (#4).",
                "citations": [4],
                "refused": False,
            },
            "model",
        ),
        ({"answer": "Moved by vote #99.", "citations": [99], "refused": False}, "fallback"),
        ({"answer": "See #7.", "citations": [4], "refused": False}, "fallback"),
        ({"answer": "It was moved.", "citations": [], "refused": False}, "fallback"),
    ],
    ids=["grounded", "fake-citation", "uncited-reference", "no-citation"],
)
def test_model_citations_must_name_records_it_was_shown(
    fake_model: FakeModel, reply: dict[str, object], source: str
) -> None:
    fake_model.will_answer(reply)
    got = ask(fake_model.backend(), RECORDS, "why was my account moved?", ME)
    assert got.source == source
    assert set(got.value.citations) <= {4}
    if source == "fallback":
        assert got.value == template("q", [RECORDS[1]], ME)


def test_final_citations_are_checked_against_the_ledger() -> None:
    answer = Answer(answer="see #4 and #5", citations=[4, 5], refused=False)
    assert verify_citations(answer, [1, 4]).citations == [4]
    assert verify_citations(answer, [1]).refused
    assert verify_citations(answer, [4, 5]) is answer
