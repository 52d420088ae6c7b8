"""The live agents under a DAO: an optimistic motion the guard refuses once its window
has passed lapses (``dao.motion.lapsed``) and is dropped, instead of staying open and
being judged — and denied — again on every pass."""

from __future__ import annotations

from plaza.agents.runner import LiveAgent, run_once
from plaza.agents.settlement import SettlementDesired
from plaza.dao.constitution import default_constitution
from plaza.dao.mandate import Mandate
from plaza.dao.service import Dao
from plaza.dao.state import DaoState
from plaza.ledger import MemoryEventStore, verify_log
from plaza.ledger.keystore import Signer
from plaza.market import Market, MarketParams
from plaza.market.dao_port import DaoLink
from tests.agents.test_runner import MANDATE
from tests.agents.test_settlement import _evidence
from tests.market.conftest import EPOCH_S, GENESIS, HOUR, WINDOW_S, Party, World, key_for
from tests.market.test_rejections import contracted

E = EPOCH_S * 1000
DAY = 24 * HOUR


def _dao_world(mandate: Mandate = MANDATE) -> tuple[Dao, World, list[Signer]]:
    """A DAO (three members, an agent) under a mandate whose suspensions are optimistic
    (24h), and its market with providers a, b, c under contract."""
    agent = Signer(key_for(200).did_key(), key_for(200))
    members = [Signer(key_for(n).did_key(), key_for(n)) for n in (201, 202, 203)]
    dao = Dao.init(
        MemoryEventStore(),
        members[0],
        constitution=default_constitution().model_copy(update={"agents": (agent.did,)}),
        mandate=mandate,
        now=GENESIS - 10 * HOUR,
        cofounders=tuple(members[1:]),
        opening=1_000_000,
    )
    market = Market(dao.ledger, operator_did=agent.did, operator_key=agent.key,
                    dao=DaoLink(dao, agent))  # fmt: skip
    market.open(
        MarketParams(genesis_ms=GENESIS, epoch_s=EPOCH_S, window_s=WINDOW_S, suspend_after=1),
        GENESIS - 6 * HOUR,
    )
    world = World(market, Party(agent.did, agent.key))
    world.contract_ids = contracted(world)  # type: ignore[attr-defined]
    return dao, world, [agent, *members]


def _suspensions(world: World) -> list[tuple[str, str]]:
    return [
        (ev.payload["outcome"], ev.payload["verdict"])
        for ev in world.market.ledger.read()
        if ev.type == "agent.action" and ev.payload["action"]["kind"] == "provider.suspend"
    ]


def test_a_motion_the_amended_mandate_sends_to_a_vote_lapses_once() -> None:
    dao, world, (agent, alice, bob, _) = _dao_world()
    m = world.market
    live = LiveAgent(market=m, signer=agent, settle=SettlementDesired(evidence_grace_s=60))
    b = world.party("b").did
    _evidence(world, 0, set(range(20)))  # b down for 20 of 100 windows: suspend it
    t = GENESIS + E + 60_000
    [proposed] = [r for r in run_once(live, t) if r.action.kind == "provider.suspend"]
    assert (proposed.outcome, proposed.verdict) == ("proposed", "optimistic:86400s")
    assert proposed.proposal is not None
    mid = int(proposed.proposal.ref.split(":")[1])
    # During the window members amend the mandate: suspensions now need their vote.
    mandate = dao.state.mandate
    rule = mandate.actions["provider.suspend"].model_copy(update={"class_": "vote"})
    amended = mandate.model_copy(
        update={"version": 2, "actions": {**mandate.actions, "provider.suspend": rule}}
    )
    pid = dao.propose(alice, "mandate", "suspensions by vote", t + 1,
                      effect={"mandate": amended.to_map()})  # fmt: skip
    for s in (alice, bob):
        dao.vote(s, pid, {"choice": "yes"}, t + 2)
    dao.execute(alice, pid, t + 7 * DAY + 2)

    # The window is long over and the guard now sends the suspension to a vote: the
    # agent closes its motion with the guard's reason, the loop records its end and the
    # reconciler, asking again, files the vote the mandate now calls for.
    later = t + 7 * DAY + 60_000
    records = [r for r in run_once(live, later) if r.action.kind == "provider.suspend"]
    assert [(r.outcome, r.verdict) for r in records] == [
        ("dropped", "optimistic:86400s"),
        ("proposed", "vote"),
    ]
    assert f"motion:{mid} lapsed" in records[0].detail and "needs a vote" in records[0].detail
    motion = dao.state.motions[mid]
    assert (motion.status, motion.lapsed_by) == ("lapsed", agent.did)
    assert "needs a vote" in motion.lapse_reason
    # Later passes neither judge the motion again nor record another denial or lapse.
    for when in (later + HOUR, later + DAY):
        again = [r for r in run_once(live, when) if r.action.kind == "provider.suspend"]
        assert again == []
    assert _suspensions(world) == [
        ("proposed", "optimistic:86400s"),
        ("dropped", "optimistic:86400s"),
        ("proposed", "vote"),
    ]
    lapses = [ev for ev in m.ledger.read() if ev.type == "dao.motion.lapsed"]
    assert [ev.payload["motion"] for ev in lapses] == [mid]
    # Never suspended by the motion (it left probation: later epochs met the SLA).
    assert "suspended" not in [h.new for h in m.state.providers[b].history]
    report = verify_log(m.ledger.store.read_raw(), projection=DaoState())
    assert report.ok, report.problem


def test_a_proposal_for_a_vote_carries_the_drafted_body() -> None:
    rule = MANDATE.actions["provider.suspend"].model_copy(update={"class_": "vote"})
    by_vote = MANDATE.model_copy(update={"actions": {**MANDATE.actions, "provider.suspend": rule}})
    dao, world, (agent, *_) = _dao_world(by_vote)
    told: list[dict[str, object]] = []

    def drafter(facts: dict[str, object]) -> str:
        told.append(facts)
        return f"Members: suspend {facts['provider']}? ({facts['guard']})"

    live = LiveAgent(market=world.market, signer=agent, drafter=drafter,
                     settle=SettlementDesired(evidence_grace_s=60))  # fmt: skip
    _evidence(world, 0, set(range(20)))
    [proposed] = [r for r in run_once(live, GENESIS + E + 60_000)
                  if r.action.kind == "provider.suspend"]  # fmt: skip
    assert (proposed.outcome, proposed.verdict) == ("proposed", "vote")
    b = world.party("b").did
    assert told == [{"kind": "provider.suspend", "guard": told[0]["guard"],
                     "reason": proposed.action.reason.text, "amount": 0, "accounts": 0,
                     "provider": b, "params": told[0]["params"]}]  # fmt: skip
    pid = int(proposed.proposal.ref.split(":")[1])  # type: ignore[union-attr]
    [created] = [ev for ev in dao.ledger.read() if ev.seq == pid]
    assert created.payload["body"] == f"Members: suspend {b}? ({told[0]['guard']})"
    assert "requires a vote" in str(told[0]["guard"])
