"""Instant-runoff voting over arrays, so a million ballots take about a second.

Theory of operation. Ballots are rows of an ``int`` matrix: row ``i`` lists candidate
indices in order of preference, padded with ``-1``; ``weights[i]`` says how many
identical ballots the row stands for. Each ballot keeps a pointer to its highest-ranked
*continuing* candidate. A round is one ``bincount`` of those pointers; eliminating a
candidate advances only the pointers that sat on it, until they reach a continuing
candidate or run off the end (the ballot is then *exhausted* and drops out).

Rules (also in docs/governance.md):

* Partial rankings are allowed. A ballot counts for its highest continuing choice.
* A candidate wins a round with strictly more than half of the round's non-exhausted
  votes. If no candidate does, exactly one candidate is eliminated and a new round runs.
* The candidate eliminated is the one with the fewest votes this round. Ties go back in
  time: among the tied candidates, look at the most recent earlier round in which their
  tallies differ and keep only those with the fewest votes there; repeat with the earlier
  rounds while more than one remains. If still tied (no earlier round separates them),
  the candidate whose name sorts last (Unicode code points) is eliminated.
* If every ballot is exhausted (or there are none), there is no winner.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True, slots=True)
class IrvRound:
    """One round: continuing candidates' tallies, who was eliminated, exhausted weight."""

    tallies: dict[str, int]
    eliminated: str | None
    exhausted: int

    def to_dict(self) -> dict[str, Any]:
        return {"tallies": self.tallies, "eliminated": self.eliminated, "exhausted": self.exhausted}


@dataclass(frozen=True, slots=True)
class IrvResult:
    winner: str | None
    rounds: list[IrvRound]

    def totals(self, candidates: Sequence[str]) -> dict[str, int]:
        """Final-round tallies of the candidates still standing; 0 for eliminated ones."""
        last = self.rounds[-1].tallies if self.rounds else {}
        return {c: int(last.get(c, 0)) for c in candidates}


def _pick_elimination(
    tied: list[int], history: list[npt.NDArray[np.int64]], names: Sequence[str]
) -> int:
    group = tied
    for tallies in reversed(history):
        values = [int(tallies[c]) for c in group]
        low = min(values)
        if low != max(values):
            group = [c for c, v in zip(group, values, strict=True) if v == low]
            if len(group) == 1:
                return group[0]
    return max(group, key=lambda c: names[c])


def irv(
    rankings: npt.NDArray[np.integer[Any]],
    weights: npt.NDArray[np.integer[Any]],
    candidates: Sequence[str],
) -> IrvResult:
    """Run IRV. ``rankings`` is ``(ballots, depth)`` of candidate indices padded with -1;
    every row must be valid (no duplicates, indices in range) — validate first."""
    k = len(candidates)
    n, depth = rankings.shape if rankings.ndim == 2 else (0, 0)
    ranks = np.full((n, depth + 1), -1, dtype=np.int32)  # a sentinel column ends each row
    if n:
        ranks[:, :depth] = rankings
    w = np.asarray(weights, dtype=np.int64)
    pos = np.zeros(n, dtype=np.int64)
    rows = np.arange(n)
    top = ranks[rows, pos]
    continuing = np.ones(k, dtype=bool)
    total = int(w.sum())
    history: list[npt.NDArray[np.int64]] = []
    rounds: list[IrvRound] = []
    while True:
        live = top >= 0
        tallies = np.bincount(top[live], weights=w[live], minlength=k).round().astype(np.int64)
        active = int(tallies.sum())
        names = [i for i in range(k) if continuing[i]]
        round_tallies = {candidates[i]: int(tallies[i]) for i in names}
        if active == 0:
            rounds.append(IrvRound(round_tallies, None, total - active))
            return IrvResult(None, rounds)
        best = max(names, key=lambda i: int(tallies[i]))
        if 2 * int(tallies[best]) > active:
            rounds.append(IrvRound(round_tallies, None, total - active))
            return IrvResult(candidates[best], rounds)
        low = min(int(tallies[i]) for i in names)
        tied = [i for i in names if int(tallies[i]) == low]
        out = tied[0] if len(tied) == 1 else _pick_elimination(tied, history, candidates)
        rounds.append(IrvRound(round_tallies, candidates[out], total - active))
        history.append(tallies)
        continuing[out] = False
        # Advance only the ballots whose current choice was just eliminated.
        moving = np.flatnonzero(top == out)
        while moving.size:
            pos[moving] += 1
            nxt = ranks[moving, pos[moving]]
            top[moving] = nxt
            # -1 means exhausted; a valid index still eliminated must advance again.
            stuck = (nxt >= 0) & ~continuing[np.maximum(nxt, 0)]
            moving = moving[stuck]
