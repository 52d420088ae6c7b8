"""Two market handles writing one ledger at once (each its own connection): lost races
are retried, no event slips past a state, and every handle converges on the replay; and
a market run that loses the race to a DAO writer is rebuilt and decided again."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from plaza.dao.service import Dao
from plaza.dao.state import DaoState
from plaza.ledger import Ledger
from plaza.ledger.keystore import Signer
from plaza.market import Market, MarketState
from plaza.market.dao_port import DaoLink, bond_escrow_id
from tests.market.conftest import (
    GENESIS,
    HOUR,
    StoreFactory,
    World,
    key_for,
    make_dao_world,
    make_world,
)


def test_concurrent_writers_converge(store_factory: StoreFactory) -> None:
    world = make_world(store_factory())
    op = world.operator
    handles = [
        Market(Ledger(store_factory()), operator_did=op.did, operator_key=op.key,
               mandate=world.market.mandate)
        for _ in range(2)
    ]  # fmt: skip
    errors: list[BaseException] = []

    def register(h: int) -> None:
        side = World(handles[h], op)
        try:
            for i in range(8):
                side.register(f"w{h}n{i}", 30 + 10 * h + i, now=GENESIS - 5 * HOUR)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=register, args=(h,)) for h in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    fresh = MarketState()
    for ev in Ledger(store_factory()).read():
        fresh.apply(ev)
    assert len(fresh.providers) == 16
    for h in handles:
        h.sync()
        assert h.state.fingerprint() == fresh.fingerprint()
    assert key_for(30).did_key() in {p.key for p in fresh.providers.values()}


@dataclass
class RacingLink(DaoLink):
    """A DAO link that, once, lets a rival DAO writer append in the middle of the
    market's atomic run (when the run asks whether the bond escrow exists)."""

    rival: Callable[[], object] | None = None
    reloads: int = 0

    def reload(self) -> None:
        self.reloads += 1
        super().reload()

    def has_escrow(self, escrow_id: str) -> bool:
        if self.rival is not None:
            rival, self.rival = self.rival, None
            rival()
        return super().has_escrow(escrow_id)


def test_a_run_that_loses_the_race_to_a_dao_writer_is_rebuilt_and_decided_again(
    store_factory: StoreFactory,
) -> None:
    dao, world = make_dao_world(store_factory())
    a = world.register("a", 10, receipt=False).did
    rival = Dao(store_factory())  # another handle (its own connection) on the ledger
    alice = Signer(key_for(201).did_key(), key_for(201))
    t = GENESIS - 4 * HOUR

    def propose() -> object:
        return rival.propose(alice, "signal", "Colour", t, choices=("red", "blue"))

    op = world.operator
    link = RacingLink(dao, Signer(op.did, op.key), rival=propose)
    market = Market(dao.ledger, operator_did=op.did, operator_key=op.key, dao=link)
    provider = market.receive_bond(a, 1_000, "pay-a", t)

    assert link.reloads == 1  # the run lost the append race and was rebuilt once
    assert (provider.bond, provider.bond_received) == (1_000, 1_000)
    types = [ev.type for ev in market.ledger.read()]
    assert types[-4:] == [
        "dao.proposal.created",  # the rival's, appended first
        "dao.action.executed",  # escrow.open
        "dao.action.executed",  # escrow.deposit
        "market.bond.received",
    ]
    assert dao.state.has_escrow(bond_escrow_id(a))
    # Both projections hold what a replay of the ledger holds, each event once.
    market_replay, dao_replay = MarketState(), DaoState()
    for ev in Ledger(store_factory()).read():
        market_replay.apply(ev)
        dao_replay.apply(ev)
    assert market.state.fingerprint() == market_replay.fingerprint()
    assert dao.state.fingerprint() == dao_replay.fingerprint()
