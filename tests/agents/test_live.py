"""The agents against live services: a directory and two PDSs on loopback, a DAO and a
market on a SQLite ledger. New members are placed on the PDS with free capacity; a
provider that keeps failing its SLA is offboarded by the members' vote, and the
migration reconciler drains its PDS — moving every account whose member opted in, with
the DAO agent's migration key, each repository verified — every step in the ledger."""

from __future__ import annotations

import hashlib
import secrets
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from plaza.agents.hosting import Hosting
from plaza.agents.runner import LiveAgent, SignUp, run_once
from plaza.agents.settlement import SettlementDesired
from plaza.atproto.crypto import PrivateKey
from plaza.dao.constitution import default_constitution
from plaza.dao.mandate import default_mandate
from plaza.dao.service import Dao
from plaza.ledger import SqlEventStore, verify_log
from plaza.ledger.keystore import Signer
from plaza.market import Market, MarketParams, encode_series, sign_doc
from plaza.market.dao_port import DaoLink
from plaza.services.directory import DirectorySettings
from plaza.services.directory import create_app as create_directory
from plaza.services.pds import PdsSettings, create_app
from plaza.services.pds.mail import read_token
from plaza.services.runner import ServedApp, ServerThread

T0 = 1_800_000_000_000
EPOCH_S, WINDOW_S = 600, 60
W = EPOCH_S // WINDOW_S
GENESIS = T0 + 3_600_000
E = EPOCH_S * 1000


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _signer(name: str) -> Signer:
    key = PrivateKey.from_bytes("ES256K", hashlib.sha256(f"live-{name}".encode()).digest())
    return Signer(key.did_key(), key)


@dataclass
class Net:
    directory: str
    pds: list[str]
    mail: list[Path]


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    root = tmp_path_factory.mktemp("live")
    dport, p1, p2 = _port(), _port(), _port()
    directory = f"http://127.0.0.1:{dport}"
    dirs = [root / "pds1", root / "pds2"]
    apps = [
        ServedApp("directory", create_directory(DirectorySettings.for_data_dir(root)), port=dport),
        *(
            ServedApp(
                f"pds{i + 1}",
                create_app(
                    PdsSettings(
                        data_dir=dirs[i],
                        public_url=f"http://127.0.0.1:{port}",
                        directory_url=directory,
                        admin_password="admin-" + secrets.token_hex(8),
                    )
                ),
                port=port,
            )
            for i, port in enumerate((p1, p2))
        ),
    ]
    with ServerThread(apps) as urls:
        yield Net(urls[0], urls[1:], [d / "mail" for d in dirs])


AGENT = _signer("ops")
MEMBERS = [_signer(n) for n in ("alice", "bob", "carol")]
PARTIES = {n: _signer(n) for n in ("acme", "beta", "probe1", "probe2", "probe3")}


def _market(tmp: Path, net: Net) -> tuple[Dao, Market]:
    """A DAO under the shipped default mandate and its market, on a SQLite ledger;
    acme hosts on the first PDS and beta on the second, each under contract."""
    store = SqlEventStore.open(f"sqlite://{tmp / 'ledger.db'}")
    dao = Dao.init(
        store,
        MEMBERS[0],
        constitution=default_constitution().model_copy(update={"agents": (AGENT.did,)}),
        mandate=default_mandate(),
        now=T0,
        cofounders=tuple(MEMBERS[1:]),
        opening=1_000_000,
    )
    m = Market(dao.ledger, operator_did=AGENT.did, operator_key=AGENT.key, dao=DaoLink(dao, AGENT))
    m.open(
        MarketParams(
            genesis_ms=GENESIS, epoch_s=EPOCH_S, window_s=WINDOW_S, suspend_after=1,
            offboard_after=2,
        ),
        T0 + 1,
    )  # fmt: skip
    t = T0 + 2
    for name, endpoint in (("acme", net.pds[0]), ("beta", net.pds[1])):
        s = PARTIES[name]
        m.register_provider(
            sign_doc(s.key, {
                "$type": "registration", "provider": s.did, "market": m.operator_did,
                "key": s.key.did_key(),
                "services": ["hosting"], "regions": ["eu"],
                "capacity": {"hosting": {"accounts": 100}},
                "prices": {"hosting": {"account": 1_000_000}}, "bond": 10_000,
                "endpoint": endpoint, "nonce": f"reg-{name}", "signed_ms": t,
            }),
            t,
        )  # fmt: skip
        m.receive_bond(s.did, 10_000, f"bond-{name}", t)
    for name in ("probe1", "probe2", "probe3"):
        s = PARTIES[name]
        m.register_provider(
            sign_doc(s.key, {
                "$type": "registration", "provider": s.did, "market": m.operator_did,
                "key": s.key.did_key(),
                "services": ["prober"], "regions": ["eu"], "capacity": {}, "prices": {},
                "bond": 0, "endpoint": f"https://{name}.example", "nonce": f"reg-{name}",
                "signed_ms": t,
            }),
            t,
        )  # fmt: skip
    rfb = m.create_rfb(
        {
            "service": "hosting", "quantity": 20, "region": "eu", "start_ms": GENESIS,
            "term_s": 30 * 86_400, "max_prices": {"account": 2_000_000},
            "deadline_ms": GENESIS, "max_bids": 2,
        },
        t + 1,
    )  # fmt: skip
    for name in ("acme", "beta"):
        s = PARTIES[name]
        m.submit_bid(
            sign_doc(s.key, {
                "$type": "bid", "provider": s.did, "market": m.operator_did, "rfb": rfb.id,
                "quantity": 10,
                "prices": {"account": 1_000_000},
                "sla": {"availability_ppm": 999_000, "latency_p95_ms": 500},
                "bond": 0, "expires_ms": GENESIS, "nonce": f"bid-{name}",
            }),
            t + 2,
        )  # fmt: skip
    _, contracts = m.award(rfb.id, t + 3)
    for c in contracts:
        s = next(p for p in PARTIES.values() if p.did == c.provider)
        m.sign_contract(
            sign_doc(s.key, {"$type": "terms", "provider": s.did, "market": m.operator_did,
                             "contract": c.id,
                             "terms_digest": c.terms_digest(), "nonce": f"t-{c.id}"}),
            t + 4,
        )  # fmt: skip
        assert m.approve_contract(c.id, t + 4).status == "active"
    return dao, m


def _evidence(m: Market, epoch: int, acme_down: range) -> None:
    """Three probers' samples (acme down in ``acme_down``) and both providers' usage."""
    t = GENESIS + (epoch + 1) * E + 1_000
    for name in ("probe1", "probe2", "probe3"):
        s = PARTIES[name]
        series = [
            encode_series(
                PARTIES["acme"].did, epoch * W, [0 if w in acme_down else 1 for w in range(W)],
                [80] * W,
            ),
            encode_series(PARTIES["beta"].did, epoch * W, [1] * W, [90] * W),
        ]  # fmt: skip
        m.report_probes(
            sign_doc(s.key, {"$type": "probe", "prober": s.did, "market": m.operator_did,
                             "series": series,
                             "nonce": f"p-{name}-{epoch}"}),
            t,
        )  # fmt: skip
    for c in m.state.contracts.values():
        s = next(p for p in PARTIES.values() if p.did == c.provider)
        m.report_usage(
            sign_doc(s.key, {"$type": "usage", "provider": s.did, "market": m.operator_did,
                             "contract": c.id,
                             "epoch": epoch, "usage": {"account": 2},
                             "nonce": f"u-{c.id}-{epoch}"}),
            t,
        )  # fmt: skip


def _opt_in(pds: str, mail: Path, acct: dict[str, str], directory: str) -> None:
    """The member lists the DAO agent's migration key among their rotation keys, through
    their own PDS (the confirmation token arrives by 'email': the PDS's outbox)."""
    token = httpx.post(
        f"{pds}/xrpc/com.atproto.server.createSession",
        json={"identifier": acct["did"], "password": acct["password"]},
    ).json()["accessJwt"]
    auth = {"authorization": f"Bearer {token}"}
    r = httpx.post(f"{pds}/xrpc/com.atproto.identity.requestPlcOperationSignature", headers=auth)
    assert r.status_code == 200, r.text
    code = read_token(mail, acct["did"], "plc_operation")
    assert code
    data = httpx.get(f"{directory}/{acct['did']}/data").json()
    signed = httpx.post(
        f"{pds}/xrpc/com.atproto.identity.signPlcOperation",
        headers=auth,
        json={"token": code, "rotationKeys": [*data["rotationKeys"], AGENT.key.did_key()]},
    )
    assert signed.status_code == 200, signed.text
    submitted = httpx.post(
        f"{pds}/xrpc/com.atproto.identity.submitPlcOperation",
        headers=auth,
        json={"operation": signed.json()["operation"]},
    )
    assert submitted.status_code == 200, submitted.text


def _post(pds: str, acct: dict[str, str], text: str) -> None:
    token = httpx.post(
        f"{pds}/xrpc/com.atproto.server.createSession",
        json={"identifier": acct["did"], "password": acct["password"]},
    ).json()["accessJwt"]
    r = httpx.post(
        f"{pds}/xrpc/com.atproto.repo.createRecord",
        headers={"authorization": f"Bearer {token}"},
        json={
            "repo": acct["did"],
            "collection": "app.bsky.feed.post",
            "record": {
                "$type": "app.bsky.feed.post",
                "text": text,
                "createdAt": "2027-01-01T00:00:00.000Z",
            },
        },
    )
    assert r.status_code == 200, r.text


def _records(pds: str, did: str) -> list[Any]:
    r = httpx.get(
        f"{pds}/xrpc/com.atproto.repo.listRecords",
        params={"repo": did, "collection": "app.bsky.feed.post"},
    )
    assert r.status_code == 200, r.text
    return list(r.json()["records"])


def _agent_actions(m: Market) -> list[dict[str, Any]]:
    return [ev.payload for ev in m.ledger.read() if ev.type == "agent.action"]


def test_agents_place_then_drain_an_offboarded_provider(net: Net, tmp_path: Path) -> None:
    dao, m = _market(tmp_path, net)
    hosting = Hosting(net.directory)
    suffix = secrets.token_hex(3)
    signups = [
        SignUp(
            f"m{i}-{suffix}.test", f"m{i}-{suffix}@example.com", f"pw-{i}-{secrets.token_hex(6)}"
        )
        for i in range(4)
    ]
    passwords = {s.handle: s.password for s in signups}
    agent = LiveAgent(
        market=m,
        signer=AGENT,
        hosting=hosting,
        migration_key=AGENT.key,
        signups=list(signups),
        settle=SettlementDesired(evidence_grace_s=60),
    )

    # 1. Placement: four sign-ups go to the two contracted PDSs by free capacity.
    records = run_once(agent, GENESIS + 1_000)
    placed = [r for r in records if r.action.kind == "placement.assign"]
    # The loop puts each destination's share to the guard on its own.
    assert placed and all(r.outcome == "executed" and r.verdict == "allow" for r in placed)
    assert sum(int(r.action["accounts"]) for r in placed) == 4
    assert agent.signups == []
    on = [hosting.accounts(p) for p in net.pds]
    assert [len(x) for x in on] == [2, 2]
    accounts = {}
    for pds, dids in zip(net.pds, on, strict=True):
        for did in dids:
            handle = hosting.did_data(did)["alsoKnownAs"][0].removeprefix("at://")
            accounts[did] = {"did": did, "password": passwords[handle], "pds": pds}
    acme_dids = sorted(on[0])
    for did in acme_dids:
        _post(net.pds[0], accounts[did], f"hello from {did}")
        _post(net.pds[0], accounts[did], "a second post")
    # One of acme's two members opts in to agent migration; the other does not.
    mover, stayer = acme_dids
    _opt_in(net.pds[0], net.mail[0], accounts[mover], net.directory)
    keys_before = hosting.did_data(mover)["rotationKeys"]
    assert keys_before[-1] == AGENT.key.did_key()
    before = {d: _records(net.pds[0], d) for d in acme_dids}
    root_before = hosting._get(net.pds[0], "com.atproto.sync.getLatestCommit", did=mover).json()

    # 2. acme fails its SLA: epoch 0 (suspension: optimistic, a DAO motion members veto).
    _evidence(m, 0, range(0, 5))
    records = run_once(agent, GENESIS + E + 61_000)
    kinds = {(r.action.kind, r.outcome) for r in records}
    assert ("settlement.settle", "executed") in kinds
    [suspend] = [r for r in records if r.action.kind == "provider.suspend"]
    assert suspend.outcome == "proposed" and suspend.proposal is not None
    motion = int(suspend.proposal.ref.split(":")[1])
    dao.veto(MEMBERS[1], motion, GENESIS + E + 120_000)  # bob objects
    assert dao.state.motions[motion].status == "escalated"

    # 3. Epoch 1 fails too: offboarding needs the members' vote.
    _evidence(m, 1, range(0, 6))
    records = run_once(agent, GENESIS + 2 * E + 61_000)
    [offboard] = [r for r in records if r.action.kind == "provider.offboard"]
    assert (offboard.outcome, offboard.verdict) == ("proposed", "vote")
    assert offboard.proposal is not None
    pid = int(offboard.proposal.ref.split(":")[1])
    # Asked again before the vote, the agents do not file a second proposal.
    again = run_once(agent, GENESIS + 2 * E + 62_000)
    assert not [r for r in again if r.action.kind == "provider.offboard"]
    for member in MEMBERS[:2]:
        dao.vote(member, pid, {"choice": "yes"}, GENESIS + 2 * E + 70_000)

    # 4. The next pass carries out the vote; the market raises the migration need; the
    #    migration reconciler drains acme's PDS of the account it may move.
    records = run_once(agent, GENESIS + 2 * E + 90_000)
    [off] = [r for r in records if r.action.kind == "provider.offboard"]
    assert off.outcome == "executed" and off.verdict == f"proposal:{pid}"
    assert m.state.providers[PARTIES["acme"].did].status == "offboarded"
    assert any(n.kind == "migration" and n.provider == PARTIES["acme"].did for n in m.state.needs)
    [batch] = [r for r in records if r.action.kind == "migration.batch"]
    assert batch.outcome == "executed", batch.detail
    assert batch.action.reason.rule == "migration.drain-leaving-host"
    assert mover in batch.detail and "root" in batch.detail

    # The moved account: the directory names the second PDS, which serves the same
    # records under the same MST root; the member who did not opt in was not touched.
    data = hosting.did_data(mover)
    assert data["services"]["atproto_pds"]["endpoint"] == net.pds[1]
    # acme's rotation key (it signed the DID's genesis) is gone; the agent's key stays,
    # the second PDS's key follows it.
    assert data["rotationKeys"][0] == AGENT.key.did_key()
    assert keys_before[0] not in data["rotationKeys"] and len(data["rotationKeys"]) == 2
    assert _records(net.pds[1], mover) == before[mover]
    after = hosting._get(net.pds[1], "com.atproto.sync.getLatestCommit", did=mover).json()
    assert after["rev"] > root_before["rev"]
    assert hosting.did_data(stayer)["services"]["atproto_pds"]["endpoint"] == net.pds[0]
    assert _records(net.pds[0], stayer) == before[stayer]
    assert mover in hosting.accounts(net.pds[1])

    # New members now all go to the PDS that still has a contract and room.
    agent.signups[:] = [
        SignUp(f"late{i}-{suffix}.test", f"late{i}-{suffix}@example.com", f"pw-{i}-late-x")
        for i in range(2)
    ]
    records = run_once(agent, GENESIS + 2 * E + 100_000)
    late = [r for r in records if r.action.kind == "placement.assign"]
    assert all(r.outcome == "executed" for r in late)
    assert sum(int(r.action["accounts"]) for r in late) == 2
    assert len(hosting.accounts(net.pds[1])) == 2 + 1 + 2

    # 5. Every action is in the ledger with its verdict and reason; the ledger verifies.
    logged = _agent_actions(m)
    assert {(a["action"]["kind"], a["outcome"]) for a in logged} >= {
        ("placement.assign", "executed"),
        ("settlement.pay", "executed"),
        ("settlement.settle", "executed"),
        ("provider.suspend", "proposed"),
        ("provider.offboard", "proposed"),
        ("provider.offboard", "executed"),
        ("migration.batch", "executed"),
    }
    drains = [a for a in logged if a["action"]["kind"] == "migration.batch"]
    assert all(a["reason"]["rule"] == "migration.drain-leaving-host" for a in drains)
    assert not [
        a
        for a in logged
        if a["action"]["kind"] == "provider.suspend" and a["outcome"] == "executed"
    ]
    report = verify_log(m.ledger.store.read_raw())
    assert report.ok, report.problem
