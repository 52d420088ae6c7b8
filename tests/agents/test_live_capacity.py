"""Live capacity: the rule on its own, then end to end on a real ledger with a DAO —
sign-ups push utilisation over the plan, the agents open a request for bids, a standby
provider's daemon bids over the market's HTTP API, the agents award, the daemon signs,
the agents sign for the DAO, and the new provider takes the next sign-ups; and a
contracted provider's PDS stops, and its capacity is bought again exactly once."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import replace
from pathlib import Path

import pytest

from plaza.agents.hosting import Hosting
from plaza.agents.live_capacity import (
    LiveCapacityDesired,
    LiveCapacityObserved,
    LoadHistory,
    Lost,
    OpenRfb,
    ToApprove,
    decide,
)
from plaza.agents.runner import LiveAgent, SignUp, run_once
from plaza.agents.types import MandateLimits
from plaza.errors import InvalidInputError
from plaza.ledger import verify_log
from plaza.network.provider import ProviderDaemon
from plaza.services.pds import PdsSettings
from plaza.services.pds import create_app as create_pds
from plaza.services.runner import ServedApp, ServerThread
from tests.network.livenet import AGENT, GENESIS, contract, live_net, port, register, signer

PLAN = LiveCapacityDesired(threshold=0.8, headroom=0.6, min_accounts=10, bid_window_s=20)


def _obs(**kw: object) -> LiveCapacityObserved:
    base: dict[str, object] = dict(
        now_ms=1_000_000, load=0, waiting=0, usable=0, awarded=0, growth_per_s=0.0,
        region="eu", epoch_s=600,
    )  # fmt: skip
    base.update(kw)
    return LiveCapacityObserved(**base)  # type: ignore[arg-type]


def test_under_the_plan_nothing_is_bought() -> None:
    assert decide(_obs(load=79, usable=100), PLAN, MandateLimits()) == []


def test_over_the_plan_one_request_sized_to_the_headroom() -> None:
    [a] = decide(_obs(load=85, usable=100), PLAN, MandateLimits())
    assert a.kind == "capacity.procure" and a.reason.rule == "capacity.utilisation"
    assert a["units"] == 42  # ceil(85 / 0.6) - 100
    assert a["region"] == "eu" and a["intent"] == "hosting"
    # A request already open for enough is not asked again.
    rfb = OpenRfb("rfb-1", 42, 2_000_000, 0, 20, 0, 0)
    assert decide(_obs(load=85, usable=100, open_rfbs=(rfb,)), PLAN, MandateLimits()) == []


def test_growth_is_forecast() -> None:
    [a] = decide(_obs(load=60, usable=100, growth_per_s=0.1), PLAN, MandateLimits())
    assert a.reason.number("forecast") == pytest.approx(90.0)
    # Over the threshold with a provider lost and no floor: the load asks, and says so.
    gone = (Lost("did:key:zGone", 50, "its PDS does not answer"),)
    [b] = decide(_obs(load=60, usable=50, lost_by=gone), PLAN, MandateLimits())
    assert b.reason.rule == "capacity.utilisation" and b["units"] == 50
    assert "50 accounts lost with did:key:zGone" in b.reason.text
    h = LoadHistory()
    assert h.add(0, 10, 600) == 0.0
    assert h.add(10_000, 20, 600) == pytest.approx(1.0)


def test_the_floor_replaces_lost_capacity_once() -> None:
    plan = replace(PLAN, floor_accounts=150, min_accounts=1)
    gone = (Lost("did:key:zGone", 50, "its PDS does not answer"),)
    # Little load, but a provider's 50 accounts are lost: buy them again, naming it.
    [a] = decide(_obs(load=5, usable=100, lost_by=gone), plan, MandateLimits())
    assert a.kind == "capacity.procure" and a.reason.rule == "capacity.replace-lost"
    assert a["units"] == 50 and a["replaces"] == ("did:key:zGone",)
    assert a.reason.text.startswith(
        "replace the capacity lost with did:key:zGone (50 accounts, its PDS does not answer)"
    )
    assert a.reason.number("floor") == 150
    # In flight — an open request, then an awarded contract — it is not asked again;
    # once the replacement runs, the lost contract no longer matters.
    rfb = OpenRfb("rfb-1", 50, 2_000_000, 0, 20, 0, 0)
    assert decide(_obs(load=5, usable=100, lost_by=gone, open_rfbs=(rfb,)), plan,
                  MandateLimits()) == []  # fmt: skip
    assert decide(_obs(load=5, usable=100, awarded=50, lost_by=gone), plan, MandateLimits()) == []
    assert decide(_obs(load=5, usable=150, lost_by=gone), plan, MandateLimits()) == []
    # A bid for part of it: the rest is asked for.
    [b] = decide(_obs(load=5, usable=130, lost_by=gone), plan, MandateLimits())
    assert b["units"] == 20
    # Under the floor with nothing lost (a floor above what was ever contracted).
    [c] = decide(_obs(load=5, usable=100), plan, MandateLimits())
    assert c.reason.rule == "capacity.floor" and c["units"] == 50 and c["replaces"] == ()
    # Load over the threshold as well: the larger of the two targets.
    [d] = decide(_obs(load=120, usable=100, lost_by=gone), plan, MandateLimits())
    assert d.reason.rule == "capacity.replace-lost" and d["units"] == 100  # 120 / 0.6 - 100


def test_awards_once_bidding_closed_and_approves_signed_contracts() -> None:
    full = OpenRfb("rfb-1", 10, 2_000_000, 1, 1, 10, 600)
    waiting = OpenRfb("rfb-2", 10, 2_000_000, 1, 20, 5, 300)
    closed = OpenRfb("rfb-3", 10, 900_000, 0, 20, 0, 0)
    acts = decide(
        _obs(load=1, usable=100, open_rfbs=(full, waiting, closed),
             to_approve=(ToApprove("c-4", "did:key:z", 10),)),
        PLAN, MandateLimits(),
    )  # fmt: skip
    assert [(a.kind, a["phase"], a.get("rfb") or a.get("contract")) for a in acts] == [
        ("contract.award", "approve", "c-4"),
        ("contract.award", "award", "rfb-1"),
        ("contract.award", "award", "rfb-3"),
    ]
    assert acts[1]["cost"] == pytest.approx(6.0)


def test_a_plan_that_cannot_be_met_is_refused() -> None:
    with pytest.raises(InvalidInputError):
        LiveCapacityDesired(threshold=0.5, headroom=0.7)
    with pytest.raises(InvalidInputError):
        LiveCapacityDesired(floor_accounts=-1)


def test_capacity_is_procured_awarded_signed_and_approved_live(tmp_path: Path) -> None:
    acme, beta, gamma = signer("acme"), signer("beta"), signer("gamma")
    with live_net(tmp_path, 3) as net:
        m, t = net.market, net.now[0]
        for who, pds in ((acme, net.pds[0]), (beta, net.pds[1]), (gamma, net.pds[2])):
            register(m, who, pds, accounts=50, price=1_000_000, t=t)
        contract(m, [(acme, 3), (beta, 3)], t + 10)  # gamma is on standby
        hosting = Hosting(net.directory)
        suffix = secrets.token_hex(3)
        agent = LiveAgent(
            market=m, signer=AGENT, hosting=hosting, migration_key=AGENT.key, capacity=PLAN,
            signups=[
                SignUp(f"c{i}-{suffix}.test", f"c{i}-{suffix}@example.com", f"pw-{i}-{suffix}x")
                for i in range(5)
            ],
        )  # fmt: skip
        gamma_d = ProviderDaemon(
            gamma.did, gamma.key, net.market_url, net.pds[2], admin_password=net.passwords[2],
            say=lambda _: None, warn=pytest.fail,
        )  # fmt: skip

        # 1. Five sign-ups on 6 contracted accounts: 83% > 80%, a request for bids.
        now = GENESIS + 1_000
        records = run_once(agent, now)
        assert sum(int(r.action["accounts"]) for r in records if r.outcome == "executed"
                   and r.action.kind == "placement.assign") == 5  # fmt: skip
        [procure] = [r for r in records if r.action.kind == "capacity.procure"]
        assert (procure.outcome, procure.verdict) == ("executed", "allow"), procure.detail
        assert procure.action["units"] == 10  # ceil(5 / 0.6) - 6 = 3, at least 10
        [rfb] = [r for r in m.state.rfbs.values() if not r.awarded]
        # Asked again before anyone bid, the agents do not open a second request.
        assert not [r for r in run_once(agent, now + 1_000) if r.action.kind ==
                    "capacity.procure"]  # fmt: skip

        async def tick() -> list[tuple[str, bool]]:
            try:
                return [(s.kind, ok) for s, ok in await gamma_d.tick()]
            finally:
                await gamma_d.aclose()
                gamma_d.client = None

        # 2. The standby provider's daemon bids, over HTTP, with a signed document.
        net.now[0] = now + 2_000
        assert asyncio.run(tick()) == [("bid", True)]
        assert m.state.bids[m.state.rfbs[rfb.id].bids[0]].provider == gamma.did

        # 3. Bidding closes: the agents award the request (contract.award, allow).
        assert not [r for r in run_once(agent, now + 3_000) if r.action.kind ==
                    "contract.award"]  # fmt: skip
        now += PLAN.bid_window_s * 1000
        records = run_once(agent, now + 3_000)
        [award] = [r for r in records if r.action.kind == "contract.award"]
        assert (award.outcome, award.verdict) == ("executed", "allow"), award.detail
        [c] = [c for c in m.state.contracts.values() if c.provider == gamma.did]
        assert c.status == "awarded" and c.quantity == 10

        # 4. The daemon signs; the agents sign for the DAO: gamma's capacity serves.
        net.now[0] = now + 4_000
        assert asyncio.run(tick()) == [("sign", True)]
        records = run_once(agent, now + 5_000)
        [approve] = [r for r in records if r.action.kind == "contract.award"]
        assert approve.outcome == "executed" and approve.action["phase"] == "approve"
        assert m.state.contracts[c.id].status == "active"

        # 5. New members now find room on gamma too; every step is on the ledger.
        agent.signups[:] = [
            SignUp(f"d{i}-{suffix}.test", f"d{i}-{suffix}@example.com", f"pw-{i}-{suffix}y")
            for i in range(2)
        ]
        records = run_once(agent, now + 6_000)
        assert all(r.outcome == "executed" for r in records), [r.detail for r in records]
        logged = [
            (e.payload["action"]["kind"], e.payload["outcome"], e.payload["reason"]["rule"])
            for e in m.ledger.read()
            if e.type == "agent.action"
        ]
        assert ("capacity.procure", "executed", "capacity.utilisation") in logged
        assert ("contract.award", "executed", "capacity.award") in logged
        assert ("contract.award", "executed", "capacity.approve-signed") in logged
        report = verify_log(m.ledger.store.read_raw())
        assert report.ok, report.problem


def test_a_dead_providers_capacity_is_bought_again_once(tmp_path: Path) -> None:
    acme, beta, doomed, delta = signer("acme"), signer("beta"), signer("doomed"), signer("delta")
    with live_net(tmp_path, 3) as net:
        m, t = net.market, net.now[0]
        # The doomed provider's PDS runs on its own server, so that it can be stopped.
        lone = port()
        pds = PdsSettings(
            data_dir=tmp_path / "doomed", public_url=f"http://127.0.0.1:{lone}",
            directory_url=net.directory,
        )  # fmt: skip
        server = ServerThread([ServedApp("doomed", create_pds(pds), port=lone)])
        with server as (doomed_url,):
            for who, url in ((acme, net.pds[0]), (beta, net.pds[1]), (doomed, doomed_url),
                             (delta, net.pds[2])):  # fmt: skip
                register(m, who, url, accounts=50, price=1_000_000, t=t)
            contract(m, [(acme, 5), (beta, 5), (doomed, 5)], t + 10)  # delta is on standby
            plan = replace(PLAN, floor_accounts=15, min_accounts=1)
            agent = LiveAgent(
                market=m, signer=AGENT, hosting=Hosting(net.directory),
                migration_key=AGENT.key, capacity=plan,
            )  # fmt: skip
            now = GENESIS + 1_000
            assert not [r for r in run_once(agent, now) if r.action.kind == "capacity.procure"]
        # The doomed PDS stops answering: its 5 accounts are bought again, naming it.
        records = run_once(agent, now + 1_000)
        [procure] = [r for r in records if r.action.kind == "capacity.procure"]
        assert (procure.outcome, procure.verdict) == ("executed", "allow"), procure.detail
        assert procure.action.reason.rule == "capacity.replace-lost"
        assert procure.action["units"] == 5 and procure.action["replaces"] == (doomed.did,)
        assert f"capacity lost with {doomed.did} (5 accounts, its PDS does not answer)" in (
            procure.action.reason.text
        )
        [rfb] = [r for r in m.state.rfbs.values() if not r.awarded]
        assert not [r for r in run_once(agent, now + 2_000) if r.action.kind ==
                    "capacity.procure"]  # fmt: skip

        delta_d = ProviderDaemon(
            delta.did, delta.key, net.market_url, net.pds[2], admin_password=net.passwords[2],
            say=lambda _: None, warn=pytest.fail,
        )  # fmt: skip

        async def tick() -> list[tuple[str, bool]]:
            try:
                return [(s.kind, ok) for s, ok in await delta_d.tick()]
            finally:
                await delta_d.aclose()
                delta_d.client = None

        # The standby provider bids; bidding closes, the agents award; delta signs; the
        # agents sign for the DAO. No pass along the way asks for more.
        net.now[0] = now + 3_000
        assert asyncio.run(tick()) == [("bid", True)]
        now += PLAN.bid_window_s * 1000
        records = run_once(agent, now + 3_000)
        [award] = [r for r in records if r.action.kind == "contract.award"]
        assert (award.outcome, award.verdict) == ("executed", "allow"), award.detail
        assert not [r for r in records if r.action.kind == "capacity.procure"]
        [c] = [c for c in m.state.contracts.values() if c.provider == delta.did]
        assert (c.rfb, c.quantity, c.status) == (rfb.id, 5, "awarded")
        assert not [r for r in run_once(agent, now + 4_000) if r.action.kind ==
                    "capacity.procure"]  # fmt: skip
        net.now[0] = now + 5_000
        assert asyncio.run(tick()) == [("sign", True)]
        records = run_once(agent, now + 6_000)
        [approve] = [r for r in records if r.action.kind == "contract.award"]
        assert approve.outcome == "executed" and approve.action["phase"] == "approve"
        assert m.state.contracts[c.id].status == "active"
        assert not [r for r in records if r.action.kind == "capacity.procure"]
        # The replacement serves: a further pass opens nothing more.
        assert not [r for r in run_once(agent, now + 7_000) if r.action.kind in
                    ("capacity.procure", "contract.award")]  # fmt: skip
        assert len(m.state.rfbs) == 2  # the genesis contract's request and the replacement
        logged = [
            (e.payload["action"]["kind"], e.payload["reason"]["rule"], e.payload["reason"]["text"])
            for e in m.ledger.read()
            if e.type == "agent.action" and e.payload["action"]["kind"] == "capacity.procure"
        ]
        assert len(logged) == 1 and logged[0][1] == "capacity.replace-lost"
        assert doomed.did in logged[0][2]
        report = verify_log(m.ledger.store.read_raw())
        assert report.ok, report.problem
