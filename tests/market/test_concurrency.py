"""Two market handles writing one ledger at once (each its own connection): lost races
are retried, no event slips past a state, and every handle converges on the replay."""

from __future__ import annotations

import threading

from plaza.ledger import Ledger
from plaza.market import Market, MarketState
from tests.market.conftest import GENESIS, HOUR, StoreFactory, World, key_for, make_world


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
