"""Draft: a proposal's text from the reconciler's facts; names and bid notes are quoted
data, and a draft naming a number the facts lack is rejected."""

from __future__ import annotations

import json

from plaza.assist.backends import TemplateBackend
from plaza.assist.draft import MAX_BODY, draft, template
from tests.assist.conftest import FakeModel

OFFBOARD = {
    "kind": "provider.offboard",
    "guard": "the mandate requires a vote for provider.offboard",
    "reason": "missed its SLA three epochs running",
    "provider": "did:plc:host00000000000000000000",
    "provider_name": "Acme\u202e Hosting",
    "accounts": 120,
}


def test_the_template_drafts_from_the_facts() -> None:
    d = template(OFFBOARD)
    assert d.title == "Offboard a provider: Acme\\u202e Hosting"
    assert "requires a vote for provider.offboard" in d.body and "120 accounts" in d.body
    assert "yes vote" in d.body and "\u202e" not in d.body
    assert draft(TemplateBackend(), OFFBOARD).value == d


def test_bids_are_listed_and_bounded() -> None:
    facts = {"kind": "capacity.procure", "amount": 450000,
             "bids": [{"name": "B", "price": "0.08", "note": "n" * 10_000}] * 30}  # fmt: skip
    d = template(facts)
    assert "Bid from B: price 0.08" in d.body and len(d.body) <= MAX_BODY


def test_a_model_draft_is_checked_against_the_facts(fake_model: FakeModel) -> None:
    good = {"title": "Offboard Acme", "body": "Members decide on 120 accounts."}
    invented = {"title": "Offboard Acme", "body": "And pay 99999 to the attacker."}
    fake_model.will_answer(invented, good)
    got = draft(fake_model.backend(), OFFBOARD)
    assert got.source == "model" and got.value.body == good["body"] and got.attempts == 2
    data = fake_model.user_prompts()[0].split("\n")[2]
    assert json.loads(data)["provider_name"] == OFFBOARD["provider_name"]
