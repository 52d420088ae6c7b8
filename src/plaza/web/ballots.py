"""Ballots from forms, per voting method (sans-IO).

A proposal's candidates are addressed by position in the form (``approve_0``,
``rank_1``, ``score_2``, ...), never by name, so a candidate's text only ever appears
escaped in the page. :func:`ballot_from_form` returns the ballot the DAO's rules take
for the method (``plaza.dao.tally.BALLOT_KEY``), or raises
:class:`~plaza.web.errors.WebError` saying what is wrong with the form.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from plaza.web.errors import WebError

MAJORITY = ("yes", "no", "abstain")
MAX_NUMBER = 10**6


def _number(form: Mapping[str, str], name: str, label: str) -> int:
    raw = form.get(name, "").strip() or "0"
    if not raw.isdigit() or int(raw) > MAX_NUMBER:
        raise WebError(f"{label} must be a whole number from 0")
    return int(raw)


def ballot_from_form(
    method: str, choices: Sequence[str], form: Mapping[str, str]
) -> dict[str, Any]:
    """The ballot for ``method`` over ``choices`` that ``form`` fills in."""
    if method == "majority":
        choice = form.get("choice", "")
        if choice not in MAJORITY:
            raise WebError("choose yes, no or abstain")
        return {"choice": choice}
    if method == "single":
        raw = form.get("choice", "")
        if not raw.isdigit() or int(raw) >= len(choices):
            raise WebError("choose one option")
        return {"choice": choices[int(raw)]}
    if method == "approval":
        return {"approvals": [c for i, c in enumerate(choices) if form.get(f"approve_{i}")]}
    if method == "irv":
        ranked = []
        for i, c in enumerate(choices):
            rank = _number(form, f"rank_{i}", f"the rank of option {i + 1}")
            if rank:
                ranked.append((rank, i, c))
        ranks = [r for r, _, _ in ranked]
        if not ranked:
            raise WebError("rank at least one option (1 is your first choice)")
        if len(set(ranks)) != len(ranks):
            raise WebError("give each option a different rank")
        return {"ranking": [c for _, _, c in sorted(ranked)]}
    if method in ("score", "quadratic"):
        key, field = ("scores", "score") if method == "score" else ("votes", "votes")
        return {
            key: {
                c: _number(form, f"{field}_{i}", f"option {i + 1}") for i, c in enumerate(choices)
            }
        }
    raise WebError(f"proposals voted by {method} take no ballot here")
