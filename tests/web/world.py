"""A small whole network for the web client's tests, on real sockets in one thread.

A directory, a PDS forwarding ``app.bsky.*`` to an app view that follows its firehose,
the DAO's HTTP API and the market's over one SQLite ledger (a DAO under the default
mandate with three members, two hosting providers under contract, accounts placed with
them by the agent, one settled epoch with its invoices, a majority proposal open for
votes, and an optimistic agent action inside its veto window), and the web client
pointed at all of them. Ledger time is fixed (``NOW``): the DAO API's clock and the web
client's both read it, so a signed vote lands inside the proposal's window.
"""

from __future__ import annotations

import hashlib
import secrets
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from plaza.atproto.crypto import Alg, PrivateKey
from plaza.dao.action import Action
from plaza.dao.api import ApiSettings
from plaza.dao.api import create_app as create_dao_api
from plaza.dao.constitution import default_constitution
from plaza.dao.mandate import default_mandate
from plaza.dao.service import Dao
from plaza.ledger import SqlEventStore
from plaza.ledger.keystore import Signer
from plaza.market import Market, MarketParams, encode_series, sign_doc
from plaza.market.api import MarketSettings
from plaza.market.api import create_app as create_market_api
from plaza.market.dao_port import DaoLink
from plaza.moderation.service import LabelerSettings
from plaza.moderation.service import create_app as create_labeler
from plaza.services.appview import AppviewSettings
from plaza.services.appview import create_app as create_appview
from plaza.services.directory import DirectorySettings
from plaza.services.directory import create_app as create_directory
from plaza.services.pds import PdsSettings, service_did_for
from plaza.services.pds import create_app as create_pds
from plaza.services.runner import ServedApp, ServerThread
from plaza.web import WebSettings
from plaza.web import create_app as create_web
from tests.moderation.conftest import trained

T0 = 1_800_000_000_000
EPOCH_S, WINDOW_S = 600, 60
W = EPOCH_S // WINDOW_S
GENESIS = T0 + 3_600_000
E = EPOCH_S * 1000
NOW = GENESIS + 2 * E  # ledger time while the tests run
DEADLINE_S = 30.0
LABELER_ADMIN = "labeler-admin-token-for-tests"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def secret_hex(name: str) -> str:
    """A party's signing key as the keystore holds it (hex): what a member pastes into
    the ballot form."""
    return hashlib.sha256(f"web-{name}".encode()).hexdigest()


P256 = {"bob"}  # a member with a P-256 key (WebCrypto signs it); the rest secp256k1


def signer(name: str) -> Signer:
    alg: Alg = "ES256" if name in P256 else "ES256K"
    key = PrivateKey.from_bytes(alg, bytes.fromhex(secret_hex(name)))
    return Signer(key.did_key(), key)


AGENT = signer("ops")
MEMBERS = [signer(n) for n in ("alice", "bob", "carol")]
PARTIES = {n: signer(n) for n in ("acme", "beta", "probe1", "probe2", "probe3")}


@dataclass
class World:
    directory: str
    pds: str
    appview: str
    dao: str
    market: str
    web: str
    labeler: str
    labeler_did: str
    pds_app: Any
    proposal: int = 0
    motion: int = 0
    accounts: dict[str, dict[str, str]] = field(default_factory=dict)

    def synced(self) -> None:
        """Return once the app view has indexed everything the PDS published."""
        want = self.pds_app.state.pds.sequencer.last_seq
        deadline = time.monotonic() + DEADLINE_S
        while True:
            health = httpx.get(f"{self.appview}/xrpc/_health", timeout=10).json()
            if all(s["seq"] >= want for s in health["sources"]):
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"app view stuck: {health}, PDS at {want}")
            time.sleep(0.02)  # polling another server: short, bounded by the deadline

    def reviews(self) -> list[dict[str, Any]]:
        """The moderation service's review queue (reports among them)."""
        r = httpx.get(
            f"{self.labeler}/xrpc/plaza.labeler.listReviews",
            headers={"authorization": f"Bearer {LABELER_ADMIN}"},
            timeout=10,
        )
        assert r.status_code == 200, r.text
        return list(r.json()["reviews"])

    def account(self, prefix: str) -> dict[str, str]:
        """A new account on the PDS: its did, handle, password and access token."""
        handle = f"{prefix}{secrets.token_hex(3)}.test"
        password = "pw-" + secrets.token_hex(8)
        r = httpx.post(
            f"{self.pds}/xrpc/com.atproto.server.createAccount",
            json={"handle": handle, "password": password, "email": f"{handle}@example.com"},
            timeout=30,
        )
        assert r.status_code == 200, r.text
        acct = {"did": r.json()["did"], "handle": handle, "password": password,
                "token": r.json()["accessJwt"]}  # fmt: skip
        self.accounts[handle] = acct
        return acct

    def post(self, acct: dict[str, str], text: str) -> dict[str, str]:
        r = httpx.post(
            f"{self.pds}/xrpc/com.atproto.repo.createRecord",
            headers={"authorization": f"Bearer {acct['token']}"},
            json={"repo": acct["did"], "collection": "app.bsky.feed.post",
                  "record": {"$type": "app.bsky.feed.post", "text": text,
                             "createdAt": "2026-12-01T00:00:00.000Z"}},
        )  # fmt: skip
        assert r.status_code == 200, r.text
        return dict(r.json())

    def records(self, did: str, collection: str) -> list[dict[str, Any]]:
        r = httpx.get(
            f"{self.pds}/xrpc/com.atproto.repo.listRecords",
            params={"repo": did, "collection": collection},
        )
        assert r.status_code == 200, r.text
        return list(r.json()["records"])


def _registration(m: Market, name: str, services: list[str], endpoint: str, t: int) -> None:
    s = PARTIES[name]
    hosting = services == ["hosting"]
    m.register_provider(
        sign_doc(s.key, {
            "$type": "registration", "provider": s.did, "market": m.operator_did,
            "key": s.key.did_key(), "services": services, "regions": ["eu"],
            "capacity": {"hosting": {"accounts": 100}} if hosting else {},
            "prices": {"hosting": {"account": 1_000_000}} if hosting else {},
            "bond": 10_000 if hosting else 0, "endpoint": endpoint,
            "nonce": f"reg-{name}", "signed_ms": t,
        }),
        t,
    )  # fmt: skip
    if hosting:
        m.receive_bond(s.did, 10_000, f"bond-{name}", t)


def governed_ledger(path: Path, pds: str) -> tuple[int, int]:
    """Fill the ledger at ``path`` (see the module docstring); the open proposal's id and
    the open motion's."""
    store = SqlEventStore.open(f"sqlite://{path}")
    dao = Dao.init(
        store, MEMBERS[0],
        constitution=default_constitution().model_copy(update={"agents": (AGENT.did,)}),
        mandate=default_mandate(), now=T0, cofounders=tuple(MEMBERS[1:]), opening=1_000_000,
    )  # fmt: skip
    m = Market(dao.ledger, operator_did=AGENT.did, operator_key=AGENT.key, dao=DaoLink(dao, AGENT))
    m.open(MarketParams(genesis_ms=GENESIS, epoch_s=EPOCH_S, window_s=WINDOW_S), T0 + 1)
    t = T0 + 2
    _registration(m, "acme", ["hosting"], pds, t)
    _registration(m, "beta", ["hosting"], "https://beta.example", t)
    for name in ("probe1", "probe2", "probe3"):
        _registration(m, name, ["prober"], f"https://{name}.example", t)
    rfb = m.create_rfb(
        {"service": "hosting", "quantity": 20, "region": "eu", "start_ms": GENESIS,
         "term_s": 30 * 86_400, "max_prices": {"account": 2_000_000},
         "deadline_ms": GENESIS, "max_bids": 2},
        t + 1,
    )  # fmt: skip
    for name in ("acme", "beta"):
        s = PARTIES[name]
        m.submit_bid(
            sign_doc(s.key, {
                "$type": "bid", "provider": s.did, "market": m.operator_did, "rfb": rfb.id,
                "quantity": 10, "prices": {"account": 1_000_000},
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
                             "contract": c.id, "terms_digest": c.terms_digest(),
                             "nonce": f"t-{c.id}"}),
            t + 4,
        )  # fmt: skip
        m.approve_contract(c.id, t + 4)
    for name, n in (("acme", 3), ("beta", 2)):
        action = Action("placement.assign", provider=PARTIES[name].did, accounts=n)
        dao.act(AGENT, action, f"free capacity at {name} in eu", GENESIS + 1)
    _evidence(m, 0, GENESIS + E + 1_000)
    m.settle(0, GENESIS + E + 61_000)
    pid = dao.propose(MEMBERS[0], "signal", "Which region next?", NOW - 60_000,
                      body="Acme kept its SLA <b>all</b> month.",
                      choices=("eu-north", "us-east", "<script>x</script>"))  # fmt: skip
    dao.propose(MEMBERS[1], "election", "Elect the moderation lead", NOW - 50_000,
                choices=("ana", "ben", "cy"))  # fmt: skip
    big = Action("capacity.procure", amount=50_000, category="capacity",
                 params={"service": "hosting", "quantity": 5})  # fmt: skip
    motion = dao.act(AGENT, big, "demand forecast: +40 accounts next week", NOW - 30_000).motion
    store.close()
    return pid, motion or 0


def _evidence(m: Market, epoch: int, t: int) -> None:
    for name in ("probe1", "probe2", "probe3"):
        s = PARTIES[name]
        series = [
            encode_series(PARTIES["acme"].did, epoch * W, [1] * W, [80] * W),
            encode_series(PARTIES["beta"].did, epoch * W, [0, 0] + [1] * (W - 2), [90] * W),
        ]
        m.report_probes(
            sign_doc(s.key, {"$type": "probe", "prober": s.did, "market": m.operator_did,
                             "series": series, "nonce": f"p-{name}-{epoch}"}),
            t,
        )  # fmt: skip
    for c in m.state.contracts.values():
        s = next(p for p in PARTIES.values() if p.did == c.provider)
        m.report_usage(
            sign_doc(s.key, {"$type": "usage", "provider": s.did, "market": m.operator_did,
                             "contract": c.id, "epoch": epoch, "usage": {"account": 2},
                             "nonce": f"u-{c.id}-{epoch}"}),
            t,
        )  # fmt: skip


def world(root: Path) -> Iterator[World]:
    """Start the network; yields it, stops it after."""
    dport, pport, aport, dao_port, mport, wport, lport = (free_port() for _ in range(7))
    directory = f"http://127.0.0.1:{dport}"
    pds_url, av_url = f"http://127.0.0.1:{pport}", f"http://127.0.0.1:{aport}"
    pds = create_pds(
        PdsSettings(data_dir=root / "pds", public_url=pds_url, directory_url=directory,
                    appview_url=av_url, appview_did=service_did_for(av_url),
                    proxy_allow_private=True)  # the moderation service is on loopback
    )  # fmt: skip
    lab_url = f"http://127.0.0.1:{lport}"
    labeler = create_labeler(
        LabelerSettings(data_dir=root / "labeler", public_url=lab_url, directory_url=directory,
                        classifier=trained(), relay_urls=(pds_url,), admin_token=LABELER_ADMIN)
    )  # fmt: skip
    labeler_did = labeler.state.labeler.did
    appview = create_appview(
        AppviewSettings(data_dir=root / "appview", public_url=av_url, directory_url=directory,
                        relay_urls=(pds_url,))
    )  # fmt: skip
    ledger = root / "ledger.db"
    pid, motion = governed_ledger(ledger, pds_url)
    clock = lambda: NOW  # noqa: E731
    dao_api = create_dao_api(ApiSettings(db_url=f"sqlite://{ledger}", clock=clock))
    market_api = create_market_api(
        MarketSettings(ledger_url=f"sqlite://{ledger}", operator_did=AGENT.did,
                       operator_key=None, mandate=default_mandate(), clock=clock)
    )  # fmt: skip
    # the web's clock stands still, so its sign-in burst is every sign-in of the package
    web = create_web(
        WebSettings(entryway=pds_url, appview=av_url, dao=f"http://127.0.0.1:{dao_port}",
                    market=f"http://127.0.0.1:{mport}", clock=lambda: NOW / 1000,
                    labeler=labeler_did, signin_burst=1000)
    )  # fmt: skip
    apps = [
        ServedApp("directory", create_directory(DirectorySettings.for_data_dir(root / "d")),
                  port=dport),
        ServedApp("pds", pds, port=pport),
        ServedApp("appview", appview, port=aport),
        ServedApp("dao", dao_api, port=dao_port),
        ServedApp("market", market_api, port=mport),
        ServedApp("web", web, port=wport),
        ServedApp("labeler", labeler, port=lport),
    ]  # fmt: skip
    with ServerThread(apps) as urls:
        yield World(*urls, labeler_did=labeler_did, pds_app=pds, proposal=pid, motion=motion)


def send_signed(c: httpx.Client, url: str, form: dict[str, str], key: PrivateKey) -> httpx.Response:
    """Post a DAO form as the page's script (``static/sign.js``) does: ask for the
    event's bytes, sign them with ``key`` here, send the signature; the final answer."""
    import base64

    signer_did = key.did_key()
    json_only = {"accept": "application/json"}
    prep = c.post(url, data={**form, "signer": signer_did, "sign_step": "prepare"},
                  headers=json_only)  # fmt: skip
    if prep.status_code != 200:
        return prep
    event = prep.json()
    sig = key.sign(base64.b64decode(event["signing"]))
    fields = {**form, "signer": signer_did, "sign_step": "submit", "seq": str(event["seq"]),
              "prev": event["prev"], "time": str(event["time"]),
              "sig": base64.b64encode(sig).decode()}  # fmt: skip
    return c.post(url, data=fields, headers=json_only)


def member_key(name: str) -> PrivateKey:
    return signer(name).key
