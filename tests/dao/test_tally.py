"""Worked examples for every ranked and scored method, derived by hand; tie rules;
invalid ballots; and properties (ballot order, weights, a reference IRV)."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plaza.dao.errors import BallotFileError
from plaza.dao.tally import tally, tally_file


def R(*names: str, weight: int = 1) -> dict[str, Any]:
    b: dict[str, Any] = {"ranking": list(names)}
    if weight != 1:
        b["weight"] = weight
    return b


class TestIrv:
    def test_first_round_majority(self) -> None:
        # a 5, b 3, c 1 of 9: 5 > 9/2, a wins at once.
        res = tally("irv", ["a", "b", "c"], [R("a", weight=5), R("b", weight=3), R("c", "b")])
        assert res.winner == "a"
        assert [r.to_dict() for r in res.rounds] == [
            {"tallies": {"a": 5, "b": 3, "c": 1}, "eliminated": None, "exhausted": 0}
        ]

    def test_transfer(self) -> None:
        # Round 1: a 4, b 3, c 2 (9 votes, nobody over 4.5). c is last and out; its 2
        # ballots rank b next. Round 2: a 4, b 5 -> b has 5 > 4.5 and wins.
        ballots = [R("a", "b", weight=4), R("b", "c", weight=3), R("c", "b", weight=2)]
        res = tally("irv", ["a", "b", "c"], ballots)
        assert res.winner == "b"
        assert [(r.tallies, r.eliminated) for r in res.rounds] == [
            ({"a": 4, "b": 3, "c": 2}, "c"),
            ({"a": 4, "b": 5}, None),
        ]
        assert res.totals == {"a": 4, "b": 5, "c": 0}

    def test_exhausted_ballots_drop_out(self) -> None:
        # Bullet votes only. Round 1: a 4, b 3, c 2: 4 is not over 9/2. c is out and its
        # 2 ballots are exhausted. Round 2: a 4 of the 7 non-exhausted votes > 3.5: a wins
        # without a majority of all 9 ballots.
        ballots = [R("a", weight=4), R("b", weight=3), R("c", weight=2)]
        res = tally("irv", ["a", "b", "c"], ballots)
        assert res.winner == "a"
        assert [r.to_dict() for r in res.rounds][1] == {
            "tallies": {"a": 4, "b": 3},
            "eliminated": None,
            "exhausted": 2,
        }

    def test_elimination_tie_looks_back_to_an_earlier_round(self) -> None:
        # Round 1: a 7, b 3, c 4, d 1 (15). d is out; its ballot goes to b.
        # Round 2: a 7, b 4, c 4: b and c tie for last. In round 1 b had 3 and c had 4,
        # so b (fewer in the most recent round where they differ) is out — not c, whom
        # the name rule would have picked. b's 4 ballots go to c.
        # Round 3: a 7, c 8 of 15 -> c wins.
        ballots = [
            R("a", weight=7),
            R("b", "c", weight=3),
            R("c", weight=4),
            R("d", "b", "c"),
        ]
        res = tally("irv", ["a", "b", "c", "d"], ballots)
        assert [r.eliminated for r in res.rounds] == ["d", "b", None]
        assert res.rounds[1].tallies == {"a": 7, "b": 4, "c": 4}
        assert res.winner == "c"

    def test_tie_with_no_history_eliminates_the_name_sorting_last(self) -> None:
        # Round 1: a 2, b 2: 2 is not more than half of 4. a and b tie and there is no
        # earlier round; "b" sorts after "a", so b is out, its ballots are exhausted,
        # and a wins round 2 with 2 of 2.
        res = tally("irv", ["b", "a"], [R("a", weight=2), R("b", weight=2)])
        assert [r.eliminated for r in res.rounds] == ["b", None]
        assert res.rounds[1].exhausted == 2
        assert res.winner == "a"

    def test_three_way_tie_narrows_round_by_round(self) -> None:
        # Round 1: w 10, x 2, y 3, z 4, v 1 (20). v out -> x. Round 2: w 10, x 3, y 3,
        # z 4. x,y tie; round 1 had x 2 < y 3, so x is out -> its 3 go to z.
        # Round 3: w 10, y 3, z 7: 10 is not over 10. y out -> to z. Round 4: w 10, z 10:
        # tie with history: round 3 w 10 > z 7, so z is out. Round 5: w 10 of 10.
        ballots = [
            R("w", weight=10),
            R("x", "z", weight=2),
            R("y", "z", weight=3),
            R("z", weight=4),
            R("v", "x", "z"),
        ]
        res = tally("irv", ["v", "w", "x", "y", "z"], ballots)
        assert [r.eliminated for r in res.rounds] == ["v", "x", "y", "z", None]
        assert res.rounds[3].tallies == {"w": 10, "z": 10}
        assert res.winner == "w"

    def test_invalid_ballots_are_reported_and_not_counted(self) -> None:
        ballots = [
            R("a"),
            R("a", "zed"),
            R("a", "a"),
            R(),
            {"ranking": "a"},
            {"ranking": ["b"], "weight": 0},
            {"choice": "a"},
            R("b", weight=2),
        ]
        res = tally("irv", ["a", "b"], ballots)
        assert [(b.index, b.reason) for b in res.invalid] == [
            (1, "unknown candidate 'zed'"),
            (2, "candidate repeated in ranking"),
            (3, "empty ranking"),
            (4, "ranking must be a list of candidate names"),
            (5, "weight must be a positive integer"),
            (6, "a irv ballot has exactly the field 'ranking' (and optional 'weight')"),
        ]
        assert res.valid_weight == 3
        assert res.winner == "b"

    def test_no_ballots(self) -> None:
        res = tally("irv", ["a", "b"], [])
        assert res.winner is None
        assert res.rounds[0].tallies == {"a": 0, "b": 0}


class TestOtherMethods:
    def test_single(self) -> None:
        # a 3 (one ballot of weight 2 and one plain), b 2: a wins.
        ballots = [{"choice": "a", "weight": 2}, {"choice": "a"}, {"choice": "b", "weight": 2}]
        res = tally("single", ["a", "b"], ballots)
        assert (res.winner, res.totals) == ("a", {"a": 3, "b": 2})

    def test_single_tie_has_no_winner(self) -> None:
        res = tally("single", ["a", "b", "c"], [{"choice": "b"}, {"choice": "a"}])
        assert res.winner is None
        assert res.tied == ["a", "b"]

    def test_approval(self) -> None:
        # [a,b] [b] [b,c] [] -> a 1, b 3, c 1: b. The empty ballot is valid (it approves
        # nobody) and is counted as cast.
        ballots = [
            {"approvals": ["a", "b"]},
            {"approvals": ["b"]},
            {"approvals": ["b", "c"]},
            {"approvals": []},
        ]
        res = tally("approval", ["a", "b", "c"], ballots)
        assert (res.winner, res.totals, res.valid_weight) == ("b", {"a": 1, "b": 3, "c": 1}, 4)

    def test_score(self) -> None:
        # max 5: {a5,b3} {a0,b4} {c5} -> a 5, b 7, c 5: b. {a6} is over the maximum.
        ballots = [
            {"scores": {"a": 5, "b": 3}},
            {"scores": {"a": 0, "b": 4}},
            {"scores": {"c": 5}},
            {"scores": {"a": 6}},
        ]
        res = tally("score", ["a", "b", "c"], ballots, max_score=5)
        assert (res.winner, res.totals) == ("b", {"a": 5, "b": 7, "c": 5})
        assert [(b.index, b.reason) for b in res.invalid] == [
            (3, "score 6 for 'a' is over the maximum 5")
        ]

    def test_quadratic(self) -> None:
        # 10 credits each. {a3} costs 9; {b2,c2} costs 8; {a1,b3} costs 1+9 = 10 (all of
        # it); {a4} costs 16 > 10 and is invalid. Totals: a 3+1 = 4, b 2+3 = 5, c 2: b.
        ballots = [
            {"votes": {"a": 3}},
            {"votes": {"b": 2, "c": 2}},
            {"votes": {"a": 1, "b": 3}},
            {"votes": {"a": 4}},
        ]
        res = tally("quadratic", ["a", "b", "c"], ballots, credits=10)
        assert (res.winner, res.totals) == ("b", {"a": 4, "b": 5, "c": 2})
        assert [(b.index, b.reason) for b in res.invalid] == [
            (3, "votes cost 16 voice credits, more than the 10 available")
        ]


class TestBallotFile:
    def test_output_format(self) -> None:
        data = {
            "method": "irv",
            "candidates": ["a", "b", "c"],
            "ballots": [
                R("a", "b", weight=4),
                R("b", "c", weight=3),
                R("c", "b", weight=2),
                R("x"),
            ],
        }
        out = tally_file(data).to_dict()
        assert out["winner"] == "b"
        assert out["totals"] == {"a": 4, "b": 5, "c": 0}
        assert out["rounds"][0] == {
            "tallies": {"a": 4, "b": 3, "c": 2},
            "eliminated": "c",
            "exhausted": 0,
        }
        assert out["invalid"] == [{"index": 3, "reason": "unknown candidate 'x'"}]
        json.dumps(out)

    @pytest.mark.parametrize(
        "data",
        [
            [],
            {"method": "borda", "candidates": ["a"], "ballots": []},
            {"method": "irv", "candidates": [], "ballots": []},
            {"method": "irv", "candidates": ["a", "a"], "ballots": []},
            {"method": "irv", "candidates": ["a"], "ballots": {}},
            {"method": "quadratic", "candidates": ["a"], "ballots": []},
            {"method": "single", "candidates": ["a"], "ballots": [], "credits": 3},
            {"method": "single", "candidates": ["a"], "ballots": [], "extra": 1},
        ],
        ids=[
            "not-object",
            "unknown-method",
            "no-candidates",
            "duplicate-candidates",
            "ballots-not-list",
            "quadratic-without-credits",
            "credits-on-single",
            "extra",
        ],
    )
    def test_malformed_files(self, data: Any) -> None:
        with pytest.raises(BallotFileError):
            tally_file(data)


# -- properties ------------------------------------------------------------------------

NAMES = ["a", "b", "c", "d", "e"]
rankings = st.lists(
    st.permutations(NAMES).flatmap(lambda p: st.integers(1, 5).map(lambda k: p[:k])),
    max_size=40,
)


def reference_irv(candidates: list[str], ballots: list[list[str]]) -> tuple[str | None, list]:
    """A slow, obviously-correct IRV with the issue's tie rule, for cross-checking."""
    cont = list(candidates)
    history: list[dict[str, int]] = []
    elim_order: list[str | None] = []
    while True:
        t = dict.fromkeys(cont, 0)
        for b in ballots:
            for c in b:
                if c in t:
                    t[c] += 1
                    break
        active = sum(t.values())
        if active == 0:
            elim_order.append(None)
            return None, elim_order
        best = max(t.values())
        if 2 * best > active:
            elim_order.append(None)
            return next(c for c in cont if t[c] == best), elim_order
        low = min(t.values())
        group = [c for c in cont if t[c] == low]
        for past in reversed(history):
            vals = {c: past[c] for c in group}
            if len(set(vals.values())) > 1:
                m = min(vals.values())
                group = [c for c in group if vals[c] == m]
                if len(group) == 1:
                    break
        out = max(group)
        elim_order.append(out)
        history.append(t)
        cont.remove(out)


@settings(max_examples=200, deadline=None)
@given(rankings)
def test_irv_matches_the_reference(ballots: list[list[str]]) -> None:
    res = tally("irv", NAMES, [{"ranking": list(b)} for b in ballots])
    winner, order = reference_irv(NAMES, [list(b) for b in ballots])
    assert res.winner == winner
    assert [r.eliminated for r in res.rounds] == order


@settings(max_examples=100, deadline=None)
@given(
    method=st.sampled_from(["irv", "approval", "single", "score", "quadratic"]),
    ballots=rankings,
    seed=st.integers(0, 2**32),
)
def test_tallies_do_not_depend_on_ballot_order(method: str, ballots: list, seed: int) -> None:
    key = {
        "irv": "ranking",
        "approval": "approvals",
        "single": "choice",
        "score": "scores",
        "quadratic": "votes",
    }[method]

    def shape(b: list[str]) -> dict[str, Any]:
        if method == "single":
            return {key: b[0]}
        if method in ("score", "quadratic"):
            return {key: {c: i for i, c in enumerate(b)}}
        return {key: list(b)}

    shaped = [shape(list(b)) for b in ballots]
    shuffled = list(shaped)
    random.Random(seed).shuffle(shuffled)
    one = tally(method, NAMES, shaped, credits=20).to_dict()
    two = tally(method, NAMES, shuffled, credits=20).to_dict()
    for out in (one, two):
        out["invalid"] = sorted(b["reason"] for b in out["invalid"])
    assert one == two


@settings(max_examples=100, deadline=None)
@given(rankings, st.integers(2, 4))
def test_weight_is_the_same_as_copies(ballots: list, w: int) -> None:
    weighted = [{"ranking": list(b), "weight": w} for b in ballots]
    copies = [{"ranking": list(b)} for b in ballots for _ in range(w)]
    one, two = tally("irv", NAMES, weighted), tally("irv", NAMES, copies)
    assert (one.winner, one.rounds) == (two.winner, two.rounds)
