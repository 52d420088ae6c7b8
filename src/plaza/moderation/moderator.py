"""What to do about each post: label it, ask a person, or nothing.

:meth:`Moderator.judge` scores a batch of posts with the classifier in one pass and
adds the cross-post signals of :class:`~plaza.moderation.signals.Crowd`:

- the same text from ``same_text_accounts`` or more new accounts within the window is
  labelled whatever its score (a spam wave);
- a score at or above the classifier's auto-label ``threshold`` is labelled;
- a score at or above ``review_from``, or a burst of ``burst`` posts a minute from one
  author, goes to the review queue;
- anything else is left alone.

A labelled post gets ``scam`` when its text carries money, prize or phone signals, else
``spam``. Sans-IO: the caller passes the time and stores the decisions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from plaza.moderation.signals import Crowd
from plaza.moderation.text import SIGNAL_NAMES

LABEL: Final = "label"
REVIEW: Final = "review"
NONE: Final = "none"
if TYPE_CHECKING:
    from plaza.moderation.classifier import Classifier

_SCAM_SIGNALS: Final = tuple(SIGNAL_NAMES.index(n) for n in ("phones", "money", "prize"))


@dataclass(frozen=True)
class Post:
    uri: str
    cid: str | None
    did: str
    text: str


@dataclass(frozen=True)
class Decision:
    post: Post
    score: float
    action: str  # LABEL, REVIEW or NONE
    val: str  # "spam" or "scam"
    reason: str


class Moderator:
    def __init__(
        self,
        classifier: Classifier,
        *,
        crowd: Crowd | None = None,
        same_text_accounts: int = 5,
        burst: int = 30,
    ) -> None:
        self.classifier = classifier
        self.crowd = crowd or Crowd()
        self.same_text_accounts = same_text_accounts
        self.burst = burst

    def judge(self, posts: Sequence[Post], now: float) -> list[Decision]:
        scores, sigs = self.classifier.scored([p.text for p in posts])
        out = []
        for post, score, sig in zip(posts, scores, sigs, strict=True):
            seen = self.crowd.observe(post.did, post.text, now)
            val = "scam" if any(sig[i] > 0 for i in _SCAM_SIGNALS) else "spam"
            s = float(score)
            if seen.same_text_new_accounts >= self.same_text_accounts:
                action = LABEL
                reason = f"same text from {seen.same_text_new_accounts} new accounts"
            elif s >= self.classifier.threshold:
                action, reason = LABEL, f"classifier score {s:.3f}"
            elif s >= self.classifier.review_from or seen.burst >= self.burst:
                action = REVIEW
                reason = f"classifier score {s:.3f}, {seen.burst} posts in a minute"
            else:
                action, reason = NONE, ""
            out.append(Decision(post, s, action, val, reason))
        return out
