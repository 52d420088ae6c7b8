"""What the labeler may label on its own, and what waits for members: the DAO's mandate.

Every label the labeler would issue is an action for the mandate guard
(:func:`plaza.dao.mandate.check`), of one of two kinds (:func:`action_for`):

- ``moderation.takedown``: ``!takedown`` on an account (the subject is a DID);
- ``moderation.label``: every other label: ``spam`` and ``scam`` on posts and accounts,
  ``!hide`` and ``!takedown`` on a single post.

The guard's verdict over the DAO's mandate decides (:meth:`Policy.verdict`): ``Allow``
issues the label now; ``NeedsVote`` and ``Optimistic`` leave it waiting for the DAO,
and it is issued once the DAO's ledger holds that action executed on the authority of
a passed proposal or an unvetoed motion (:meth:`Policy.authorized`, read from the DAO's
``GET /dao/actions``); ``Deny`` (no rule, ``forbidden``) never issues it. The shipped
mandates make labels automatic and account takedowns a member vote. Without a DAO the
labeler judges by Plaza's default mandate, and what needs members stays waiting.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from plaza.dao.action import Action
from plaza.dao.errors import MandateError
from plaza.dao.mandate import (
    Allow,
    Deny,
    GuardState,
    Mandate,
    Optimistic,
    Verdict,
    check,
    default_mandate,
    mandate_from_map,
)

LABEL_KIND: Final = "moderation.label"
TAKEDOWN_KIND: Final = "moderation.takedown"
AUTOMATIC: Final = "automatic"
WAIT: Final = "wait"  # for the DAO: a vote or a veto window
REFUSED: Final = "refused"


def action_for(labeler: str, subject: str, val: str) -> Action:
    """The guard's action for putting ``val`` on ``subject`` (see the module docstring)."""
    account = subject.startswith("did:")
    kind = TAKEDOWN_KIND if account and val == "!takedown" else LABEL_KIND
    return Action(kind, params={"labeler": labeler, "subject": subject, "val": val})


@dataclass(frozen=True)
class Decision:
    """The guard's ``verdict`` on an action, and what the labeler makes of it."""

    action: Action
    verdict: Verdict
    outcome: str  # AUTOMATIC, WAIT or REFUSED

    @property
    def why(self) -> str:
        v = self.verdict
        if isinstance(v, Allow):
            return f"{self.action.kind} is automatic under the mandate"
        if isinstance(v, Deny):
            return f"the mandate refuses {self.action.kind}: {v.reason}"
        if isinstance(v, Optimistic):
            return f"{self.action.kind} waits out a {v.window_s} s veto window in the DAO"
        return f"{self.action.kind} needs a member vote: {v.reason}"


@dataclass
class Policy:
    """The mandate in force and the moderation actions the DAO has executed."""

    labeler: str
    mandate: Mandate = field(default_factory=default_mandate)
    executed: dict[tuple[str, str], str] = field(default_factory=dict)
    """``(subject, val)`` -> the authority (``proposal:N`` or ``motion:N``)."""

    def verdict(self, subject: str, val: str, now_ms: int) -> Decision:
        action = action_for(self.labeler, subject, val)
        v = check(action, GuardState(self.mandate, now_ms))
        outcome = AUTOMATIC if isinstance(v, Allow) else REFUSED if isinstance(v, Deny) else WAIT
        return Decision(action, v, outcome)

    def authorized(self, subject: str, val: str) -> str | None:
        """The authority under which the DAO executed this label's action, if it did."""
        return self.executed.get((subject, val))

    def set_mandate(self, raw: Any) -> None:
        """Adopt the mandate ``GET /dao/mandate`` returned (:class:`MandateError` if bad)."""
        self.mandate = mandate_from_map(raw)

    def set_actions(self, raws: Iterable[Any], after: int = -1) -> list[tuple[str, str, str]]:
        """Learn the moderation actions in ``GET /dao/actions``; the ``(subject, val,
        authority)`` newly authorized, of those executed after ledger seq ``after`` (what
        an earlier run already applied is learned, not returned again). Only actions for
        this labeler executed on a proposal's or a motion's authority count (the mandate
        itself never authorizes what the guard sent to members)."""
        new = []
        for raw in raws:
            got = _authorized(raw, self.labeler)
            if got is None:
                continue
            subject, val, authority = got
            if (subject, val) not in self.executed:
                self.executed[(subject, val)] = authority
                if raw.get("seq") is None or int(raw["seq"]) > after:
                    new.append(got)
        return new


def _authorized(raw: Any, labeler: str) -> tuple[str, str, str] | None:
    if not isinstance(raw, Mapping):
        return None
    action, authority = raw.get("action"), raw.get("authority")
    if not isinstance(action, Mapping) or not isinstance(authority, str):
        return None
    if "seq" in raw and type(raw["seq"]) is not int:
        return None
    if action.get("kind") not in (LABEL_KIND, TAKEDOWN_KIND):
        return None
    if not authority.startswith(("proposal:", "motion:")):
        return None
    params = action.get("params")
    if not isinstance(params, Mapping) or params.get("labeler") != labeler:
        return None
    subject, val = params.get("subject"), params.get("val")
    if not isinstance(subject, str) or not isinstance(val, str):
        return None
    if not subject.startswith(("did:", "at://did:")) or len(subject) > 8192 or len(val) > 128:
        return None
    return subject, val, authority


__all__ = [
    "AUTOMATIC",
    "LABEL_KIND",
    "REFUSED",
    "TAKEDOWN_KIND",
    "WAIT",
    "Decision",
    "MandateError",
    "Policy",
    "action_for",
]
