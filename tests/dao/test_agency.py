"""Agent actions under the mandate: allow, optimistic motions with vetoes, votes, denial,
escrow and placement bookkeeping."""

from __future__ import annotations

import pytest

from plaza.dao.action import Action
from plaza.dao.agency import veto_threshold
from plaza.dao.errors import (
    ActionMismatchError,
    DuplicatePaymentError,
    DuplicateVoteError,
    InvalidPayloadError,
    MandateDeniedError,
    NotAllowedError,
    NotMemberError,
    ProposalClosedError,
    TreasuryError,
)
from plaza.dao.mandate import Allow, Deny, NeedsVote, Optimistic
from plaza.dao.service import Dao
from plaza.ledger import MemoryEventStore
from tests.dao.conftest import DAY, HOUR, T0, World, signer

PROCURE = Action(
    "capacity.procure",
    {"service": "relay", "units": 4},
    amount=150_000,
    category="infrastructure",
    provider="did:web:relay.example",
)


def test_veto_threshold_is_a_ceiling() -> None:
    # E = 3, 5%: 3 * 50000 / 1e6 = 0.15 -> 1. E = 40: 2.0 -> 2. E = 41: 2.05 -> 3.
    assert [veto_threshold(e, 50_000) for e in (0, 3, 40, 41)] == [1, 1, 2, 3]


def test_allowed_action_executes_with_its_reason(dao: Dao, world: World) -> None:
    place = Action(
        "placement.assign", {"accounts": ["did:plc:a"]}, accounts=1, provider="did:web:pds1.example"
    )
    out = dao.act(world.agent, place, "new sign-up", T0 + 1)
    assert out.verdict == Allow()
    [done] = dao.state.actions
    assert (done.reason, done.authority, done.action) == ("new sign-up", "mandate", place)
    assert dao.state.accounts == {"did:web:pds1.example": 1}


def test_only_agents_act(dao: Dao, world: World) -> None:
    with pytest.raises(NotAllowedError):
        dao.record(
            world.alice,
            "dao.action.executed",
            {"action": Action("rfb.create").to_map(), "reason": "x"},
            T0,
        )


def test_allowed_only_when_the_guard_allows(dao: Dao, world: World) -> None:
    before = dao.state.fingerprint()
    with pytest.raises(MandateDeniedError, match="veto window"):
        dao.record(
            world.agent,
            "dao.action.executed",
            {"action": PROCURE.to_map(), "reason": "skip the window"},
            T0 + 1,
        )
    assert dao.state.fingerprint() == before


def test_optimistic_motion_executes_after_its_window(dao: Dao, world: World) -> None:
    out = dao.act(world.agent, PROCURE, "relay at 85% capacity", T0)
    assert out.verdict == Optimistic(48 * 3600, 50_000)
    mid = out.motion
    assert mid is not None
    motion = dao.state.motions[mid]
    assert (motion.threshold, len(motion.eligible)) == (1, 3)  # ceil(3 * 5%) = 1
    with pytest.raises(ProposalClosedError, match="veto window"):
        dao.execute_motion(world.alice, mid, PROCURE, T0 + 47 * HOUR)
    tampered = Action(
        PROCURE.kind,
        PROCURE.params,
        amount=PROCURE.amount + 1,
        category=PROCURE.category,
        provider=PROCURE.provider,
    )
    with pytest.raises(ActionMismatchError):
        dao.execute_motion(world.alice, mid, tampered, T0 + 48 * HOUR)
    dao.execute_motion(world.alice, mid, PROCURE, T0 + 48 * HOUR)
    assert dao.state.motions[mid].status == "executed"
    assert dao.state.books.balance("Expenses:Infrastructure") == 150_000
    assert dao.state.actions[-1].authority == f"motion:{mid}"
    with pytest.raises(ProposalClosedError):
        dao.execute_motion(world.alice, mid, PROCURE, T0 + 49 * HOUR)


def test_veto_turns_a_motion_into_a_binding_vote(dao: Dao, world: World) -> None:
    # 3 members, 5%: one veto reaches ceil(0.15) = 1 and escalates.
    mid = dao.act(world.agent, PROCURE, "relay at 85% capacity", T0).motion
    assert mid is not None
    with pytest.raises(NotMemberError):
        dao.veto(world.dave, mid, T0 + 1)
    veto = dao.veto(world.bob, mid, T0 + 2)
    motion = dao.state.motions[mid]
    assert (motion.status, motion.proposal) == ("escalated", veto.seq)
    with pytest.raises(ProposalClosedError):
        dao.execute_motion(world.alice, mid, PROCURE, T0 + 49 * HOUR)
    prop = dao.state.proposals[veto.seq]
    assert prop.type == "agent-action" and prop.effect is not None
    assert Action.from_map(prop.effect["action"]).digest() == PROCURE.digest()
    # The members approve it after all: 2 yes of 3 closes early (agent-action allows it).
    dao.vote(world.alice, prop.id, {"choice": "yes"}, T0 + 3)
    dao.vote(world.carol, prop.id, {"choice": "yes"}, T0 + 4)
    assert dao.outcome(prop.id, T0 + 5).status == "passed"
    dao.execute(world.alice, prop.id, T0 + 5)
    assert dao.state.actions[-1].authority == f"proposal:{prop.id}"
    assert dao.state.motions[mid].status == "executed"


def test_vetoes_below_the_threshold(world: World) -> None:
    from plaza.ledger import MemoryEventStore
    from tests.dao.conftest import found

    dao = found(MemoryEventStore(), world)
    for s in (world.dave, world.erin):  # 5 members
        dao.vouch(world.alice, s.did, T0)
        dao.vouch(world.bob, s.did, T0)
        dao.admit(s, s.did, T0)
    mandate = dao.state.mandate
    limits = mandate.limits.model_copy(update={"veto_ppm": 400_000})  # ceil(5 * 40%) = 2
    pid = dao.propose(
        world.alice,
        "mandate",
        "v2",
        T0,
        effect={"mandate": mandate.model_copy(update={"version": 2, "limits": limits}).to_map()},
    )
    for s in (world.alice, world.bob, world.carol):
        dao.vote(s, pid, {"choice": "yes"}, T0 + 1)
    dao.execute(world.alice, pid, T0 + 7 * DAY)
    now = T0 + 7 * DAY
    mid = dao.act(world.agent, PROCURE, "capacity", now).motion
    assert mid is not None
    assert dao.state.motions[mid].threshold == 2
    dao.veto(world.erin, mid, now + 1)
    with pytest.raises(DuplicateVoteError):
        dao.veto(world.erin, mid, now + 2)
    assert dao.state.motions[mid].status == "open"
    with pytest.raises(ProposalClosedError):
        dao.veto(world.dave, mid, now + 48 * HOUR)  # window over
    dao.execute_motion(world.bob, mid, PROCURE, now + 48 * HOUR)


def test_budget_spent_meanwhile_stops_a_motion(dao: Dao, world: World) -> None:
    # The infrastructure budget is 2,000,000 per rolling 30 days. A motion to procure
    # 150,000 opens; meanwhile 11 invoices of 180,000 (1,980,000) are paid under the same
    # budget. A 12th would reach 2,160,000 and is denied; executing the motion would reach
    # 2,130,000, so the guard, asked again at execution, stops it too.
    dao.receive(world.agent, "grant", 3_000_000, T0, source="a foundation", ref="grant-1")
    m1 = dao.act(world.agent, PROCURE, "first", T0).motion
    assert m1 is not None
    big = Action(
        "settlement.pay",
        {"invoice": "inv-1"},
        amount=180_000,
        category="infrastructure",
        provider="did:web:relay.example",
    )
    for i in range(11):
        assert dao.act(world.agent, big, f"invoice {i}", T0 + i).verdict == Allow()
    denied = dao.act(world.agent, big, "one more", T0 + 20)
    assert isinstance(denied.verdict, Deny) and denied.verdict.code == "OverBudget"
    assert dao.state.denied[-1][3] == "one more"
    before = dao.state.fingerprint()
    with pytest.raises(MandateDeniedError, match="budget exceeded"):
        dao.execute_motion(world.alice, m1, PROCURE, T0 + 48 * HOUR)
    assert dao.state.fingerprint() == before
    # After 30 days the window has rolled on and the motion may execute.
    dao.execute_motion(world.alice, m1, PROCURE, T0 + 31 * DAY)


def test_needs_vote_files_a_proposal(dao: Dao, world: World) -> None:
    transfer = Action(
        "treasury.transfer", {"payee": "relay co-op"}, amount=5_000, category="grants"
    )
    out = dao.act(world.agent, transfer, "grant requested by members", T0)
    assert isinstance(out.verdict, NeedsVote)
    assert out.proposal is not None
    prop = dao.state.proposals[out.proposal]
    assert (prop.type, prop.author) == ("agent-action", world.agent.did)
    for s in (world.alice, world.bob):
        dao.vote(s, prop.id, {"choice": "yes"}, T0 + 1)
    dao.execute(world.alice, prop.id, T0 + 2)
    assert dao.state.books.balance("Expenses:Grants") == 5_000


def test_forbidden_and_unknown_kinds_are_recorded_as_denied(dao: Dao, world: World) -> None:
    for action in (Action("mandate.change"), Action("teleport.accounts")):
        out = dao.act(world.agent, action, "trying", T0)
        assert isinstance(out.verdict, Deny)
        assert out.event.type == "dao.action.denied"
    assert len(dao.state.actions) == 0


def test_concentration_is_enforced_on_placement(dao: Dao, world: World) -> None:
    # Default mandate: 25% max share from 1000 accounts. Place 300 on each of 4 hosts
    # (1200 total, 25% each), then 1 more on the first: 301/1201 = 25.06% -> denied.
    hosts = [f"did:web:pds{i}.example" for i in range(4)]
    for h in hosts:
        place = Action("placement.assign", accounts=300, provider=h)
        assert dao.act(world.agent, place, "batch", T0).verdict == Allow()
    one = Action("placement.assign", accounts=1, provider=hosts[0])
    out = dao.act(world.agent, one, "one more", T0)
    assert isinstance(out.verdict, Deny) and out.verdict.code == "OverConcentration"
    # Migration away from a host is fine and moves the counts.
    move = Action("migration.batch", accounts=50, source=hosts[0], provider="did:web:pds9")
    assert dao.act(world.agent, move, "drain", T0).verdict == Allow()
    assert dao.state.accounts[hosts[0]] == 250


def test_escrow_bond_and_payment(dao: Dao, world: World) -> None:
    provider = signer("provider").did
    steps = [
        Action("escrow.open", {"escrow": "bond-7", "kind": "bond", "party": provider}),
        Action("escrow.deposit", {"escrow": "bond-7", "amount": 50_000}),
        Action("escrow.open", {"escrow": "pay-7", "kind": "payment", "party": provider}),
        Action("settlement.pay", {"escrow": "pay-7"}, amount=30_000, category="infrastructure"),
        Action("escrow.release", {"escrow": "pay-7", "amount": 25_000}),
        Action("escrow.refund", {"escrow": "pay-7", "amount": 5_000}),
        Action("escrow.release", {"escrow": "bond-7", "amount": 10_000}),
    ]
    for i, a in enumerate(steps):
        assert dao.act(world.agent, a, f"step {i}", T0 + i).verdict == Allow(), a
    b = dao.state.books
    assert b.balance("Assets:Escrow:Bond-7") == 40_000
    assert b.balance("Liabilities:Bonds:Bond-7") == -40_000
    assert b.balance("Assets:Escrow:Pay-7") == 0
    assert b.balance("Expenses:Infrastructure") == 25_000
    assert b.balance("Assets:Treasury") == 1_000_000 - 30_000 + 5_000
    # Forfeiting a bond is optimistic (72h) and moves the money to the treasury.
    forfeit = Action("escrow.forfeit", {"escrow": "bond-7", "amount": 40_000})
    mid = dao.act(world.agent, forfeit, "SLA breach, dispute upheld", T0 + 10).motion
    assert mid is not None
    dao.execute_motion(world.alice, mid, forfeit, T0 + 10 + 72 * HOUR)
    assert b.balance("Income:Forfeits") == -40_000
    assert b.balance("Assets:Escrow:Bond-7") == 0
    assert b.balance("Assets:Treasury") == 1_000_000 - 25_000 + 40_000
    # Releasing more than the escrow holds is refused and changes nothing.
    before = dao.state.fingerprint()
    too_much = Action("escrow.release", {"escrow": "bond-7", "amount": 1})
    with pytest.raises(TreasuryError, match="owe less than nothing"):
        dao.act(world.agent, too_much, "oops", T0 + 11 + 72 * HOUR)
    assert dao.state.fingerprint() == before


def test_income(dao: Dao, world: World) -> None:
    dao.receive(world.alice, "dues", 1_200, T0, source=world.alice.did, ref="sepa 2025-001")
    dao.receive(
        world.agent, "grant", 500_000, T0, source="Sovereign Tech Fund", ref="wire-9", memo="2025"
    )
    dao.receive(world.bob, "donation", 300, T0, source="anonymous", ref="stripe ch_3Nx")
    b = dao.state.books
    assert (
        b.balance("Income:Dues"),
        b.balance("Income:Grants"),
        b.balance("Income:Donations"),
    ) == (-1_200, -500_000, -300)
    assert b.balance("Assets:Treasury") == 1_000_000 + 501_500
    assert [e.ref for e in b.entries[-3:]] == ["sepa 2025-001", "wire-9", "stripe ch_3Nx"]


def test_only_agents_and_treasurers_record_income(dao: Dao, world: World) -> None:
    """carol is a founding member but not a treasurer: a member cannot book income (and
    inflate the treasury others then vote to spend); neither can a stranger."""
    before = dao.state.fingerprint()
    for who in (world.carol, world.dave, world.erin):
        with pytest.raises(NotAllowedError, match="may not record income"):
            dao.receive(who, "donation", 100_000, T0, source="me", ref=f"r-{who.did[-6:]}")
    assert dao.state.fingerprint() == before


def test_a_removed_member_is_no_longer_a_treasurer(dao: Dao, world: World) -> None:
    pid = dao.propose(
        world.alice, "removal", "remove bob", T0, effect={"member": world.bob.did, "fake": False}
    )
    for s in (world.alice, world.bob, world.carol):
        dao.vote(s, pid, {"choice": "yes"}, T0 + 1)
    dao.execute(world.alice, pid, T0 + 8 * DAY)
    assert world.bob.did in dao.state.constitution.treasurers
    with pytest.raises(NotAllowedError, match="may not record income"):
        dao.receive(world.bob, "dues", 100, T0 + 9 * DAY, source="bob", ref="late dues")


def test_agents_record_income_only_if_the_mandate_lets_them(world: World) -> None:
    from plaza.dao.mandate import default_mandate

    base = default_mandate()
    for actions in (
        {k: v for k, v in base.actions.items() if k != "treasury.receive"},  # no rule
        {
            **base.actions,
            "treasury.receive": base.actions["treasury.receive"].model_copy(
                update={"class_": "vote"}
            ),
        },
    ):
        dao = Dao.init(
            MemoryEventStore(),
            world.alice,
            constitution=world.constitution,
            mandate=base.model_copy(update={"actions": actions}),
            now=T0,
            cofounders=(world.bob, world.carol),
        )
        with pytest.raises(MandateDeniedError, match="record income"):
            dao.receive(world.agent, "grant", 5_000, T0, source="a foundation", ref="g-1")
        dao.receive(world.alice, "grant", 5_000, T0, source="a foundation", ref="g-1")


def test_income_needs_a_reference_once_and_the_daos_currency(dao: Dao, world: World) -> None:
    good = {"kind": "dues", "amount": 500, "currency": "EUR", "from": "dave", "ref": "sepa-7"}
    before = dao.state.fingerprint()
    for change, error, match in [
        ({"ref": None}, InvalidPayloadError, "missing field 'ref'"),
        ({"ref": ""}, InvalidPayloadError, "payment reference"),
        ({"ref": " sepa-7"}, InvalidPayloadError, "payment reference"),
        ({"ref": "sepa\n7"}, InvalidPayloadError, "payment reference"),
        ({"ref": "x" * 201}, InvalidPayloadError, "at most 200"),
        ({"currency": None}, InvalidPayloadError, "missing field 'currency'"),
        ({"currency": "USD"}, InvalidPayloadError, "books are in EUR"),
        ({"amount": 0}, InvalidPayloadError, "'amount'"),
        ({"amount": -5}, InvalidPayloadError, "'amount'"),
        ({"amount": 2**63}, InvalidPayloadError, "'amount'"),
        ({"from": " "}, InvalidPayloadError, "who paid"),
    ]:
        payload = {k: v for k, v in {**good, **change}.items() if v is not None}
        with pytest.raises(error, match=match):
            dao.record(world.alice, "dao.treasury.received", payload, T0)
    assert dao.state.fingerprint() == before
    dao.record(world.alice, "dao.treasury.received", good, T0)
    with pytest.raises(DuplicatePaymentError, match="already in the books"):
        dao.receive(world.bob, "donation", 900, T0 + 1, source="someone else", ref="sepa-7")
    assert dao.state.books.refs == {"sepa-7": dao.state.seq}


def test_the_books_never_count_past_64_bits(dao: Dao, world: World) -> None:
    big = 2**63 - 1 - 1_000_000  # the treasury holds the 1,000,000 opening balance
    dao.receive(world.alice, "grant", big, T0, source="a whale", ref="w-1")
    with pytest.raises(TreasuryError, match="more than the books can count"):
        dao.receive(world.alice, "grant", 1, T0 + 1, source="a whale", ref="w-2")
    assert dao.state.books.balance("Assets:Treasury") == 2**63 - 1
