"""The market run by a real DAO on one shared ledger, on every backend: bonds, escrow and
payments in the DAO's books (exported to Beancount and checked by the real
``bean-check``), award motions the members can veto, and a dispute decided by a vote of
the DAO's ``dispute`` proposal type."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from plaza.atproto.crypto import PrivateKey
from plaza.dao.beancount import to_beancount
from plaza.dao.constitution import default_constitution
from plaza.dao.mandate import default_mandate
from plaza.dao.service import Dao
from plaza.ledger import EventStore, MemoryEventStore
from plaza.ledger.keystore import Signer
from plaza.market import Market, MarketParams, NotApprovedError, sign_doc
from plaza.market.dao_port import DaoLink
from tests.market.conftest import (
    EPOCH_S,
    GENESIS,
    HOUR,
    MARKET_DID,
    WINDOW_S,
    Party,
    StoreFactory,
    World,
)
from tests.market.test_end_to_end import RFB, all_up, check_books, down_at

DAY = 24 * HOUR
E = EPOCH_S * 1000


def signer(name: str) -> Signer:
    key = PrivateKey.from_bytes("ES256K", hashlib.sha256(name.encode()).digest())
    return Signer(key.did_key(), key)


MEMBERS = {n: signer(n) for n in ("alice", "bob", "carol")}
AGENT = signer("market-agent")


def dao_world(store: EventStore) -> tuple[Dao, World]:
    mandate = default_mandate()
    # The default signs small awards at once; these tests are about the veto window, so
    # every award here is optimistic (72 h), as a DAO may vote to make it.
    award = mandate.actions["contract.award"].model_copy(update={"class_": "optimistic"})
    mandate = mandate.model_copy(
        update={
            "actions": {**mandate.actions, "contract.award": award},
            "limits": mandate.limits.model_copy(
                update={
                    "max_provider_share_ppm": 400_000,
                    "concentration_min_accounts": 0,
                    "hhi_ceiling": 4000,
                }
            ),
        }
    )
    constitution = default_constitution().model_copy(update={"agents": (AGENT.did,)})
    dao = Dao.init(
        store,
        MEMBERS["alice"],
        constitution=constitution,
        mandate=mandate,
        now=GENESIS - 200 * HOUR,
        cofounders=(MEMBERS["bob"], MEMBERS["carol"]),
        opening=1_000_000,  # 10,000.00 EUR in the treasury
    )
    market = Market(
        dao.ledger, operator_did=AGENT.did, operator_key=AGENT.key, dao=DaoLink(dao, AGENT)
    )
    market.open(
        MarketParams(genesis_ms=GENESIS, epoch_s=EPOCH_S, window_s=WINDOW_S),
        GENESIS - 150 * HOUR,
    )
    return dao, World(market, Party(AGENT.did, AGENT.key))


def contracts_via_dao(dao: Dao, world: World) -> dict[str, str]:
    m = world.market
    for i, name in enumerate(("a", "b", "c")):
        world.register(name, 10 + i, now=GENESIS - 120 * HOUR)
    for i, name in enumerate(("p1", "p2", "p3")):
        world.register(name, 20 + i, services=("prober",), bond=0, now=GENESIS - 120 * HOUR)
    spec = {**RFB, "deadline_ms": GENESIS - 85 * HOUR}
    m.create_rfb(spec, GENESIS - 90 * HOUR)
    for name, price in (("a", 4_000_000), ("b", 5_000_000), ("c", 6_000_000)):
        m.submit_bid(world.bid(name, "rfb-1", account=price, expires=GENESIS), GENESIS - 88 * HOUR)
    _, contracts = m.award("rfb-1", GENESIS - 85 * HOUR)
    assert len(dao.state.motions) == 3  # one veto-able motion per optimistic contract
    out = {}
    for ct in contracts:
        name = next(n for n, p in world.parties.items() if p.did == ct.provider)
        m.sign_contract(
            world.party(name).sign(
                {"$type": "terms", "provider": ct.provider, "market": m.operator_did,
                 "contract": ct.id,
                 "terms_digest": ct.terms_digest(), "nonce": f"t-{ct.id}"}
            ),
            GENESIS - 84 * HOUR,
        )  # fmt: skip
        out[name] = ct.id
    return out


def test_market_under_a_dao(store_factory: StoreFactory, tmp_path: Path) -> None:
    dao, world = dao_world(store_factory())
    m = world.market
    ids = contracts_via_dao(dao, world)
    # The 72-hour veto window of the default mandate must pass first.
    with pytest.raises(NotApprovedError):
        m.approve_contract(ids["a"], GENESIS - 20 * HOUR)
    for cid in ids.values():
        assert m.approve_contract(cid, GENESIS - 10 * HOUR).status == "active"
    assert {a.authority for a in dao.state.actions if a.action.kind == "contract.award"} == {
        f"motion:{mid}" for mid in dao.state.motions
    }
    m.fund_escrow(5_000, GENESIS - 5 * HOUR, "first funding")
    books = dao.state.books
    assert books.balance("Assets:Escrow:Market") == 5_000
    assert books.balance("Assets:Treasury") == 1_000_000 - 5_000

    t0 = GENESIS + E + 60_000
    for p, lat in (("p1", 100), ("p2", 150), ("p3", 300)):
        m.report_probes(
            world.probes(p, 0, {"a": all_up(lat), "b": down_at({10, 30}, lat), "c": all_up(lat)}),
            t0,
        )
    usage = {"account": 400, "gb_hour": 380, "request": 30_000, "egress_gb": 1}
    m.report_usage(world.usage("b", ids["b"], 0, usage), t0)
    m.report_usage(world.usage("a", ids["a"], 0, {"account": 400}), t0)
    r = m.settle(0, t0 + 60_000)
    # B: the same arithmetic as the standalone scenario, 1761 cents; A: 400 x 4,000,000
    # = 1600 cents. Together 3361 of the 5000 in escrow.
    assert {i.contract: i.amount for i in r.invoices} == {
        ids["a"]: 1600,
        ids["b"]: 1761,
        ids["c"]: 0,
    }
    assert r.paid == 3361
    assert books.balance("Expenses:Infrastructure") == 3361
    assert books.balance("Assets:Escrow:Market") == 5_000 - 3361
    # Every payment is a DAO escrow release with its reason, executed under the mandate.
    releases = [a for a in dao.state.actions if a.action.kind == "escrow.release"]
    assert sorted(a.action.params["amount"] for a in releases) == [1600, 1761]
    assert all(a.reason.startswith("pay inv-") for a in releases)

    # B disputes its invoice; the DAO votes on a proposal of the dispute type.
    inv = f"inv-{ids['b']}-0"
    evidence = hashlib.sha256(b"b's own probe log").hexdigest()
    doc = world.party("b").sign(
        {
            "$type": "dispute",
            "provider": world.party("b").did,
            "market": m.operator_did,
            "invoice": inv,
            "claim": 587,
            "reason": "windows 10 and 30 were a network partition at the probers",
            "evidence": [{"kind": "probe-log", "digest": evidence, "note": "our logs"}],
            "nonce": "dispute-1",
        }
    )
    d = m.open_dispute(doc, t0 + HOUR)
    prop = dao.state.proposals[d.proposal]
    assert (prop.type, prop.effect["claimant"]) == ("dispute", world.party("b").did)
    with pytest.raises(NotApprovedError):
        m.resolve_dispute(d.id, t0 + 2 * HOUR)  # the vote is still open
    dao.vote(MEMBERS["alice"], d.proposal, {"choice": "yes"}, t0 + 2 * HOUR)
    dao.vote(MEMBERS["bob"], d.proposal, {"choice": "yes"}, t0 + 2 * HOUR)
    dao.vote(MEMBERS["carol"], d.proposal, {"choice": "no"}, t0 + 2 * HOUR)
    after_vote = t0 + 8 * DAY
    ruled = m.resolve_dispute(d.id, after_vote)
    assert (ruled.status, ruled.amount) == ("upheld", 587)
    r2 = m.settle(0, after_vote + 1)
    assert r2.payments == {inv: 587}
    assert books.balance("Expenses:Infrastructure") == 3361 + 587

    # The DAO's books, market included, pass bean-check; so do the market's own.
    check_books(to_beancount(books, title="Plaza DAO with market"), tmp_path)
    # And every state rebuilds from the shared ledger alone.
    fresh = Dao(dao.store)
    assert fresh.state.fingerprint() == dao.state.fingerprint()
    again = Market(dao.ledger, operator_did=AGENT.did, operator_key=None, dao=DaoLink(fresh, AGENT))
    assert again.state.fingerprint() == m.state.fingerprint()


def test_a_vetoed_award_cannot_be_approved() -> None:
    dao, world = dao_world(MemoryEventStore())
    ids = contracts_via_dao(dao, world)
    motion = world.market.dao.motion_for(ids["c"])  # type: ignore[union-attr]
    assert motion is not None
    dao.veto(MEMBERS["alice"], motion.id, GENESIS - 80 * HOUR)
    with pytest.raises(NotApprovedError):
        world.market.approve_contract(ids["c"], GENESIS - 10 * HOUR)
    assert world.market.state.contracts[ids["c"]].status == "awarded"


def test_a_provider_files_its_own_dispute_proposal(store_factory: StoreFactory) -> None:
    """Registering under a DAO gives the provider the DAO's provider role, which the
    constitution lets file dispute proposals; members then rule on it."""
    from plaza.market import IdentityProofError
    from tests.market.conftest import key_for, make_dao_world

    dao, world = make_dao_world(store_factory())
    t = GENESIS - 5 * HOUR
    b = world.register("b", 11, now=t)
    assert dao.state.roles[b.did] == "provider"
    # b is a did:plc: it binds its key in the DAO with the proof its registration carried.
    proof = world.registration("b")["proof"]
    dao.register(Signer(b.key.did_key(), b.key), b.did, "provider", t + 1, proof=proof)
    pid = dao.propose(
        Signer(b.did, b.key),
        "dispute",
        "b contests inv-c-1-0",
        t + 2,
        body="windows 10 and 30 were a network partition at the probers",
        effect={"subject": "inv-c-1-0", "claimant": b.did, "respondent": world.operator.did},
    )
    assert (dao.state.proposals[pid].type, dao.state.proposals[pid].author) == ("dispute", b.did)
    members = [Signer(key_for(n).did_key(), key_for(n)) for n in (201, 202, 203)]
    for s in members[:2]:
        dao.vote(s, pid, {"choice": "yes"}, t + 3)
    assert dao.outcome(pid, t + 8 * 24 * HOUR).status == "passed"
    dao.execute(members[0], pid, t + 8 * 24 * HOUR)
    assert dao.state.rulings[pid]["subject"] == "inv-c-1-0"

    # A member who registers as a provider stays a member (no role is granted), and a
    # squatter still cannot register somebody's DID.
    alice, later = members[0], t + 9 * 24 * HOUR
    world.market.register_provider(_member_registration(alice, later), later)
    assert dao.state.roles[alice.did] == "person"
    with pytest.raises(IdentityProofError):
        squat = _member_registration(alice, later + 1, key=b.key)
        world.market.register_provider(squat, later + 1)


def _member_registration(
    who: Signer, now: int, *, key: PrivateKey | None = None
) -> dict[str, object]:
    signing = key or who.key
    return sign_doc(
        signing,
        {
            "$type": "registration",
            "provider": who.did,
            "market": MARKET_DID,
            "key": signing.did_key(),
            "services": ["hosting"],
            "regions": ["eu"],
            "capacity": {"hosting": {"accounts": 10}},
            "prices": {"hosting": {"account": 1}},
            "bond": 0,
            "endpoint": "https://member.example",
            "nonce": f"reg-{now}",
            "signed_ms": now,
        },
    )
