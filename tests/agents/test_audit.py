"""Replaying the agents' ledger records through the mandate guard: what the loop wrote
replays; a record the guard would have refused, forged with the agent's own key and
appended straight to the store, does not."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from plaza.agents.audit import AgentActions
from plaza.agents.loop import EVENT_TYPE, AgentLoop, LedgerRecorder, to_guard_action
from plaza.agents.types import Action
from plaza.atproto.crypto import PrivateKey
from plaza.dao.errors import MandateDeniedError
from plaza.ledger import EventRejectedError, Ledger, MemoryEventStore, replay, verify_log
from plaza.sim import Scenario, run, trace_from_values
from plaza.sim.policies import AgentPolicy, provider_did, sim_mandate
from plaza.sim.world import World
from tests.agents.clock import FakeClock
from tests.agents.test_loop import accounts_map, procure
from tests.sim.test_engine import SMALL, diurnal

KEY = PrivateKey.from_bytes("ES256K", hashlib.sha256(b"agent").digest())


@pytest.fixture
def world() -> World:
    trace = trace_from_values(np.full(600, 20.0))
    w = World(trace, Scenario(accounts=3000, signups_per_day=0), (), seed=1)
    w.step(0, 20.0)
    return w


def _spend_the_budget(world: World) -> tuple[AgentLoop, Ledger, FakeClock, float]:
    """A loop that spent all but less than one automatic purchase of the day's budget."""
    clock = FakeClock(step=0)
    mandate = sim_mandate(world.scenario, world)
    ledger = Ledger(MemoryEventStore())
    loop = AgentLoop(mandate, world, LedgerRecorder(ledger, KEY), provider_did)
    rule = mandate.rule("capacity.procure")
    assert rule is not None and rule.optimistic_above is not None
    each = rule.optimistic_above / 100
    for _ in range(int(mandate.budgets["capacity"].limit / 100 // each)):
        [rec] = loop.submit([procure(1.0, each, 1)], clock.now_ms, {})
        assert rec.outcome == "executed"
    return loop, ledger, clock, each


def test_what_the_loop_records_replays(world: World) -> None:
    loop, ledger, clock, each = _spend_the_budget(world)
    # Placements carry the accounts the guard saw (the hosts', not the ledger's).
    world.accounts._grow(30)
    assign = Action.make(
        "placement.assign",
        procure(1, 1, 1).reason,
        allocations=[(r, 1 + r, int(n)) for r, n in enumerate(world.accounts.pending_by_region())],
        accounts=30,
    )
    placed = loop.submit([assign], clock.now_ms, accounts_map(world))
    assert placed and all(r.outcome == "executed" for r in placed)
    [denied] = loop.submit([procure(1.0, each, 2)], clock.now_ms, {})
    assert denied.outcome == "denied"
    audit = replay(ledger.read(), AgentActions(mandate=loop.mandate))
    assert audit.checked == len(ledger)
    assert any("accounts" in ev.payload for ev in ledger.read())


def test_a_forged_over_budget_action_is_rejected_on_replay(world: World) -> None:
    loop, ledger, clock, each = _spend_the_budget(world)
    # The agent key signs a record of a purchase the guard would deny (the day's budget
    # is spent), appended straight to the store: the signature and the chain verify.
    over = procure(1.0, each, 2)
    ga = to_guard_action(over, provider_did)
    forged = ledger.build(
        KEY,
        author_did=KEY.did_key(),
        type=EVENT_TYPE,
        payload={
            "outcome": "executed",
            "verdict": "allow",
            "detail": "done",
            "action": ga.to_map(),
            "reason": over.reason.as_payload(),
        },
        time=clock.now_ms,
    )
    ledger.store.append([forged])
    assert verify_log(ledger.store.read_raw()).ok  # nothing but the guard catches it
    with pytest.raises(MandateDeniedError, match="budget exceeded") as err:
        replay(ledger.read(), AgentActions(mandate=loop.mandate))
    assert isinstance(err.value, EventRejectedError)
    assert err.value.code == "MandateDenied"
    report = verify_log(ledger.store.read_raw(), projection=AgentActions(mandate=loop.mandate))
    assert not report.ok and report.problem is not None
    assert report.problem.seq == forged.seq
    # The same record a day later is within the rolling budget again: it replays.
    honest = AgentActions(mandate=loop.mandate)
    replay(ledger.read(0, forged.seq), honest)
    later = ledger.build(
        KEY,
        author_did=KEY.did_key(),
        type=EVENT_TYPE,
        payload=dict(forged.payload),
        time=clock.now_ms + 86_400_000,
        head=ledger.store.head(),
    )
    honest.apply(later)


def test_a_forged_proposal_of_a_forbidden_action_and_a_vote_without_a_dao(
    world: World,
) -> None:
    mandate = sim_mandate(world.scenario, world)
    ledger = Ledger(MemoryEventStore())
    clock = FakeClock(step=0)
    act = Action.make("provider.offboard", procure(1, 1, 1).reason, provider="did:key:zX")
    ga = to_guard_action(act, provider_did)
    base = {"detail": "", "action": ga.to_map(), "reason": act.reason.as_payload()}
    # Offboarding needs a vote: proposing it is fine, executing it "by proposal:3"
    # without a DAO is not (nobody votes there), nor under the mandate's own authority.
    ok = ledger.record(KEY, author_did=KEY.did_key(), type=EVENT_TYPE,
                       payload={**base, "outcome": "proposed", "verdict": "vote"},
                       time=clock.now_ms)  # fmt: skip
    audit = AgentActions(mandate=mandate)
    audit.apply(ok)
    for verdict, words in (("proposal:3", "no votes"), ("allow", "requires a vote")):
        bad = ledger.build(KEY, author_did=KEY.did_key(), type=EVENT_TYPE,
                           payload={**base, "outcome": "executed", "verdict": verdict},
                           time=clock.now_ms)  # fmt: skip
        with pytest.raises(MandateDeniedError, match=words):
            audit.check(bad)
    # A proposal of an action the mandate forbids outright is refused too.
    doc = mandate.to_map()
    doc["actions"]["provider.offboard"]["class"] = "forbidden"
    from plaza.dao.mandate import mandate_from_map

    with pytest.raises(MandateDeniedError, match="forbidden"):
        AgentActions(mandate=mandate_from_map(doc)).check(ok)


def test_a_simulated_run_replays() -> None:
    res = run(diurnal(2, seed=3), "agent", scenario=SMALL, seed=0)
    pol = res.policy
    assert isinstance(pol, AgentPolicy)
    audit = replay(pol.ledger.read(), AgentActions(mandate=pol.mandate))
    assert audit.checked == sum(1 for ev in pol.ledger.read() if ev.type == EVENT_TYPE) > 100
    assert audit.spends
