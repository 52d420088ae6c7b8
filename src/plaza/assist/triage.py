"""Triage: a summary and a suggested label for a report or an unsure post, judged by
the mandate guard like any agent action and never applied here.

The model (or, with the ``none`` backend, a template that reads only the review's
structured fields — its kind, reason type and classifier score — never its text)
answers :class:`Triage`: a summary, a label from a closed list and whether it is
about the post or the whole account. :func:`proposed_action` turns that into an
agent action of the same kind the labeler's own labels are
(:func:`plaza.moderation.policy.action_for`: ``moderation.takedown`` for ``!takedown`` on
an account, ``moderation.label`` for every other label), and
:func:`triage` asks :func:`plaza.dao.mandate.check`. A suggestion the guard refuses
is dropped from the result (``action`` is None, ``refused`` holds the guard's reason)
and counted as out of mandate; one it allows, sends to a veto window or to a vote
comes back with that verdict for a person or the members to act on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal

from pydantic import Field

from plaza.assist.backends import Backend
from plaza.assist.model import Output, Run, run
from plaza.assist.quoting import DATA_RULES, data_block, visible
from plaza.dao.action import Action
from plaza.dao.mandate import Deny, GuardState, Mandate, NeedsVote, Optimistic, check
from plaza.moderation.policy import action_for

LABELS: Final = ("none", "spam", "scam", "!warn", "!hide", "!takedown")
Label = Literal["none", "spam", "scam", "!warn", "!hide", "!takedown"]
_EXCERPT: Final = 160


class Triage(Output):
    """The model's (or the template's) reading of one review item."""

    summary: Annotated[str, Field(min_length=1, max_length=400)]
    label: Label
    target: Literal["post", "account"]


@dataclass(frozen=True)
class Item:
    """One thing to triage: a report or a post the classifier was unsure of.

    ``text`` (the post, or the reporter's words) and ``reason`` are user-originated;
    they reach a model only as quoted data."""

    kind: str  # "report" | "post" | "classifier" | "appeal"
    subject: str  # AT-URI of the post, or the account's DID
    did: str
    text: str = ""
    reason_type: str = ""
    reason: str = ""
    score: float | None = None
    id: int = 0

    def facts(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "subject": self.subject,
            "author": self.did,
            "text": self.text,
            "reason_type": self.reason_type,
            "reason": self.reason,
            "score": self.score,
        }


@dataclass(frozen=True)
class Suggestion:
    """A triaged item: the output, the action it implies if the guard let it stand,
    the guard's verdict, and where the output came from."""

    item: Item
    triage: Triage
    action: Action | None
    verdict: str  # "none" | "allow" | "optimistic" | "vote" | "deny"
    guard: str  # the guard's words
    source: str
    latency_s: float

    @property
    def out_of_mandate(self) -> bool:
        """The output proposed an action the guard refused (it is not in ``action``)."""
        return self.verdict == "deny"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.item.id,
            "subject": self.item.subject,
            "summary": self.triage.summary,
            "label": self.triage.label,
            "target": self.triage.target,
            "action": self.action.to_map() if self.action is not None else None,
            "verdict": self.verdict,
            "guard": self.guard,
            "source": self.source,
        }


def _reason_label(item: Item) -> tuple[Label, Literal["post", "account"]]:
    rtype = item.reason_type.rsplit("#", 1)[-1].lower()
    target: Literal["post", "account"] = "account" if item.subject.startswith("did:") else "post"
    if "spam" in rtype:
        return "spam", target
    if any(w in rtype for w in ("scam", "fraud", "misleading")):
        return "scam" if "misleading" not in rtype else "!warn", target
    if any(w in rtype for w in ("rude", "harass", "sexual")):
        return "!warn", target
    if "violation" in rtype:
        return ("!takedown" if target == "account" else "!hide"), target
    if item.kind in ("post", "classifier") and item.score is not None:
        return "spam", "post"
    return "none", target


def template(item: Item) -> Triage:
    """The deterministic triage: a label from the structured fields only."""
    label, target = _reason_label(item)
    what = {"report": "Report", "appeal": "Appeal"}.get(item.kind, "Post held for review")
    why = item.reason_type.rsplit("#", 1)[-1] or "no reason type"
    score = f", classifier score {item.score:.3f}" if item.score is not None else ""
    excerpt = visible(item.text[:_EXCERPT]) + ("…" if len(item.text) > _EXCERPT else "")
    quoted = f' Text: "{excerpt}"' if excerpt else ""
    summary = f"{what} about {visible(item.subject)} ({why}{score}).{quoted}"
    if len(summary) > 400:
        summary = summary[:399] + "…"
    return Triage(summary=summary, label=label, target=target)


def proposed_action(item: Item, out: Triage) -> Action | None:
    """The agent action a triage suggests (None for the label ``none``)."""
    if out.label == "none":
        return None
    account = out.target == "account"
    base = action_for("triage", item.did if account else item.subject, out.label)
    return Action(base.kind, {**base.params, "review": item.id}, accounts=int(account))


def judge(item: Item, out: Triage, state: GuardState) -> tuple[Action | None, str, str]:
    """The guard on a triage: (action kept or None, verdict word, the guard's words)."""
    action = proposed_action(item, out)
    if action is None:
        return None, "none", "no label suggested: a person decides"
    verdict = check(action, state)
    if isinstance(verdict, Deny):
        return None, "deny", f"refused by the mandate: {verdict.reason}"
    if isinstance(verdict, NeedsVote):
        return action, "vote", f"needs a member vote: {verdict.reason}"
    if isinstance(verdict, Optimistic):
        return action, "optimistic", f"members may veto within {verdict.window_s}s"
    return action, "allow", "within the mandate"


def triage(
    backend: Backend, item: Item, mandate: Mandate, now_ms: int = 0
) -> tuple[Suggestion, Run[Triage]]:
    """Triage one item and put its suggestion through the guard."""
    user = (
        "Summarize this moderation item for a human moderator in one or two neutral "
        "sentences and suggest one label: none, spam, scam, !warn, !hide or !takedown; "
        "target is post or account. Judge only what the data shows.\n"
        + data_block("item", item.facts())
        + '\nAnswer {"summary": "...", "label": "...", "target": "post"|"account"}.'
    )
    result = run(
        backend,
        system=DATA_RULES,
        user=user,
        model=Triage,
        template=lambda: template(item),
        max_tokens=200,
    )
    action, verdict, words = judge(item, result.value, GuardState(mandate, now_ms=now_ms))
    suggestion = Suggestion(
        item, result.value, action, verdict, words, result.source, result.latency_s
    )
    return suggestion, result


def item_from_review(review: Mapping[str, Any], text: str = "") -> Item:
    """An :class:`Item` from a labeler review row (``Review.to_json()``)."""
    score = review.get("score")
    return Item(
        kind=str(review.get("kind", "report")),
        subject=str(review.get("subject", "")),
        did=str(review.get("did", "")),
        text=text,
        reason_type=str(review.get("reason_type", "")),
        reason=str(review.get("reason", "")),
        score=float(score) if isinstance(score, int | float) else None,
        id=int(review.get("id", 0)),
    )
