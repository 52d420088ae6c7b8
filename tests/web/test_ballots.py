from __future__ import annotations

import pytest

from plaza.dao.tally import ballot_problem
from plaza.web.ballots import ballot_from_form
from plaza.web.errors import WebError

CHOICES = ["ana", "ben", "<b>cy</b>"]


@pytest.mark.parametrize(
    ("method", "form", "ballot"),
    [
        ("majority", {"choice": "yes"}, {"choice": "yes"}),
        ("single", {"choice": "2"}, {"choice": "<b>cy</b>"}),
        ("approval", {"approve_0": "1", "approve_2": "1"}, {"approvals": ["ana", "<b>cy</b>"]}),
        ("irv", {"rank_0": "2", "rank_1": "0", "rank_2": "1"}, {"ranking": ["<b>cy</b>", "ana"]}),
        ("score", {"score_0": "5", "score_1": "", "score_2": "3"},
         {"scores": {"ana": 5, "ben": 0, "<b>cy</b>": 3}}),
        ("quadratic", {"votes_1": "3"}, {"votes": {"ana": 0, "ben": 3, "<b>cy</b>": 0}}),
    ],
)  # fmt: skip
def test_each_method_gets_the_ballot_the_dao_takes(
    method: str, form: dict[str, str], ballot: dict[str, object]
) -> None:
    assert ballot_from_form(method, CHOICES, form) == ballot
    if method != "majority":
        assert ballot_problem(method, ballot, frozenset(CHOICES), credits=100) is None


@pytest.mark.parametrize(
    ("method", "form"),
    [
        ("majority", {"choice": "maybe"}),
        ("single", {"choice": "3"}),
        ("single", {"choice": "ana"}),
        ("irv", {}),
        ("irv", {"rank_0": "1", "rank_1": "1"}),
        ("score", {"score_0": "-1"}),
        ("score", {"score_0": "9" * 20}),
        ("conviction", {}),
    ],
)
def test_a_bad_form_says_what_is_wrong(method: str, form: dict[str, str]) -> None:
    with pytest.raises(WebError):
        ballot_from_form(method, CHOICES, form)
