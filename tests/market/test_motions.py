"""Under a DAO, an agent's optimistic suspension or escrow funding is a DAO motion members
can veto: the market carries it out only once the window has passed unvetoed."""

from __future__ import annotations

from typing import Any

import pytest

from plaza.dao import parse_mandate
from plaza.dao.constitution import default_constitution
from plaza.dao.errors import DaoError
from plaza.dao.mandate import Optimistic
from plaza.dao.service import Dao
from plaza.ledger import MemoryEventStore
from plaza.ledger.keystore import Signer
from plaza.market import Market, MarketParams, NotApprovedError
from plaza.market.dao_port import DaoLink
from plaza.market.settle import funding_action, status_action
from tests.market.conftest import (
    EPOCH_S,
    GENESIS,
    HOUR,
    TEST_MANDATE,
    WINDOW_S,
    Party,
    World,
    key_for,
)
from tests.market.test_end_to_end import build

MANDATE = TEST_MANDATE.replace(
    '[actions."provider.suspend"]\nclass = "automatic"\n',
    '[actions."provider.suspend"]\nclass = "optimistic"\nwindow = "24h"\n',
).replace(
    '[actions."settlement.pay"]\nclass = "automatic"\ncategory = "infrastructure"\ncap = 500000\n',
    '[actions."settlement.pay"]\nclass = "automatic"\ncategory = "infrastructure"\n'
    'cap = 500000\noptimistic_above = 1000\nwindow = "24h"\n',
)


def dao_world() -> tuple[Dao, World, list[Signer]]:
    agent = Signer(key_for(200).did_key(), key_for(200))
    members = [Signer(key_for(n).did_key(), key_for(n)) for n in (201, 202, 203)]
    dao = Dao.init(
        MemoryEventStore(),
        members[0],
        constitution=default_constitution().model_copy(update={"agents": (agent.did,)}),
        mandate=parse_mandate(MANDATE),
        now=GENESIS - 10 * HOUR,
        cofounders=tuple(members[1:]),
        opening=1_000_000,
    )
    market = Market(dao.ledger, operator_did=agent.did, operator_key=agent.key,
                    dao=DaoLink(dao, agent))  # fmt: skip
    market.open(
        MarketParams(genesis_ms=GENESIS, epoch_s=EPOCH_S, window_s=WINDOW_S), GENESIS - 6 * HOUR
    )
    world = World(market, Party(agent.did, agent.key))
    build(world)
    return dao, world, [agent, *members]


def unchanged(world: World, error: type[Exception], call: Any) -> None:
    size = len(world.market.ledger)
    with pytest.raises(error):
        call()
    assert len(world.market.ledger) == size


def test_an_optimistic_suspension_waits_for_its_motion() -> None:
    dao, world, (agent, *_) = dao_world()
    m = world.market
    b = world.party("b").did
    out = dao.act(agent, status_action(b, "suspended"), "failed 2 epochs", GENESIS)
    assert isinstance(out.verdict, Optimistic) and out.motion is not None
    # Inside the window the DAO refuses the execution, and nothing is written.
    unchanged(
        world,
        DaoError,
        lambda: m.set_status(b, "suspended", "SLA", GENESIS + 23 * HOUR, motion=out.motion),
    )
    assert m.state.providers[b].status == "probation"
    m.set_status(b, "suspended", "SLA", GENESIS + 24 * HOUR, motion=out.motion)
    assert m.state.providers[b].status == "suspended"
    assert dao.state.motions[out.motion].status == "executed"
    assert dao.state.actions[-1].authority == f"motion:{out.motion}"


def test_a_vetoed_motion_is_not_carried_out() -> None:
    dao, world, (agent, alice, *_) = dao_world()
    m = world.market
    c = world.party("c").did
    out = dao.act(agent, status_action(c, "suspended"), "failed 2 epochs", GENESIS)
    assert out.motion is not None
    dao.veto(alice, out.motion, GENESIS + HOUR)
    unchanged(
        world,
        NotApprovedError,
        lambda: m.set_status(c, "suspended", "SLA", GENESIS + 25 * HOUR, motion=out.motion),
    )
    assert m.state.providers[c].status == "probation"


def test_a_large_funding_waits_for_its_motion() -> None:
    dao, world, (agent, *_) = dao_world()
    m = world.market
    unchanged(world, NotApprovedError, lambda: m.fund_escrow(5_000, GENESIS))
    m.fund_escrow(1_000, GENESIS, "small: at once")
    out = dao.act(agent, funding_action(5_000), "settle epoch 3", GENESIS + 1)
    assert isinstance(out.verdict, Optimistic) and out.motion is not None
    m.fund_escrow(5_000, GENESIS + 24 * HOUR + 1, "settle epoch 3", motion=out.motion)
    assert dao.state.books.balance("Assets:Escrow:Market") == 6_000
    assert m.state.journal.balance("Assets:Escrow:Market") == 6_000
