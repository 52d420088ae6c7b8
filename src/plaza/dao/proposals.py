"""Proposals: creation, ballots, conviction stakes, tallies, execution, cancellation.

Theory of operation. A proposal takes its rules from its type in the constitution's
registry at creation: method, window, quorum (``participation_ppm`` of the members
eligible at the snapshot), support threshold, who may propose, what executes. The
snapshot is the set of members at creation; a member removed later no longer counts
(neither as eligible nor as a voter). Each eligible member votes at most once (a second
ballot is refused, not replaced), before ``end``; a vote at or after ``end`` is refused.

The outcome is computed, never stored: :func:`outcome` tallies the direct ballots, each
weighted by the members whose delegation resolves to its voter (not for quadratic
voting, where credits are personal). It is ``open`` until ``end`` (or until a majority
vote with ``early_close`` can no longer fail), then ``passed`` or ``rejected``. A
conviction proposal instead ``passed`` as soon as its conviction reaches its threshold
and ``expired`` at ``end`` otherwise. Executing a passed proposal records
``dao.proposal.executed`` and applies its effect (the winner's effect, for multi-choice
methods); nothing else makes a proposal's effect happen.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

from plaza.dao.constitution import ProposalType
from plaza.dao.conviction import ConvictionParams, conviction_at, threshold
from plaza.dao.delegation import effective_delegates, resolve
from plaza.dao.effects import judge_effect, validate_effect
from plaza.dao.errors import (
    DuplicateVoteError,
    InvalidBallotError,
    InvalidPayloadError,
    NotAllowedError,
    NotFoundInStateError,
    NotMemberError,
    ProposalClosedError,
)
from plaza.dao.facts import DaoFacts
from plaza.dao.majority import CHOICES, PPM, majority
from plaza.dao.members import require_genesis, require_member
from plaza.dao.payload import (
    ConvictionStaked,
    ProposalCreated,
    ProposalNamed,
    VoteCast,
)
from plaza.dao.proposal_book import ProposalState
from plaza.dao.records import Proposal
from plaza.dao.tally import ballot_problem, tally
from plaza.ledger.event import Event
from plaza.ledger.handlers import Mutation, On


def may_propose(st: DaoFacts, did: str, ptype: ProposalType) -> bool:
    return (
        ("member" in ptype.proposers and st.is_member(did))
        or ("agent" in ptype.proposers and st.is_agent(did))
        or ("provider" in ptype.proposers and st.is_provider(did))
    )


def get_proposal(st: DaoFacts, pid: int) -> Proposal:
    prop = st.proposal(pid)
    if prop is None:
        raise NotFoundInStateError(f"no proposal {pid}")
    return prop


def live_proposal(st: DaoFacts, pid: int) -> ProposalState:
    """Proposal ``pid`` as the rules read it (see :meth:`DaoFacts.proposal_state`)."""
    prop = st.proposal_state(pid)
    if prop is None:
        raise NotFoundInStateError(f"no proposal {pid}")
    return prop


def created(st: DaoFacts, ev: Event, p: ProposalCreated) -> Mutation:
    require_genesis(st)
    type_name, title, choices, effect, effects = p.type, p.title, p.choices, p.effect, p.effects
    ptype = st.constitution.proposal_type(type_name)
    if ptype is None:
        raise InvalidPayloadError(f"unknown proposal type {type_name!r}")
    if not may_propose(st, ev.author_did, ptype):
        raise NotAllowedError(f"{ev.author_did} may not propose a {type_name} proposal")
    if not title.strip():
        raise InvalidPayloadError("a proposal needs a title")
    if ptype.method in ("majority", "conviction"):
        if choices or effects:
            raise InvalidPayloadError(f"{ptype.method} proposals have no choices")
        choices = list(CHOICES) if ptype.method == "majority" else []
    elif len(choices) < 2 or len(set(choices)) != len(choices):
        raise InvalidPayloadError("a proposal needs at least two distinct choices")
    if set(effects) - set(choices):
        raise InvalidPayloadError("effects are keyed by the proposal's choices")
    for eff in [effect, *effects.values()]:
        if eff is not None:
            if not isinstance(eff, dict):
                raise InvalidPayloadError(f"{ev.type}: each of 'effects' must be a map")
            validate_effect(st, ptype.executes, eff)
    if ptype.executes not in ("signal",) and effect is None and not effects:
        raise InvalidPayloadError(f"a {type_name} proposal needs an effect")
    if ptype.executes == "signal" and (effect is not None or effects):
        raise InvalidPayloadError("a signal proposal executes nothing")
    c = st.constitution
    epoch = (ev.time - st.genesis_ms) // (c.epochs.length * 1000)
    proposal = Proposal(
        id=ev.seq,
        type=type_name,
        author=ev.author_did,
        title=title,
        body=p.body,
        method=ptype.method,
        executes=ptype.executes,
        topic=c.topic_of(type_name),
        created_ms=ev.time,
        end_ms=ev.time + ptype.window * 1000,
        choices=tuple(choices),
        effect=effect,
        effects=dict(effects),
        snapshot=frozenset(st.members()),
        epoch=epoch,
        stake_history=((ev.time, 0),) if ptype.method == "conviction" else (),
    )
    return partial(st.put_proposal, proposal)


def _open_for(prop: ProposalState, ev: Event) -> None:
    if prop.status != "open":
        raise ProposalClosedError(f"proposal {prop.id} is {prop.status}")
    if ev.time >= prop.end_ms:
        raise ProposalClosedError(f"proposal {prop.id} closed at {prop.end_ms}")


def vote_cast(st: DaoFacts, ev: Event, p: VoteCast) -> Mutation:
    require_genesis(st)
    pid, ballot = p.proposal, p.ballot
    prop = live_proposal(st, pid)
    if prop.method == "conviction":
        raise InvalidBallotError("conviction proposals take stakes, not ballots")
    _open_for(prop, ev)
    voter = ev.author_did
    if voter not in prop.snapshot_members or not st.is_member(voter):
        raise NotMemberError(f"{voter} is not eligible to vote on proposal {pid}")
    if prop.voted(voter):
        raise DuplicateVoteError(f"{voter} already voted on proposal {pid}")
    if "weight" in ballot:
        raise InvalidBallotError("a cast ballot has no weight: delegation decides it")
    c = st.constitution
    cost = 0
    if prop.method == "majority":
        if set(ballot) != {"choice"} or ballot["choice"] not in CHOICES:
            raise InvalidBallotError('a majority ballot is {"choice": "yes" | "no" | "abstain"}')
    else:
        left = c.epochs.voice_credits - st.credits_spent(voter, prop.epoch)
        ptype = c.proposal_type(prop.type)
        max_score = ptype.max_score if ptype else 10
        problem = ballot_problem(
            prop.method, ballot, frozenset(prop.choices), credits=left, max_score=max_score
        )
        if problem is not None:
            raise InvalidBallotError(f"invalid ballot: {problem}")
        if prop.method == "quadratic":
            cost = sum(n * n for n in ballot["votes"].values())
    return partial(st.cast_vote, pid, voter, ballot, cost)  # a vote is the hot path


def conviction_staked(st: DaoFacts, ev: Event, p: ConvictionStaked) -> Mutation:
    require_genesis(st)
    pid, points = p.proposal, p.points
    prop = live_proposal(st, pid)
    if prop.method != "conviction":
        raise InvalidBallotError(f"proposal {pid} does not use conviction voting")
    _open_for(prop, ev)
    member = ev.author_did
    require_member(st, member)
    allowance = st.constitution.conviction.points_per_member
    used = st.conviction_points(member) - prop.stake_of(member) + points
    if used > allowance:
        raise InvalidBallotError(
            f"{member} would stake {used} points; the allowance is {allowance}"
        )
    return lambda: st.stake(pid, member, points, ev.time)


@dataclass(frozen=True, slots=True)
class Outcome:
    """A proposal's status and result at a point in time."""

    id: int
    status: str  # open | passed | rejected | executed | cancelled | expired
    eligible: int
    counted: int
    winner: str | None
    detail: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "eligible": self.eligible,
            "counted": self.counted,
            "winner": self.winner,
            "detail": self.detail,
        }


def conviction_params(st: DaoFacts) -> ConvictionParams:
    c = st.constitution.conviction
    return ConvictionParams(
        half_life_s=c.half_life,
        step_s=c.step,
        beta_ppm=c.beta_ppm,
        rho_ppm=c.rho_ppm,
        min_points=c.min_points,
    )


def _conviction_outcome(st: DaoFacts, prop: Proposal, at_ms: int) -> Outcome:
    params = conviction_params(st)
    effect = prop.effect or {}
    requested = int(effect.get("amount", 0))
    pool = st.treasury_balance()
    members = len(st.members())
    supply = members * st.constitution.conviction.points_per_member
    y = conviction_at(prop.stake_history, min(at_ms, prop.end_ms), params)
    need = threshold(requested, pool, supply, params)
    detail = {
        "conviction": y,
        "threshold": need if need != float("inf") else None,
        "requested": requested,
        "pool": pool,
        "staked": sum(prop.stakes.values()),
    }
    passed = y >= need
    if prop.status in ("executed", "cancelled"):
        status = prop.status
    elif passed and at_ms < prop.end_ms:
        status = "passed"
    else:
        status = "expired" if at_ms >= prop.end_ms else "open"
    return Outcome(prop.id, status, members, len(prop.stakes), None, detail)


def outcome(st: DaoFacts, pid: int, at_ms: int) -> Outcome:
    """The proposal's status and tally at ``at_ms``."""
    prop = get_proposal(st, pid)
    if prop.method == "conviction":
        return _conviction_outcome(st, prop, at_ms)
    eligible = sorted(m for m in prop.snapshot if st.is_member(m))
    direct = {v: b for v, b in prop.votes.items() if v in prop.snapshot and st.is_member(v)}
    if prop.method == "quadratic":
        weights = dict.fromkeys(direct, 1)
    else:
        non_voters = [m for m in eligible if m not in direct]
        eff = effective_delegates(
            st.delegations,
            members=non_voters,
            topic=prop.topic,
            proposal=str(prop.id),
            at_ms=min(at_ms, prop.end_ms),
        )
        weights = resolve(eligible, direct, eff).weight
    ballots = [{**b, "weight": weights[v]} for v, b in sorted(direct.items())]
    n = len(eligible)
    ptype = st.constitution.proposal_type(prop.type)
    support_ppm = ptype.support_ppm if ptype else 0
    participation_ppm = ptype.participation_ppm if ptype else 0
    early_close = ptype.early_close if ptype else False
    closed = at_ms >= prop.end_ms
    if prop.method == "majority":
        sums = dict.fromkeys(CHOICES, 0)
        for b in ballots:
            sums[b["choice"]] += b["weight"]
        res = majority(
            sums["yes"],
            sums["no"],
            sums["abstain"],
            n,
            support_ppm=support_ppm,
            participation_ppm=participation_ppm,
        )
        counted = sum(sums.values())
        passed = res.passed
        done = closed or (early_close and res.early)
        winner = "yes" if passed else None
        detail: dict[str, Any] = res.to_dict()
    else:
        c = st.constitution
        t = tally(
            prop.method,
            prop.choices,
            ballots,
            credits=c.epochs.voice_credits,
            max_score=ptype.max_score if ptype else 10,
        )
        counted = t.valid_weight
        winner = t.winner
        detail = t.to_dict()
        passed = winner is not None and counted * PPM >= participation_ppm * n
        if passed and prop.method == "single" and support_ppm:
            passed = t.totals[winner] * PPM > support_ppm * counted  # type: ignore[index]
        done = closed
    detail["direct_voters"] = len(direct)
    if prop.status in ("executed", "cancelled"):
        status = prop.status
    elif not done:
        status = "open"
    else:
        status = "passed" if passed else "rejected"
    return Outcome(prop.id, status, n, counted, winner if passed else None, detail)


def executed(st: DaoFacts, ev: Event, p: ProposalNamed) -> Mutation:
    require_genesis(st)
    pid = p.proposal
    if not (st.is_member(ev.author_did) or st.is_agent(ev.author_did)):
        raise NotAllowedError("only members and agents execute proposals")
    prop = get_proposal(st, pid)
    if prop.status != "open":
        raise ProposalClosedError(f"proposal {pid} is already {prop.status}")
    out = outcome(st, pid, ev.time)
    if out.status != "passed":
        raise ProposalClosedError(f"proposal {pid} is {out.status}, not passed")
    effect = prop.effects.get(out.winner or "") if prop.effects else prop.effect
    perform = judge_effect(st, prop, effect, ev) if effect is not None else None

    def mutate() -> None:
        if perform is not None:
            perform()
        st.close_proposal(pid, "executed", ev.time)

    return mutate


def cancelled(st: DaoFacts, ev: Event, p: ProposalNamed) -> Mutation:
    require_genesis(st)
    pid = p.proposal
    prop = live_proposal(st, pid)
    if ev.author_did != prop.author:
        raise NotAllowedError("only the author may cancel a proposal")
    if prop.status != "open":
        raise ProposalClosedError(f"proposal {pid} is already {prop.status}")
    if prop.staked_on():
        raise NotAllowedError("a proposal cannot be cancelled once members have voted on it")
    return lambda: st.close_proposal(pid, "cancelled", ev.time)


HANDLERS: dict[str, On[DaoFacts, Any]] = {
    "dao.proposal.created": On(ProposalCreated, created),
    "dao.vote.cast": On(VoteCast, vote_cast),
    "dao.conviction.staked": On(ConvictionStaked, conviction_staked),
    "dao.proposal.executed": On(ProposalNamed, executed),
    "dao.proposal.cancelled": On(ProposalNamed, cancelled),
}
