"""Tallies for ballots of every ranked or scored method, and the ballot-file format.

Methods and their rules (every tie rule is here and in docs/governance.md):

* ``single`` — a ballot names one ``choice``; each candidate's total is the weight of the
  ballots naming it.
* ``approval`` — a ballot lists ``approvals`` (any number, no repeats, possibly none);
  each approved candidate gets the ballot's full weight (Snapshot's approval rule).
* ``score`` — a ballot gives ``scores`` ``{name: n}`` with integers ``0 <= n <=
  max_score``; unscored candidates get 0; totals are weighted sums.
* ``quadratic`` — a ballot casts ``votes`` ``{name: n}`` with integers ``n >= 0`` costing
  ``sum(n^2)`` voice credits, at most ``credits`` (per ballot; in the DAO, per member per
  epoch); totals are weighted sums of votes.
* ``irv`` — a ballot is a ``ranking``; see :mod:`plaza.dao.irv` for rounds and ties.

For ``single``, ``approval``, ``score`` and ``quadratic`` the winner is the candidate with
the highest total; if two or more share the highest total (including when every total is
0) there is **no winner** and they are listed in ``tied``: these tallies never break a
tie by chance or by name. IRV always resolves elimination ties deterministically, so it
names a winner whenever one ballot is not exhausted.

A ballot's optional ``weight`` (a positive integer, default 1) stands for that many
identical ballots; the DAO uses it for delegated votes. An invalid ballot (unknown
candidate, repeated candidate, score out of range, over-spent credits, wrong shape, bad
weight) is reported with its index and reason and not counted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import numpy as np

from plaza.dao.errors import BallotFileError
from plaza.dao.irv import IrvRound, irv

Method = Literal["single", "approval", "irv", "score", "quadratic"]
METHODS: Final = ("single", "approval", "irv", "score", "quadratic")
BALLOT_KEY: Final = {
    "single": "choice",
    "approval": "approvals",
    "irv": "ranking",
    "score": "scores",
    "quadratic": "votes",
}
DEFAULT_MAX_SCORE: Final = 10
MAX_CANDIDATES: Final = 1000
MAX_WEIGHT: Final = 2**53


@dataclass(frozen=True, slots=True)
class InvalidBallot:
    index: int
    reason: str


@dataclass(frozen=True, slots=True)
class TallyResult:
    """The outcome of a tally. ``valid_weight`` is the total weight of counted ballots."""

    method: str
    winner: str | None
    totals: dict[str, int]
    rounds: list[IrvRound] = field(default_factory=list)
    invalid: list[InvalidBallot] = field(default_factory=list)
    tied: list[str] = field(default_factory=list)
    valid_weight: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The output format of ``plaza dao tally --json``."""
        return {
            "method": self.method,
            "winner": self.winner,
            "totals": self.totals,
            "rounds": [r.to_dict() for r in self.rounds],
            "tied": self.tied,
            "counted": self.valid_weight,
            "invalid": [{"index": b.index, "reason": b.reason} for b in self.invalid],
        }


def _is_int(v: object) -> bool:
    return type(v) is int


def ballot_problem(
    method: str,
    ballot: object,
    candidates: frozenset[str],
    *,
    credits: int | None = None,
    max_score: int = DEFAULT_MAX_SCORE,
) -> str | None:
    """Why ``ballot`` is invalid for ``method``, or None if it is valid."""
    if not isinstance(ballot, Mapping):
        return "a ballot must be an object"
    key = BALLOT_KEY[method]
    extra = set(ballot) - {key, "weight"}
    if extra or key not in ballot:
        return f"a {method} ballot has exactly the field {key!r} (and optional 'weight')"
    weight = ballot.get("weight", 1)
    if not _is_int(weight) or not 1 <= weight <= MAX_WEIGHT:
        return "weight must be a positive integer"
    value = ballot[key]
    if method == "single":
        if not isinstance(value, str) or value not in candidates:
            return f"unknown candidate {value!r}"
        return None
    if method in ("approval", "irv"):
        if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
            return f"{key} must be a list of candidate names"
        for c in value:
            if c not in candidates:
                return f"unknown candidate {c!r}"
        if len(set(value)) != len(value):
            return f"candidate repeated in {key}"
        if method == "irv" and not value:
            return "empty ranking"
        return None
    if not isinstance(value, Mapping):
        return f"{key} must be an object of candidate: integer"
    for c, n in value.items():
        if c not in candidates:
            return f"unknown candidate {c!r}"
        if not _is_int(n) or n < 0:
            return f"{key} must be non-negative integers"
        if method == "score" and n > max_score:
            return f"score {n} for {c!r} is over the maximum {max_score}"
    if method == "quadratic":
        cost = sum(n * n for n in value.values())
        if credits is None or cost > credits:
            return f"votes cost {cost} voice credits, more than the {credits} available"
    return None


def _plurality_winner(totals: dict[str, int]) -> tuple[str | None, list[str]]:
    if not totals:
        return None, []
    best = max(totals.values())
    top = sorted(c for c, v in totals.items() if v == best)
    return (top[0], []) if len(top) == 1 else (None, top)


def tally(
    method: str,
    candidates: Sequence[str],
    ballots: Sequence[object],
    *,
    credits: int | None = None,
    max_score: int = DEFAULT_MAX_SCORE,
) -> TallyResult:
    """Tally ``ballots`` (mappings in the ballot-file shape) for ``method``."""
    if method not in METHODS:
        raise BallotFileError(f"unknown method {method!r}; expected one of {', '.join(METHODS)}")
    names = frozenset(candidates)
    invalid: list[InvalidBallot] = []
    valid: list[tuple[Any, int]] = []
    key = BALLOT_KEY[method]
    for i, b in enumerate(ballots):
        reason = ballot_problem(method, b, names, credits=credits, max_score=max_score)
        if reason is not None:
            invalid.append(InvalidBallot(i, reason))
            continue
        assert isinstance(b, Mapping)
        valid.append((b[key], int(b.get("weight", 1))))
    counted = sum(w for _, w in valid)
    if method == "irv":
        return _irv(candidates, valid, invalid, counted)
    totals = dict.fromkeys(candidates, 0)
    for value, w in valid:
        if method == "single":
            totals[value] += w
        elif method == "approval":
            for c in value:
                totals[c] += w
        else:
            for c, n in value.items():
                totals[c] += w * n
    winner, tied = _plurality_winner(totals)
    return TallyResult(method, winner, totals, [], invalid, tied, counted)


def _irv(
    candidates: Sequence[str],
    valid: list[tuple[Any, int]],
    invalid: list[InvalidBallot],
    counted: int,
) -> TallyResult:
    index = {c: i for i, c in enumerate(candidates)}
    grouped: dict[tuple[int, ...], int] = {}
    for ranking, w in valid:
        row = tuple(index[c] for c in ranking)
        grouped[row] = grouped.get(row, 0) + w
    depth = max((len(r) for r in grouped), default=0)
    ranks = np.full((len(grouped), depth), -1, dtype=np.int32)
    weights = np.empty(len(grouped), dtype=np.int64)
    for i, (row, w) in enumerate(grouped.items()):
        ranks[i, : len(row)] = row
        weights[i] = w
    result = irv(ranks, weights, list(candidates))
    return TallyResult(
        "irv", result.winner, result.totals(candidates), result.rounds, invalid, [], counted
    )


def tally_file(data: Any) -> TallyResult:
    """Tally a parsed ballot file (see docs/governance.md for the format); raise
    :class:`BallotFileError` if the file as a whole is malformed."""
    if not isinstance(data, Mapping):
        raise BallotFileError("a ballot file is a JSON object")
    known = {"method", "candidates", "ballots", "credits", "max_score"}
    extra = set(data) - known
    if extra:
        raise BallotFileError(f"unknown fields {sorted(extra)}")
    method = data.get("method")
    if method not in METHODS:
        raise BallotFileError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    candidates = data.get("candidates")
    if (
        not isinstance(candidates, list)
        or not candidates
        or not all(isinstance(c, str) and c for c in candidates)
        or len(set(candidates)) != len(candidates)
        or len(candidates) > MAX_CANDIDATES
    ):
        raise BallotFileError("candidates must be a non-empty list of distinct names")
    ballots = data.get("ballots")
    if not isinstance(ballots, list):
        raise BallotFileError("ballots must be a list")
    credits = data.get("credits")
    if method == "quadratic":
        if not isinstance(credits, int) or isinstance(credits, bool) or credits < 0:
            raise BallotFileError("a quadratic ballot file needs 'credits', a non-negative integer")
    elif credits is not None:
        raise BallotFileError("'credits' only applies to the quadratic method")
    max_score = data.get("max_score", DEFAULT_MAX_SCORE)
    if not isinstance(max_score, int) or isinstance(max_score, bool) or max_score < 1:
        raise BallotFileError("max_score must be a positive integer")
    return tally(method, candidates, ballots, credits=credits, max_score=max_score)
