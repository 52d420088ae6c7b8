"""Proposals inside the DAO: every method end to end, delegation, credits, conviction."""

from __future__ import annotations

import pytest

from plaza.dao.errors import (
    InvalidBallotError,
    InvalidPayloadError,
    NotAllowedError,
    ProposalClosedError,
)
from plaza.dao.service import Dao
from tests.dao.conftest import DAY, HOUR, T0, World


def _grow(dao: Dao, world: World, now: int) -> None:
    """Admit dave and erin (5 members)."""
    for s in (world.dave, world.erin):
        dao.vouch(world.alice, s.did, now)
        dao.vouch(world.bob, s.did, now)
        dao.admit(s, s.did, now)


def test_majority_treasury_transfer(dao: Dao, world: World) -> None:
    # 3 members, support 50%, participation 20%: ceil not needed, 1 vote of 3 = 333333 ppm.
    effect = {"amount": 25_000, "payee": "Design studio", "category": "design", "memo": "logo"}
    pid = dao.propose(world.alice, "treasury", "Pay for a logo", T0, effect=effect)
    dao.vote(world.alice, pid, {"choice": "yes"}, T0 + 1)
    dao.vote(world.bob, pid, {"choice": "no"}, T0 + 2)
    assert dao.outcome(pid, T0 + 3).status == "open"
    with pytest.raises(ProposalClosedError, match="open, not passed"):
        dao.execute(world.alice, pid, T0 + 3)
    dao.vote(world.carol, pid, {"choice": "yes"}, T0 + 4)
    out = dao.outcome(pid, T0 + 7 * DAY)
    assert (out.status, out.detail["yes"], out.detail["no"]) == ("passed", 2, 1)
    dao.execute(world.carol, pid, T0 + 7 * DAY)
    books = dao.state.books
    assert books.balance("Expenses:Design") == 25_000
    assert books.balance("Assets:Treasury") == 1_000_000 - 25_000
    assert dao.outcome(pid, T0 + 8 * DAY).status == "executed"
    with pytest.raises(ProposalClosedError):
        dao.execute(world.carol, pid, T0 + 8 * DAY)


def test_rejected_proposal_cannot_execute(dao: Dao, world: World) -> None:
    pid = dao.propose(world.alice, "treasury", "Too much", T0, effect={"amount": 1, "payee": "x"})
    dao.vote(world.alice, pid, {"choice": "no"}, T0 + 1)
    assert dao.outcome(pid, T0 + 7 * DAY).status == "rejected"
    with pytest.raises(ProposalClosedError, match="rejected"):
        dao.execute(world.alice, pid, T0 + 7 * DAY)


def test_overspending_treasury_is_refused(dao: Dao, world: World) -> None:
    pid = dao.propose(
        world.alice, "treasury", "Everything", T0, effect={"amount": 2_000_000, "payee": "x"}
    )
    dao.vote(world.alice, pid, {"choice": "yes"}, T0 + 1)
    before = dao.state.fingerprint()
    with pytest.raises(Exception, match="not enough"):
        dao.execute(world.alice, pid, T0 + 7 * DAY)
    assert dao.state.fingerprint() == before


def test_delegation_in_a_tally(dao: Dao, world: World) -> None:
    _grow(dao, world, T0)
    # 5 members. alice -> bob (global), carol -> bob (topic "treasury"), dave -> carol.
    dao.delegate(world.alice, world.bob.did, T0 + 1)
    dao.delegate(world.carol, world.bob.did, T0 + 1, scope="topic", key="treasury")
    dao.delegate(world.dave, world.carol.did, T0 + 1)
    pid = dao.propose(world.erin, "treasury", "Grant", T0 + 2, effect={"amount": 10, "payee": "x"})
    dao.vote(world.bob, pid, {"choice": "yes"}, T0 + 3)
    dao.vote(world.erin, pid, {"choice": "no"}, T0 + 4)
    # bob carries alice, carol and (through carol) dave: 4 yes, 1 no.
    out = dao.outcome(pid, T0 + 8 * DAY)
    assert (out.detail["yes"], out.detail["no"], out.counted) == (4, 1, 5)
    # A proposal-level delegation beats the topic one; a direct vote beats everything.
    pid2 = dao.propose(
        world.erin, "treasury", "Grant 2", T0 + 5, effect={"amount": 10, "payee": "x"}
    )
    dao.delegate(world.carol, world.erin.did, T0 + 6, scope="proposal", key=str(pid2))
    dao.vote(world.bob, pid2, {"choice": "yes"}, T0 + 7)
    dao.vote(world.erin, pid2, {"choice": "no"}, T0 + 7)
    dao.vote(world.alice, pid2, {"choice": "abstain"}, T0 + 8)
    out = dao.outcome(pid2, T0 + 8 * DAY)
    # bob: himself; erin: herself, carol, dave (via carol); alice: abstains directly.
    assert (out.detail["yes"], out.detail["no"], out.detail["abstain"]) == (1, 3, 1)
    # Revoking and expiring.
    dao.revoke(world.alice, T0 + 9)
    dao.delegate(world.dave, world.erin.did, T0 + 9, expires=T0 + 10 * HOUR)
    pid3 = dao.propose(
        world.erin, "treasury", "Grant 3", T0 + 11, effect={"amount": 10, "payee": "x"}
    )
    dao.vote(world.bob, pid3, {"choice": "yes"}, T0 + 12)
    dao.vote(world.erin, pid3, {"choice": "yes"}, T0 + 12)
    out = dao.outcome(pid3, T0 + 8 * DAY)
    # carol -> bob (topic); dave's delegation to erin expired before the close;
    # alice's global delegation was revoked.
    assert out.detail["yes"] == 3


def test_irv_election(dao: Dao, world: World) -> None:
    _grow(dao, world, T0)
    pid = dao.propose(
        world.alice, "election", "Pick a name", T0 + 1, choices=("agora", "forum", "plaza")
    )
    # alice, bob: plaza > forum; carol: forum > plaza; dave: agora > forum; erin: agora.
    # Round 1: plaza 2, forum 1, agora 2 (5): nobody over 2.5; forum out, carol -> plaza.
    # Round 2: plaza 3 of 5: plaza wins.
    ballots = {
        world.alice: ["plaza", "forum"],
        world.bob: ["plaza", "forum"],
        world.carol: ["forum", "plaza"],
        world.dave: ["agora", "forum"],
        world.erin: ["agora"],
    }
    for s, ranking in ballots.items():
        dao.vote(s, pid, {"ranking": ranking}, T0 + 2)
    out = dao.outcome(pid, T0 + 7 * DAY + 1)
    assert out.status == "passed" and out.winner == "plaza"
    assert [r["eliminated"] for r in out.detail["rounds"]] == ["forum", None]
    with pytest.raises(InvalidBallotError, match="unknown candidate"):
        pid2 = dao.propose(world.alice, "election", "again", T0 + 3, choices=("a", "b"))
        dao.vote(world.alice, pid2, {"ranking": ["c"]}, T0 + 4)


def test_approval_and_score(dao: Dao, world: World) -> None:
    pid = dao.propose(world.alice, "shortlist", "Which relays", T0, choices=("r1", "r2", "r3"))
    dao.vote(world.alice, pid, {"approvals": ["r1", "r2"]}, T0 + 1)
    dao.vote(world.bob, pid, {"approvals": ["r2"]}, T0 + 1)
    out = dao.outcome(pid, T0 + 7 * DAY)
    assert (out.winner, out.detail["totals"]) == ("r2", {"r1": 1, "r2": 2, "r3": 0})
    pid = dao.propose(world.alice, "survey", "Rate", T0 + 2, choices=("x", "y"))
    with pytest.raises(InvalidBallotError, match="over the maximum 5"):
        dao.vote(world.alice, pid, {"scores": {"x": 6}}, T0 + 3)
    dao.vote(world.alice, pid, {"scores": {"x": 5, "y": 1}}, T0 + 3)
    dao.vote(world.bob, pid, {"scores": {"x": 0, "y": 5}}, T0 + 3)
    out = dao.outcome(pid, T0 + 8 * DAY)
    assert (out.winner, out.detail["totals"]) == ("y", {"x": 5, "y": 6})


def test_single_choice_tie_passes_nothing(dao: Dao, world: World) -> None:
    pid = dao.propose(world.alice, "signal", "Colour", T0, choices=("red", "blue"))
    dao.vote(world.alice, pid, {"choice": "red"}, T0 + 1)
    dao.vote(world.bob, pid, {"choice": "blue"}, T0 + 1)
    out = dao.outcome(pid, T0 + 7 * DAY)
    assert (out.status, out.winner, out.detail["tied"]) == ("rejected", None, ["blue", "red"])


def test_quadratic_credits_per_member_per_epoch(dao: Dao, world: World) -> None:
    # 100 credits per 30-day epoch. 7 votes cost 49; then 7 more cost 49 (98 total);
    # then 1 more vote costs 1 -> 99; a further 2 votes would cost 4 > 1 left.
    p1 = dao.propose(world.alice, "priorities", "Q1", T0, choices=("a", "b"))
    p2 = dao.propose(world.alice, "priorities", "Q2", T0, choices=("a", "b"))
    p3 = dao.propose(world.alice, "priorities", "Q3", T0, choices=("a", "b"))
    p4 = dao.propose(world.alice, "priorities", "Q4", T0, choices=("a", "b"))
    dao.vote(world.alice, p1, {"votes": {"a": 7}}, T0 + 1)
    dao.vote(world.alice, p2, {"votes": {"b": 7}}, T0 + 1)
    dao.vote(world.alice, p3, {"votes": {"a": 1}}, T0 + 1)
    with pytest.raises(InvalidBallotError, match="more than the 1 available"):
        dao.vote(world.alice, p4, {"votes": {"a": 2}}, T0 + 1)
    assert dao.state.credits_spent(world.alice.did, 0) == 99
    # The next epoch starts fresh.
    p5 = dao.propose(world.alice, "priorities", "Q5", T0 + 31 * DAY, choices=("a", "b"))
    dao.vote(world.alice, p5, {"votes": {"a": 10}}, T0 + 31 * DAY + 1)


def test_conviction_budget(dao: Dao, world: World) -> None:
    # Treasury 1,000,000; request 10,000 (1% < beta 20%). 3 members x 100 points = S 300.
    # a = 2^(-1h/72h) = 0.990419, 1 - a = 0.0095808;
    # threshold = 0.0025 * 300 / (0.0095808 * (0.2 - 0.01)^2) = 0.75 / 0.00034587 = 2168.4.
    # With all 300 points staked from T0: y(t) = 300 (1 - a^t) / (1 - a) >= 2168.4 iff
    # a^t <= 1 - 2168.4 * 0.0095808 / 300 = 0.930749, i.e. t >= 7.46 hours.
    pid = dao.propose(
        world.alice,
        "budget",
        "Moderation tooling",
        T0,
        effect={"amount": 10_000, "payee": "tools co-op", "category": "tools"},
    )
    for s in (world.alice, world.bob, world.carol):
        dao.stake(s, pid, 100, T0 + 1)
    with pytest.raises(InvalidBallotError, match="would stake 101 points"):
        other = dao.propose(
            world.bob, "budget", "Other", T0 + 2, effect={"amount": 1, "payee": "x"}
        )
        dao.stake(world.bob, other, 1, T0 + 2)
    early = dao.outcome(pid, T0 + 7 * HOUR)
    assert early.status == "open"
    assert early.detail["threshold"] == pytest.approx(2168.4, rel=1e-4)
    late = dao.outcome(pid, T0 + 8 * HOUR)
    assert late.status == "passed"
    with pytest.raises(ProposalClosedError):
        dao.execute(world.alice, pid, T0 + 7 * HOUR)
    dao.execute(world.alice, pid, T0 + 8 * HOUR)
    assert dao.state.books.balance("Expenses:Tools") == 10_000
    assert dao.state.conviction_points(world.alice.did) == 0  # stakes freed


def test_who_may_propose(dao: Dao, world: World) -> None:
    with pytest.raises(NotAllowedError):
        dao.propose(world.dave, "signal", "hi", T0, choices=("a", "b"))
    with pytest.raises(NotAllowedError):
        dao.propose(
            world.agent,
            "constitution",
            "take over",
            T0,
            effect={"constitution": world.constitution.to_map()},
        )
    with pytest.raises(InvalidPayloadError, match="unknown proposal type"):
        dao.propose(world.alice, "coup", "x", T0)


def test_cancel(dao: Dao, world: World) -> None:
    pid = dao.propose(world.alice, "signal", "oops", T0, choices=("a", "b"))
    with pytest.raises(NotAllowedError):
        dao.cancel(world.bob, pid, T0 + 1)
    dao.cancel(world.alice, pid, T0 + 1)
    with pytest.raises(ProposalClosedError):
        dao.vote(world.bob, pid, {"choice": "a"}, T0 + 2)


def test_mandate_and_constitution_changes(dao: Dao, world: World) -> None:
    from plaza.dao.mandate import diff_mandates

    old = dao.state.mandate
    new = old.model_copy(update={"version": 2, "title": "tighter"})
    stale = dao.propose
    with pytest.raises(InvalidPayloadError, match="does not follow"):
        stale(world.alice, "mandate", "same", T0, effect={"mandate": old.to_map()})
    pid = dao.propose(world.alice, "mandate", "v2", T0, effect={"mandate": new.to_map()})
    for s in (world.alice, world.bob):
        dao.vote(s, pid, {"choice": "yes"}, T0 + 1)
    dao.execute(world.alice, pid, T0 + 7 * DAY)
    assert dao.state.mandate.version == 2
    assert [v for _, v in dao.state.mandates] == [old, new]
    assert [c.path for c in diff_mandates(old, dao.state.mandate)] == ["title", "version"]
    legal = world.constitution.legal.model_copy(update={"registered_agent": "Acme Agents LLC"})
    amended = world.constitution.model_copy(update={"legal": legal})
    start = T0 + 7 * DAY  # ledger time never runs backwards: we are past the mandate vote
    pid = dao.propose(
        world.alice, "constitution", "new agent", start, effect={"constitution": amended.to_map()}
    )
    for s in (world.alice, world.bob, world.carol):
        dao.vote(s, pid, {"choice": "yes"}, start + 1)
    with pytest.raises(ProposalClosedError, match="open"):
        dao.execute(world.alice, pid, start + 13 * DAY)
    dao.execute(world.alice, pid, start + 14 * DAY)
    from plaza.dao.legal import diff_records

    assert len(dao.state.legal) == 2
    assert diff_records(dao.state.legal[0].record, dao.state.legal[1].record) == [
        ("registered_agent", "to be appointed", "Acme Agents LLC")
    ]
