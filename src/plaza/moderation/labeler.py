"""The labeler's core: decisions become signed labels, review items and strikes.

:class:`Labeler` owns the store and the ``#atproto_label`` key. :meth:`Labeler.apply`
takes the moderator's decisions for a batch of posts: each ``label`` decision issues a
signed label on the post (pinned to its CID) and counts a strike against its author;
an author reaching ``account_strikes`` gets the same value on the account (its DID);
each ``review`` decision opens a review item. :meth:`report` files a report or an
appeal; :meth:`resolve` closes a review item with a label, a dismissal or (for an
appeal) a negation of the label appealed. Every issued label is appended to the store's
log in order; :attr:`changed` wakes this process's ``subscribeLabels`` streams. Each of
these transactions first takes the label log's lock
(:meth:`~plaza.moderation.store.LabelerStore.lock_labels`), so what it checks (a label
already on, a strike count) stays true until it commits, whichever process issues.

Every label but a negation first goes to the DAO's mandate (:mod:`plaza.moderation.
policy`): one the guard allows is issued at once; one it sends to members (an account
``!takedown`` under the shipped mandates) is not issued: a moderator's decision leaves
the review item ``waiting``, and :meth:`authorized` issues the label once the DAO has
executed the action on a passed vote's (or an unvetoed motion's) authority, closing the
waiting items on that subject; one it refuses is refused.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any, Final

from plaza.atproto.crypto import PrivateKey
from plaza.errors import InvalidInputError, NotFoundError
from plaza.moderation.errors import MandateRefusedError
from plaza.moderation.labels import iso_time, sign_label, unsigned_label
from plaza.moderation.moderator import LABEL, REVIEW, Decision
from plaza.moderation.policy import AUTOMATIC, REFUSED, Policy
from plaza.moderation.store import LabelerStore, Review

LABEL_VALUES: Final = ("spam", "scam", "!hide", "!takedown")
APPEAL: Final = "com.atproto.moderation.defs#reasonAppeal"
REASON_TYPES: Final = frozenset(
    f"com.atproto.moderation.defs#reason{n}"
    for n in ("Spam", "Violation", "Misleading", "Sexual", "Rude", "Other", "Appeal")
) | frozenset(
    f"tools.ozone.report.defs#reason{n}"
    for n in ("Other", "Appeal", "MisleadingSpam", "MisleadingScam")
)
MAX_REASON: Final = 2000


class Labeler:
    def __init__(
        self,
        store: LabelerStore,
        did: str,
        key: PrivateKey,
        *,
        account_strikes: int = 3,
        clock: Callable[[], float] = time.time,
        policy: Policy | None = None,
    ) -> None:
        self.store = store
        self.did = did
        self.key = key
        self.account_strikes = account_strikes
        self.clock = clock
        self.policy = policy or Policy(did)
        self.changed = asyncio.Event()
        self.issued = 0

    def _now(self) -> str:
        return iso_time(self.clock())

    def issue(
        self, uri: str, val: str, *, cid: str | None = None, neg: bool = False
    ) -> tuple[int, dict[str, Any]]:
        """Sign and append one label; its sequence number and the label."""
        label = sign_label(
            unsigned_label(self.did, uri, val, cts=self._now(), cid=cid, neg=neg), self.key
        )
        seq = self.store.add_label(label)
        self.issued += 1
        self.changed.set()
        return seq, label

    def allowed(self, subject: str, val: str) -> str:
        """What the mandate makes of putting ``val`` on ``subject``: ``automatic``,
        ``wait`` (for the DAO) or ``refused``; ``automatic`` too once the DAO has
        authorized it."""
        if self.policy.authorized(subject, val):
            return AUTOMATIC
        return self.policy.verdict(subject, val, int(self.clock() * 1000)).outcome

    def authorized(self, subject: str, val: str, authority: str) -> int | None:
        """Issue ``val`` on ``subject``, which the DAO executed under ``authority``
        (unless it is on already), and close the items waiting for it; the label's seq."""
        seq = None
        with self.store.db.transaction():
            self.store.lock_labels()  # the checks below hold until the labels commit
            if not self.store.current(subject, val):
                seq = self.issue(subject, val)[0]
            for item in self.store.reviews("waiting", 10_000):
                if item.subject == subject and (item.resolution or "").startswith(f"{val}:"):
                    self.store.resolve(
                        item.id, "labelled", f"{val} ({authority}, seq {seq})", self._now()
                    )
        return seq

    def apply(self, decisions: Sequence[Decision]) -> list[int]:
        """Store what ``decisions`` call for (see the module docstring); the labels' seqs."""
        seqs: list[int] = []
        with self.store.db.transaction():
            self.store.lock_labels()
            for d in decisions:
                if d.action == LABEL:
                    if self.store.current(d.post.uri, d.val):
                        continue
                    if self.allowed(d.post.uri, d.val) != AUTOMATIC:
                        self._review(d, f"{d.reason}; the mandate does not let {d.val} "
                                     "be labelled automatically")  # fmt: skip
                        continue
                    seqs.append(self.issue(d.post.uri, d.val, cid=d.post.cid)[0])
                    strikes = self.store.strike(d.post.did)
                    if (
                        strikes >= self.account_strikes
                        and not self.store.current(d.post.did, "spam")
                        and self.allowed(d.post.did, "spam") == AUTOMATIC
                    ):
                        seqs.append(self.issue(d.post.did, "spam")[0])
                elif d.action == REVIEW:
                    self._review(d, d.reason)
        return seqs

    def _review(self, d: Decision, reason: str) -> None:
        self.store.add_review(
            "classifier",
            d.post.uri,
            d.post.cid,
            d.post.did,
            "com.atproto.moderation.defs#reasonSpam",
            reason,
            d.score,
            None,
            self._now(),
        )

    def report(self, reporter: str, subject: dict[str, Any], reason_type: str, reason: str) -> int:
        """File a report (or an appeal, by ``reasonAppeal``) on ``subject`` (a
        ``com.atproto.admin.defs#repoRef`` or ``com.atproto.repo.strongRef``)."""
        if reason_type not in REASON_TYPES:
            raise InvalidInputError(f"unknown reasonType {reason_type[:100]!r}")
        if len(reason) > MAX_REASON:
            raise InvalidInputError(f"reason is longer than {MAX_REASON} characters")
        kind = subject.get("$type")
        if kind == "com.atproto.admin.defs#repoRef" and isinstance(subject.get("did"), str):
            uri, cid, did = subject["did"], None, subject["did"]
        elif kind == "com.atproto.repo.strongRef" and isinstance(subject.get("uri"), str):
            uri = subject["uri"]
            cid = subject.get("cid") if isinstance(subject.get("cid"), str) else None
            did = uri.removeprefix("at://").split("/", 1)[0]
        else:
            raise InvalidInputError("subject must be a repoRef or a strongRef")
        if not uri.startswith(("at://did:", "did:")) or len(uri) > 8192:
            raise InvalidInputError("subject must name a DID or an AT-URI")
        appeal = reason_type.endswith("reasonAppeal")
        if appeal and reporter != did:
            raise InvalidInputError("only the subject's own account may appeal")
        return self.store.add_review(
            "appeal" if appeal else "report",
            uri,
            cid,
            did,
            reason_type,
            reason,
            None,
            reporter,
            self._now(),
        )

    def resolve(self, review_id: int, action: str, val: str | None = None) -> Review:
        """Close an open review item: ``label`` (with ``val``), ``dismiss``, or
        ``reverse`` (negate every current label of this labeler on the subject)."""
        item = self.store.review(review_id)
        if item is None:
            raise NotFoundError(f"no review item {review_id}")
        if item.status not in ("open", "waiting") or (
            item.status == "waiting" and action == "label"
        ):
            raise InvalidInputError(f"review item {review_id} is already {item.status}")
        with self.store.db.transaction():
            self.store.lock_labels()
            if action == "label":
                if val not in LABEL_VALUES:
                    raise InvalidInputError(f"val must be one of {', '.join(LABEL_VALUES)}")
                verdict = self.policy.verdict(item.subject, val, int(self.clock() * 1000))
                if verdict.outcome == REFUSED and not self.policy.authorized(item.subject, val):
                    raise MandateRefusedError(verdict.why)
                if self.allowed(item.subject, val) == AUTOMATIC:
                    seq, _ = self.issue(item.subject, val, cid=item.cid)
                    self.store.resolve(review_id, "labelled", f"{val} (seq {seq})", self._now())
                else:
                    self.store.resolve(
                        review_id,
                        "waiting",
                        f"{val}: {verdict.why}; {verdict.action.kind} {item.subject}",
                        self._now(),
                    )
            elif action == "dismiss":
                self.store.resolve(review_id, "dismissed", "no action", self._now())
            elif action == "reverse":
                gone = [v for v in LABEL_VALUES if self.store.current(item.subject, v)]
                for v in gone:
                    self.issue(item.subject, v, cid=item.cid, neg=True)
                self.store.resolve(
                    review_id,
                    "reversed",
                    "negated " + (",".join(gone) or "nothing"),
                    self._now(),
                )
            else:
                raise InvalidInputError("action must be label, dismiss or reverse")
        resolved = self.store.review(review_id)
        assert resolved is not None
        return resolved
