"""One pass of the agents over a market without a DAO: settlement and its follow-ups,
the ledger record as the proposal, carried out by a later pass after its window."""

from __future__ import annotations

from typing import Any

import pytest

from plaza.agents.hosting import Hosting
from plaza.agents.loop import VOTE_WINDOW_S
from plaza.agents.runner import LiveAgent, SignUp, place, run_once
from plaza.agents.settlement import SettlementDesired
from plaza.dao import parse_mandate
from plaza.errors import InvalidInputError
from plaza.ledger import MemoryEventStore
from plaza.ledger.keystore import Signer
from tests.agents.test_settlement import _evidence
from tests.market.conftest import EPOCH_S, GENESIS, HOUR, TEST_MANDATE, make_world
from tests.market.test_rejections import contracted

E = EPOCH_S * 1000
MANDATE = parse_mandate(
    TEST_MANDATE.replace(
        '[actions."provider.suspend"]\nclass = "automatic"\n',
        '[actions."provider.suspend"]\nclass = "optimistic"\nwindow = "24h"\n',
    )
    + '\n[actions."settlement.settle"]\nclass = "automatic"\n'
)


def _settling_agent(world: Any) -> LiveAgent:
    """The operator's agent on ``world``'s market, settling a minute after evidence."""
    return LiveAgent(
        market=world.market,
        signer=Signer(world.operator.did, world.operator.key),
        settle=SettlementDesired(evidence_grace_s=60),
    )


def test_a_pass_settles_and_an_optimistic_penalty_waits_in_the_ledger() -> None:
    world = make_world(MemoryEventStore(), MANDATE, suspend_after=1)
    world.contract_ids = contracted(world)  # type: ignore[attr-defined]
    m = world.market
    agent = _settling_agent(world)
    # Nothing has ended yet: nothing to do.
    assert run_once(agent, GENESIS + 1_000) == []
    _evidence(world, 0, set(range(20)))  # provider b down for 20 of 100 windows
    t = GENESIS + E + 60_000
    records = run_once(agent, t)
    assert [(r.action.kind, r.outcome, r.verdict) for r in records] == [
        ("settlement.pay", "executed", "allow"),
        ("settlement.settle", "executed", "allow"),
        ("provider.suspend", "proposed", "optimistic:86400s"),
    ]
    b = world.party("b").did
    assert records[2].action["provider"] == b
    # A later pass within the window proposes nothing again and changes nothing.
    assert run_once(agent, t + HOUR // 2) == []
    assert m.state.providers[b].status == "probation"
    # Once the window has passed, a pass carries it out (no DAO: nobody could veto); it
    # also settles the epochs that ended meanwhile (no evidence: nothing owed).
    later = run_once(agent, t + 24 * HOUR)
    [done] = [r for r in later if r.action.kind == "provider.suspend"]
    assert (done.outcome, done.verdict) == ("executed", "optimistic-window-passed")
    assert m.state.providers[b].status == "suspended"
    assert {r.action.kind for r in later} == {"provider.suspend", "settlement.settle"}
    suspensions = [
        ev.payload["outcome"]
        for ev in m.ledger.read()
        if ev.type == "agent.action" and ev.payload["action"]["kind"] == "provider.suspend"
    ]
    assert suspensions == ["proposed", "executed"]


VOTED = parse_mandate(
    TEST_MANDATE.replace(
        '[actions."provider.suspend"]\nclass = "automatic"\n',
        '[actions."provider.suspend"]\nclass = "vote"\n',
    )
    + '\n[actions."settlement.settle"]\nclass = "automatic"\n'
)


def test_without_a_dao_a_voted_penalty_expires_and_is_asked_for_again() -> None:
    world = make_world(MemoryEventStore(), VOTED, suspend_after=1)
    world.contract_ids = contracted(world)  # type: ignore[attr-defined]
    m = world.market
    agent = _settling_agent(world)
    _evidence(world, 0, set(range(20)))
    t = GENESIS + E + 60_000
    [proposed] = [r for r in run_once(agent, t) if r.action.kind == "provider.suspend"]
    assert (proposed.outcome, proposed.verdict) == ("proposed", "vote")
    # Pending: later passes within the vote's window do not propose it again.
    assert [r for r in run_once(agent, t + HOUR) if r.action.kind == "provider.suspend"] == []
    end = t + VOTE_WINDOW_S * 1000
    assert [r for r in run_once(agent, end - 1) if r.action.kind == "provider.suspend"] == []
    # Nobody can vote without a DAO: the window over, its end is recorded and the
    # reconciler, asking again, proposes it afresh.
    later = [r for r in run_once(agent, end) if r.action.kind == "provider.suspend"]
    assert [(r.outcome, r.verdict) for r in later] == [("dropped", "vote"), ("proposed", "vote")]
    assert "expired unvoted" in later[0].detail
    # Not suspended (it left probation: the epochs since met the SLA).
    assert m.state.providers[world.party("b").did].status == "active"
    outcomes = [
        ev.payload["outcome"]
        for ev in m.ledger.read()
        if ev.type == "agent.action" and ev.payload["action"]["kind"] == "provider.suspend"
    ]
    assert outcomes == ["proposed", "dropped", "proposed"]


def test_placement_needs_the_live_network_and_places_nothing_for_nobody() -> None:
    world = make_world(MemoryEventStore(), MANDATE)
    agent = _settling_agent(world)
    waiting = [SignUp("a.test", "a@example.com", "a password")]
    with pytest.raises(InvalidInputError, match="live network"):
        place(agent, waiting, GENESIS + 1_000)
    assert len(waiting) == 1
    agent.hosting = Hosting("http://127.0.0.1:9")  # never asked: nobody waits
    assert place(agent, [], GENESIS + 1_000) == []
    assert not [e for e in world.market.ledger.read() if e.type == "agent.action"]


def _hosts(reachable: list[bool]) -> Any:
    import numpy as np

    from plaza.agents.runner import Network

    n = len(reachable)
    return Network(
        dids=[f"did:key:h{i}" for i in range(n)], endpoints=[f"http://h{i}" for i in range(n)],
        regions=["local"], region=np.zeros(n, dtype=np.int64),
        slots=np.full(n, 50, dtype=np.int64), hosted=np.full(n, 3, dtype=np.int64),
        accounts=[[] for _ in range(n)], reachable=np.array(reachable),
        accepting=np.array(reachable), leaving=np.zeros(n, dtype=bool),
    )  # fmt: skip


def test_a_host_counts_as_dead_once_down_for_dead_after_seconds() -> None:
    from typing import cast

    from plaza.agents import migration
    from plaza.agents.runner import outage
    from plaza.agents.types import MandateLimits

    agent = LiveAgent(market=cast(Any, None), signer=cast(Any, None), dead_after_s=30)
    limits = MandateLimits(max_provider_share=0.5, migration_batch_limit=50,
                           concentration_floor=1000)  # fmt: skip
    desired = migration.MigrationDesired(sla_down_steps=30, unit="s")
    t = 1_900_000_000_000
    seen = outage(agent, _hosts([True, False, True]), t)
    assert seen.down_for.tolist() == [0, 1, 0] and not seen.gone.any()
    assert agent.down_since == {"did:key:h1": t}
    assert migration.decide(seen, desired, limits) == []  # a short outage is ridden out
    later = outage(agent, _hosts([True, False, True]), t + 29_000)
    assert later.down_for.tolist() == [0, 30, 0]
    [batch] = migration.decide(later, desired, limits)
    assert batch.kind == "migration.batch" and batch.reason.rule == "migration.restore-failing-host"
    assert "has been unreachable for 30 s (SLA allows 30)" in batch.reason.text
    # Back up: forgotten; down again: counted afresh.
    outage(agent, _hosts([True, True, True]), t + 40_000)
    assert agent.down_since == {}
    assert outage(agent, _hosts([True, False, True]), t + 50_000).down_for.tolist() == [0, 1, 0]
    # Without dead_after_s an unreachable host is gone at once.
    now = LiveAgent(market=cast(Any, None), signer=cast(Any, None))
    assert outage(now, _hosts([False, True]), t).gone.tolist() == [True, False]
