"""A motion the mandate guard refuses after its window lapses (``dao.motion.lapsed``):
closed with the guard's reason, never executed, and accepted on replay only when the
guard as of that point in the ledger indeed refuses it."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from plaza.dao.action import Action
from plaza.dao.api import ApiSettings, create_app
from plaza.dao.errors import (
    InvalidPayloadError,
    MotionNotRefusedError,
    NotAllowedError,
    NotFoundInStateError,
    ProposalClosedError,
)
from plaza.dao.mandate import Allow
from plaza.dao.service import Dao
from plaza.dao.state import DaoState
from plaza.ledger import MemoryEventStore, SqlEventStore, verify_log
from plaza.services.runner import ServedApp, ServerThread
from tests.dao.conftest import DAY, HOUR, T0, World, found

PROCURE = Action(
    "capacity.procure",
    {"service": "relay", "units": 4},
    amount=150_000,
    category="infrastructure",
    provider="did:web:relay.example",
)
INVOICE = Action(
    "settlement.pay",
    {"invoice": "inv-1"},
    amount=180_000,
    category="infrastructure",
    provider="did:web:relay.example",
)


def _spend_the_budget(dao: Dao, world: World) -> int:
    """Open a 150,000 motion, then spend 1,980,000 of the 2,000,000 rolling 30-day
    infrastructure budget during its window; return the motion's id."""
    dao.receive(world.agent, "grant", 3_000_000, T0, source="a foundation", ref="grant-1")
    mid = dao.act(world.agent, PROCURE, "relay at 85% capacity", T0).motion
    assert mid is not None
    for i in range(11):
        assert dao.act(world.agent, INVOICE, f"invoice {i}", T0 + 1 + i).verdict == Allow()
    return mid


def test_a_motion_whose_budget_is_spent_meanwhile_lapses(dao: Dao, world: World) -> None:
    mid = _spend_the_budget(dao, world)
    end = T0 + 48 * HOUR
    before = dao.state.fingerprint()
    # Not before its window's end: it could still be vetoed, and nothing is decided yet.
    with pytest.raises(ProposalClosedError, match="veto window"):
        dao.lapse_motion(world.agent, mid, end - 1)
    # Only its agent and members may close it.
    with pytest.raises(NotAllowedError, match="only the agent that opened it"):
        dao.lapse_motion(world.dave, mid, end)
    assert dao.state.fingerprint() == before
    reason = dao.motion_refusal(mid, end)
    assert reason is not None and "budget exceeded: 1980000 spent" in reason
    ev = dao.lapse_motion(world.agent, mid, end)
    assert (ev.type, ev.payload) == ("dao.motion.lapsed", {"motion": mid, "reason": reason})
    motion = dao.state.motions[mid]
    assert (motion.status, motion.lapsed_ms, motion.lapsed_by) == ("lapsed", end, world.agent.did)
    assert motion.to_map()["lapsed"]["reason"] == ev.payload["reason"]
    assert motion.why_closed() == f"the guard refused it after its window ({reason})"
    # Lapsed for good: once the budget window has rolled on the guard would allow the
    # action again, but the motion is closed; it never executes and spends nothing.
    assert dao.motion_refusal(mid, T0 + 31 * DAY) is None
    with pytest.raises(ProposalClosedError, match="lapsed"):
        dao.execute_motion(world.alice, mid, PROCURE, T0 + 31 * DAY)
    with pytest.raises(ProposalClosedError, match="lapsed"):
        dao.lapse_motion(world.bob, mid, T0 + 31 * DAY)
    assert not [a for a in dao.state.actions if a.authority == f"motion:{mid}"]
    assert dao.state.books.balance("Expenses:Infrastructure") == 11 * 180_000
    # The ledger verifies and re-derives the lapse.
    report = verify_log(dao.store.read_raw(), projection=DaoState())
    assert report.ok, report.problem
    assert report.fingerprint == dao.state.fingerprint()


def test_a_member_may_close_a_motion_the_mandate_now_sends_to_a_vote(world: World) -> None:
    """The mandate is amended during the window so that procurement needs a vote: the
    motion lapses, closed by a member (its agent may be gone)."""
    dao = found(MemoryEventStore(), world)
    mid = dao.act(world.agent, PROCURE, "relay at 85% capacity", T0).motion
    assert mid is not None
    mandate = dao.state.mandate
    rule = mandate.actions["capacity.procure"].model_copy(update={"class_": "vote"})
    amended = mandate.model_copy(
        update={"version": 2, "actions": {**mandate.actions, "capacity.procure": rule}}
    )
    pid = dao.propose(world.alice, "mandate", "v2", T0 + 1, effect={"mandate": amended.to_map()})
    for s in (world.alice, world.bob):
        dao.vote(s, pid, {"choice": "yes"}, T0 + 2)
    dao.execute(world.alice, pid, T0 + 7 * DAY + 2)
    reason = dao.motion_refusal(mid, T0 + 7 * DAY + 3)
    assert reason is not None and "needs a vote" in reason
    dao.lapse_motion(world.carol, mid, T0 + 7 * DAY + 3)
    motion = dao.state.motions[mid]
    assert (motion.status, motion.lapsed_by) == ("lapsed", world.carol.did)


def test_a_lapse_the_guard_would_not_refuse_is_rejected(dao: Dao, world: World) -> None:
    mid = dao.act(world.agent, PROCURE, "relay at 85% capacity", T0).motion
    assert mid is not None
    end = T0 + 48 * HOUR
    before = dao.state.fingerprint()
    assert dao.motion_refusal(mid, end) is None
    with pytest.raises(MotionNotRefusedError, match="execute it instead"):
        dao.lapse_motion(world.agent, mid, end)
    with pytest.raises(NotFoundInStateError):
        dao.lapse_motion(world.agent, mid + 100, end)
    assert dao.state.fingerprint() == before
    # Forced into the store with a valid signature (a dishonest agent): replay names it.
    bad = dao.ledger.build(
        world.agent.key,
        author_did=world.agent.did,
        type="dao.motion.lapsed",
        payload={"motion": mid, "reason": "mandate denies capacity.procure: budget exceeded"},
        time=end,
    )
    with pytest.raises(MotionNotRefusedError):
        dao.state.check(bad)
    dao.store.append([bad])
    report = verify_log(dao.store.read_raw(), projection=DaoState())
    assert report.problem is not None
    assert (report.problem.seq, report.problem.code) == (bad.seq, "MotionNotRefused")


def test_a_lapse_needs_its_reason(dao: Dao, world: World) -> None:
    mid = _spend_the_budget(dao, world)
    before = dao.state.fingerprint()
    for payload, error in (
        ({"motion": mid, "reason": " "}, InvalidPayloadError),
        ({"motion": mid}, InvalidPayloadError),
        ({"motion": mid, "reason": "x", "extra": 1}, InvalidPayloadError),
    ):
        with pytest.raises(error):
            dao.record(world.agent, "dao.motion.lapsed", payload, T0 + 48 * HOUR)
    assert dao.state.fingerprint() == before


def test_the_api_shows_a_lapsed_motion(tmp_path: Path, world: World, free_port: int) -> None:
    url = f"sqlite://{tmp_path / 'ledger.db'}"
    dao = found(SqlEventStore.open(url), world)
    mid = _spend_the_budget(dao, world)
    dao.lapse_motion(world.bob, mid, T0 + 48 * HOUR)
    reason = dao.state.motions[mid].lapse_reason
    dao.store.close()
    app = create_app(ApiSettings(db_url=url, clock=lambda: T0 + 48 * HOUR))
    with ServerThread([ServedApp("dao", app, "127.0.0.1", free_port)]) as (base,):
        [motion] = httpx.get(f"{base}/dao/motions").json()
        summary = httpx.get(f"{base}/dao").json()
    assert (motion["id"], motion["status"]) == (mid, "lapsed")
    assert motion["lapsed"] == {"time": T0 + 48 * HOUR, "by": world.bob.did, "reason": reason}
    assert (summary["open_motions"], summary["lapsed_motions"]) == (0, 1)
