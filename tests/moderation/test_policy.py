"""The mandate decides what the labeler labels on its own: labels are automatic, an
account takedown waits for a member vote, and only a DAO action executed on a vote's
(or motion's) authority, for this labeler, authorizes it. The vote runs in a real DAO
(the ledger's replay applies the guard)."""

from __future__ import annotations

from pathlib import Path

import pytest

from plaza.atproto.crypto import PrivateKey
from plaza.dao.mandate import NeedsVote, default_mandate, mandate_from_map, parse_mandate
from plaza.dao.service import Dao
from plaza.db import connect
from plaza.errors import InvalidInputError
from plaza.ledger import MemoryEventStore
from plaza.moderation.errors import MandateRefusedError
from plaza.moderation.labeler import Labeler
from plaza.moderation.policy import AUTOMATIC, REFUSED, WAIT, Policy, action_for
from plaza.moderation.store import LabelerStore
from plaza.network.genesis import local_mandate_text
from tests.dao.conftest import T0, World, found, make_world

LAB = "did:plc:labeler0000000000000000"
ACCOUNT = "did:plc:someone000000000000000"
POST = f"at://{ACCOUNT}/app.bsky.feed.post/3k2a"
NOW = T0


@pytest.fixture(scope="module")
def world() -> World:
    return make_world()


@pytest.mark.parametrize("mandate", ["default", "local"])
@pytest.mark.parametrize(
    ("subject", "val", "outcome", "kind"),
    [
        (POST, "spam", AUTOMATIC, "moderation.label"),
        (POST, "scam", AUTOMATIC, "moderation.label"),
        (ACCOUNT, "spam", AUTOMATIC, "moderation.label"),
        (POST, "!hide", AUTOMATIC, "moderation.label"),
        (POST, "!takedown", AUTOMATIC, "moderation.label"),
        (ACCOUNT, "!takedown", WAIT, "moderation.takedown"),
    ],
    ids=[
        "post-spam",
        "post-scam",
        "account-spam",
        "post-hide",
        "post-takedown",
        "account-takedown",
    ],
)
def test_shipped_mandates_make_labels_automatic_and_takedowns_a_vote(
    mandate: str, subject: str, val: str, outcome: str, kind: str
) -> None:
    m = default_mandate() if mandate == "default" else parse_mandate(local_mandate_text())
    decision = Policy(LAB, m).verdict(subject, val, NOW)
    assert (decision.outcome, decision.action.kind) == (outcome, kind)
    assert decision.action.params["subject"] == subject
    if outcome == WAIT:
        assert isinstance(decision.verdict, NeedsVote)
        assert "vote" in decision.why


def test_a_mandate_without_the_rules_refuses_labels() -> None:
    raw = default_mandate().to_map()
    del raw["actions"]["moderation.label"]
    policy = Policy(LAB, mandate_from_map(raw))
    decision = policy.verdict(POST, "spam", NOW)
    assert decision.outcome == REFUSED and "no rule" in decision.why


def _takedown_voted(world: World) -> Dao:
    """The agent submits the takedown; the guard sends it to a vote; members pass it and
    it is executed."""
    dao = found(MemoryEventStore(), world)
    out = dao.act(world.agent, action_for(LAB, ACCOUNT, "!takedown"), "scam ring", NOW)
    assert isinstance(out.verdict, NeedsVote) and out.proposal is not None
    dao.vote(world.alice, out.proposal, {"choice": "yes"}, NOW + 1)
    dao.vote(world.carol, out.proposal, {"choice": "yes"}, NOW + 2)
    dao.execute(world.alice, out.proposal, NOW + 3)
    return dao


def test_only_a_passed_vote_for_this_labeler_authorizes(world: World) -> None:
    dao = _takedown_voted(world)
    actions = [a.to_map() for a in dao.state.actions]
    policy = Policy(LAB)
    other = Policy("did:plc:another0000000000000000")
    assert other.set_actions(actions) == []
    # an action the mandate allowed on its own (authority "mandate") authorizes nothing
    forged = [{**actions[-1], "authority": "mandate"}]
    assert Policy(LAB).set_actions(forged) == []
    assert Policy(LAB).set_actions(["junk", {"action": 1}, None]) == []
    got = policy.set_actions(actions)
    assert got == [(ACCOUNT, "!takedown", actions[-1]["authority"])]
    assert actions[-1]["authority"].startswith("proposal:")
    assert policy.set_actions(actions) == []  # learned once
    assert policy.authorized(ACCOUNT, "!takedown") == actions[-1]["authority"]
    # what a run before a restart applied is learned again but not returned again
    restarted = Policy(LAB)
    assert restarted.set_actions(actions, after=actions[-1]["seq"]) == []
    assert restarted.authorized(ACCOUNT, "!takedown") == actions[-1]["authority"]
    assert Policy(LAB).set_actions(actions, after=actions[-1]["seq"] - 1) == got


def test_labeler_waits_for_the_vote_then_labels(world: World, tmp_path: Path) -> None:
    store = LabelerStore(connect(f"sqlite://{tmp_path / 'l.db'}"))
    policy = Policy(LAB)
    lab = Labeler(store, LAB, PrivateKey.generate(), policy=policy, clock=lambda: NOW / 1000)
    rid = lab.report(
        "did:plc:reporter00000000000000",
        {"$type": "com.atproto.admin.defs#repoRef", "did": ACCOUNT},
        "com.atproto.moderation.defs#reasonSpam",
        "runs a scam ring",
    )
    item = lab.resolve(rid, "label", "!takedown")
    assert item.status == "waiting" and "moderation.takedown" in (item.resolution or "")
    assert not store.current(ACCOUNT, "!takedown") and store.last_seq() == 0
    with pytest.raises(InvalidInputError):
        lab.resolve(rid, "label", "!takedown")  # already decided; waits for members
    # automatic labels go through at once
    other = lab.report(
        "did:plc:reporter00000000000000",
        {"$type": "com.atproto.repo.strongRef", "uri": POST, "cid": None},
        "com.atproto.moderation.defs#reasonSpam",
        "",
    )
    assert lab.resolve(other, "label", "!hide").status == "labelled"

    dao = _takedown_voted(world)
    for subject, val, authority in policy.set_actions([a.to_map() for a in dao.state.actions]):
        assert lab.authorized(subject, val, authority) is not None
    assert store.current(ACCOUNT, "!takedown")
    done = store.review(rid)
    assert done is not None and done.status == "labelled" and "proposal:" in str(done.resolution)


def test_a_refused_label_is_refused(tmp_path: Path) -> None:
    raw = default_mandate().to_map()
    raw["actions"]["moderation.label"]["class"] = "forbidden"
    store = LabelerStore(connect(f"sqlite://{tmp_path / 'l.db'}"))
    lab = Labeler(store, LAB, PrivateKey.generate(), policy=Policy(LAB, mandate_from_map(raw)))
    rid = lab.report(
        "did:plc:reporter00000000000000",
        {"$type": "com.atproto.repo.strongRef", "uri": POST},
        "com.atproto.moderation.defs#reasonSpam",
        "",
    )
    with pytest.raises(MandateRefusedError):
        lab.resolve(rid, "label", "spam")
    assert store.last_seq() == 0 and store.review(rid).status == "open"  # type: ignore[union-attr]


def test_a_member_may_file_the_takedown_vote_too(world: World) -> None:
    dao = found(MemoryEventStore(), world)
    action = action_for(LAB, ACCOUNT, "!takedown")
    effect = {"action": action.to_map(), "reason": "scam ring, reported by three members"}
    pid = dao.propose(world.bob, "agent-action", "take the scam ring down", NOW, effect=effect)
    policy = Policy(LAB)
    dao.vote(world.alice, pid, {"choice": "yes"}, NOW + 1)
    assert policy.set_actions([a.to_map() for a in dao.state.actions]) == []  # not yet
    dao.vote(world.carol, pid, {"choice": "yes"}, NOW + 2)
    dao.execute(world.alice, pid, NOW + 3)
    got = policy.set_actions([a.to_map() for a in dao.state.actions])
    assert got == [(ACCOUNT, "!takedown", f"proposal:{pid}")]
