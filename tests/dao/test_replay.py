"""Replaying the ledger rebuilds the same state, on every backend, with several writers."""

from __future__ import annotations

import threading

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plaza.dao.errors import DaoError
from plaza.dao.service import Dao
from plaza.dao.state import DaoState
from plaza.ledger import EventStore, MemoryEventStore, replay, verify_log
from tests.dao.conftest import DAY, T0, World, found
from tests.ledger.conftest import StoreFactory

OPS = st.lists(
    st.tuples(
        st.sampled_from(["vouch", "admit", "propose", "vote", "delegate", "execute", "receive"]),
        st.integers(0, 4),
        st.integers(0, 4),
        st.integers(0, 3),
    ),
    max_size=25,
)


def _run(dao: Dao, world: World, ops: list[tuple[str, int, int, int]]) -> None:
    people = [world.alice, world.bob, world.carol, world.dave, world.erin]
    now = T0
    for op, a, b, c in ops:
        now += DAY
        actor, other = people[a], people[b]
        try:
            if op == "vouch":
                dao.vouch(actor, other.did, now)
            elif op == "admit":
                dao.admit(other, other.did, now)
            elif op == "propose":
                dao.propose(actor, "election", f"p{c}", now, choices=("x", "y", "z"))
            elif op == "vote":
                ids = sorted(dao.state.proposals)
                if ids:
                    ballot = {"ranking": ["x", "y", "z"][c % 3 :]}
                    dao.vote(actor, ids[c % len(ids)], ballot, now)
            elif op == "delegate":
                dao.delegate(actor, other.did, now)
            elif op == "execute":
                ids = sorted(dao.state.proposals)
                if ids:
                    dao.execute(actor, ids[c % len(ids)], now + 8 * DAY)
            else:
                dao.receive(actor, "dues", 100 + c, now, source=actor.did, ref=f"dues-{now}")
        except DaoError:
            pass  # refused commands change nothing; the property is about what was recorded


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(OPS)
def test_replaying_twice_gives_the_same_state(world: World, ops: list) -> None:
    store = MemoryEventStore()
    dao = found(store, world)
    _run(dao, world, ops)
    one = replay(store.read(), DaoState())
    two = replay(store.read(), DaoState())
    assert one.fingerprint() == two.fingerprint() == dao.state.fingerprint()
    assert one.to_map() == dao.state.to_map()


def test_every_backend_replays_and_verifies(store: EventStore, world: World) -> None:
    dao = found(store, world)
    _run(
        dao,
        world,
        [
            ("vouch", 0, 3, 0),
            ("vouch", 1, 3, 0),
            ("admit", 0, 3, 0),
            ("propose", 3, 0, 1),
            ("vote", 0, 0, 0),
            ("vote", 3, 0, 1),
            ("receive", 1, 0, 3),
        ],
    )
    dao.checkpoint(world.ledger_key, T0 + 30 * DAY)
    reopened = Dao(store)
    assert reopened.state.fingerprint() == dao.state.fingerprint()
    report = verify_log(store.read_raw(), store.checkpoints(), projection=DaoState())
    assert report.ok, report.problem
    assert report.fingerprint == dao.state.fingerprint()


def test_two_processes_share_one_ledger(backend: tuple[str, StoreFactory], world: World) -> None:
    one = found(backend[1](), world)
    two = Dao(backend[1]())  # a second writer on its own connection
    errors: list[BaseException] = []

    def donate(dao: Dao, who: int) -> None:
        signer = [world.alice, world.bob][who]
        try:
            for i in range(10):
                dao.receive(signer, "donation", 10 + i, T0 + i, source=f"w{who}", ref=f"w{who}-{i}")
        except BaseException as exc:  # noqa: BLE001 - asserted below
            errors.append(exc)

    threads = [threading.Thread(target=donate, args=(d, i)) for i, d in enumerate((one, two))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    one.sync()
    two.sync()
    # Each writer's state equals a fresh replay: no command was checked against, or
    # applied to, a state that had missed the other writer's event before it.
    fresh = Dao(backend[1]())
    assert one.state.fingerprint() == two.state.fingerprint() == fresh.state.fingerprint()
    assert one.state.books.balance("Income:Donations") == -2 * sum(10 + i for i in range(10))
