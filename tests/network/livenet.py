"""A small live network for the network tests: a directory and PDSs on loopback (each
with its admin password), and a DAO with its market on a SQLite ledger whose HTTP API
(`plaza serve market`'s app) listens on a socket with a clock the test moves."""

from __future__ import annotations

import hashlib
import secrets
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from plaza.dao.constitution import default_constitution
from plaza.dao.mandate import default_mandate
from plaza.dao.service import Dao
from plaza.ledger import SqlEventStore
from plaza.ledger.keystore import Signer
from plaza.market import Market, MarketParams, sign_doc
from plaza.market.api import MarketSettings
from plaza.market.api import create_app as create_market
from plaza.market.dao_port import DaoLink
from plaza.services.directory import DirectorySettings
from plaza.services.directory import create_app as create_directory
from plaza.services.pds import PdsSettings
from plaza.services.pds import create_app as create_pds
from plaza.services.runner import ServedApp, ServerThread

T0 = 1_800_000_000_000
EPOCH_S, WINDOW_S = 600, 60
GENESIS = T0 + 3_600_000
E = EPOCH_S * 1000


def port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def signer(name: str) -> Signer:
    from plaza.atproto.crypto import PrivateKey

    key = PrivateKey.from_bytes("ES256K", hashlib.sha256(f"net-{name}".encode()).digest())
    return Signer(key.did_key(), key)


AGENT = signer("ops")
MEMBERS = [signer(n) for n in ("alice", "bob", "carol")]


@dataclass
class LiveNet:
    directory: str
    pds: list[str]
    passwords: list[str] = field(repr=False)
    market_url: str
    market: Market
    dao: Dao
    now: list[int]
    token: str = field(repr=False)


def _dao_market(path: Path) -> tuple[Dao, Market]:
    store = SqlEventStore.open(f"sqlite://{path}")
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
    m.open(MarketParams(genesis_ms=GENESIS, epoch_s=EPOCH_S, window_s=WINDOW_S), T0 + 1)
    return dao, m


def register(m: Market, who: Signer, endpoint: str, *, accounts: int, price: int, t: int) -> None:
    """A hosting provider registers (capacity ``accounts``, account price ``price``) and
    its bond of 100.00 is received."""
    m.register_provider(
        sign_doc(who.key, {
            "$type": "registration", "provider": who.did, "market": m.operator_did,
            "key": who.key.did_key(), "services": ["hosting"], "regions": ["eu"],
            "capacity": {"hosting": {"accounts": accounts}},
            "prices": {"hosting": {"account": price}}, "bond": 10_000,
            "endpoint": endpoint, "signed_ms": t,
        }),
        t,
    )  # fmt: skip
    m.receive_bond(who.did, 10_000, f"bond-{who.did[-8:]}", t)


def contract(m: Market, parties: list[tuple[Signer, int]], t: int) -> None:
    """One hosting request filled by ``parties`` (signer, accounts), signed and approved."""
    rfb = m.create_rfb(
        {
            "service": "hosting", "quantity": sum(q for _, q in parties), "region": "eu",
            "start_ms": GENESIS, "term_s": 30 * 86_400, "max_prices": {"account": 10_000_000},
            "deadline_ms": t + 10, "max_bids": len(parties),
        },
        t,
    )  # fmt: skip
    for who, quantity in parties:
        m.submit_bid(
            sign_doc(who.key, {
                "$type": "bid", "provider": who.did, "market": m.operator_did, "rfb": rfb.id,
                "quantity": quantity, "prices": {"account": 1_000_000},
                "sla": {"availability_ppm": 999_000, "latency_p95_ms": 1_000},
                "bond": 0, "expires_ms": GENESIS + E,
            }),
            t + 1,
        )  # fmt: skip
    _, contracts = m.award(rfb.id, t + 2)
    for c in contracts:
        who = next(w for w, _ in parties if w.did == c.provider)
        m.sign_contract(
            sign_doc(who.key, {"$type": "terms", "provider": who.did, "market": m.operator_did,
                               "contract": c.id, "terms_digest": c.terms_digest()}),
            t + 3,
        )  # fmt: skip
        assert m.approve_contract(c.id, t + 3).status == "active"


@contextmanager
def live_net(root: Path, pds_count: int) -> Iterator[LiveNet]:
    """Serve a directory, ``pds_count`` PDSs and the market's API; the DAO and market
    start empty (open, no providers)."""
    dport, mport = port(), port()
    pports = [port() for _ in range(pds_count)]
    directory = f"http://127.0.0.1:{dport}"
    passwords = ["admin-" + secrets.token_hex(8) for _ in pports]
    dao, m = _dao_market(root / "ledger.db")
    now = [GENESIS - 600_000]
    token = secrets.token_hex(8)
    settings = MarketSettings(
        ledger_url="unused:",
        operator_did=AGENT.did,
        operator_key=AGENT.key,
        mandate=m.mandate,
        admin_token=token,
        clock=lambda: now[0],
    )
    apps = [
        ServedApp("directory", create_directory(DirectorySettings.for_data_dir(root)), port=dport),
        *(
            ServedApp(
                f"pds{i + 1}",
                create_pds(
                    PdsSettings(
                        data_dir=root / f"pds{i + 1}",
                        public_url=f"http://127.0.0.1:{p}",
                        directory_url=directory,
                        admin_password=passwords[i],
                    )
                ),
                port=p,
            )
            for i, p in enumerate(pports)
        ),
        ServedApp("market", create_market(settings, market=m), port=mport),
    ]
    with ServerThread(apps) as urls:
        yield LiveNet(urls[0], list(urls[1:-1]), passwords, urls[-1], m, dao, now, token)
