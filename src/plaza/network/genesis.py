"""Genesis of a local network: the DAO, its market and the providers it contracts.

The first ``plaza up`` on an empty data directory runs :func:`genesis` before it starts
any service. It

1. makes the keys: the founders ``alice``, ``bob`` and ``carol`` and the DAO's agent
   ``ops`` in the governance keystore, each hosting provider's ``provider`` identity in
   its own keystore (``D/providerN``) and each prober's ``prober`` identity in its own
   (``D/proberN``); keys that exist are kept;
2. founds the DAO: the default constitution naming ``ops`` as its agent, the local
   mandate (:data:`LOCAL_MANDATE`, copied to ``D/gov/mandate.toml`` for people to read);
3. opens the market, operated by ``ops``, with the network's :class:`Timings` (its
   epoch and probe window);
4. registers every hosting provider under its own DID with its PDS as endpoint, and
   records each one's bond;
5. runs one hosting request for bids: the first :data:`CONTRACTED` providers bid, the
   market awards, each provider signs its contract and the DAO approves it; the others
   stand by, registered and bonded, without a contract;
6. registers the probers (service ``prober``);
7. when the network runs a labeler (``labeler``, its URL): makes the labeler's identity
   in ``D/labeler`` — its label and rotation keys and the genesis operation that fixes
   its ``did:plc`` (the labeler submits it to the directory when it starts) — and its
   market identity (``provider`` in ``D/labeler/keys.json``), registers that as a
   provider of the service ``labeler`` with the labeler's URL as endpoint, bonded, and
   contracts it as the network's labeler: a request for bids for every account the
   contracted hosts hold, its one bid awarded, signed and approved like hosting.

Every step is an ordinary market or DAO command recorded on the ledger, exactly as the
agents and the providers record them later. On SQLite the ledger is built in a
temporary file that replaces ``ledger.db`` once genesis is complete, so an interrupted
genesis leaves nothing half done; it runs again on the next start. Genesis is skipped
when the ledger already holds the DAO.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Final

from plaza.dao.constitution import default_constitution
from plaza.dao.mandate import parse_mandate
from plaza.dao.service import Dao
from plaza.db import is_postgres_url
from plaza.errors import InvalidInputError
from plaza.ledger import SqlEventStore
from plaza.ledger.keystore import Keystore, Signer
from plaza.market import Market, MarketParams, sign_doc
from plaza.market.dao_port import DaoLink
from plaza.moderation.identity import labeler_did, load_keys
from plaza.network.layout import (
    AGENT,
    CONTRACTED,
    FOUNDERS,
    PROBER,
    PROBERS,
    PROVIDER,
    Layout,
    Timings,
)

REGION: Final = "local"
HOSTED_ACCOUNTS: Final = 50
"""Accounts each contracted host holds capacity for."""
ACCOUNT_PRICE: Final = 10_000
"""Each provider's price: a hundredth of a cent per account and epoch (in millionths of
a minor unit), so a contract's whole term stays within what the local mandate lets the
agents award without a vote."""
MAX_ACCOUNT_PRICE: Final = 20_000
MAX_ACCOUNT_PRICE_UNITS: Final = "0.0002"
""":data:`MAX_ACCOUNT_PRICE` in EUR: the most the agents offer for capacity they buy."""
BOND: Final = 10_000
OPENING_BALANCE: Final = 1_000_000
"""The treasury's opening balance in minor units (10,000.00 EUR)."""
LABELER_ACCOUNT_PRICE: Final = 1_000
"""The labeler's price: a thousandth of a cent per account moderated and epoch."""
MAX_LABELER_ACCOUNT_PRICE: Final = 2_000
LABELER_CAPACITY: Final = 4 * HOSTED_ACCOUNTS
"""Accounts the labeler registers capacity to moderate: four hosts' worth."""
LABELER_HANDLE: Final = "labeler.plaza.test"
TERM_S: Final = 7 * 86_400
START_DELAY_MS: Final = 5_000
"""The market's clock starts this long after genesis; the first contracts start then."""


def local_mandate_text() -> str:
    """The local network's mandate (``plaza/network/local_mandate.toml``)."""
    return resources.files("plaza.network").joinpath("local_mandate.toml").read_text("utf-8")


@dataclass(frozen=True)
class Founded:
    """What genesis found or made: the agent's DID, each host's provider DID (host1
    first) and which of them hold a contract; ``created``: genesis ran now; ``labeler``:
    the labeler's ``did:plc`` and ``labeler_provider`` its market identity (None without
    a labeler)."""

    agent: str
    hosts: tuple[str, ...]
    contracted: tuple[str, ...]
    created: bool
    labeler: str | None = None
    labeler_provider: str | None = None


def labeler_identity(layout: Layout, endpoint: str) -> str:
    """The labeler's ``did:plc``, its keys and genesis operation made in ``D/labeler``
    unless they exist (see step 7 of the module docstring)."""
    keys = load_keys(layout.labeler)
    return labeler_did(layout.labeler, keys, endpoint, LABELER_HANDLE)


def _identity(keystore: Keystore, name: str) -> Signer:
    return keystore.get(name) if keystore.has(name) else keystore.create(name)


def ledger_url(layout: Layout, db: str | None) -> str:
    """The ledger's database URL: ``db`` (PostgreSQL) or SQLite in the governance dir."""
    return db if db else f"sqlite://{layout.ledger}"


def genesis(
    layout: Layout,
    endpoints: Sequence[str],
    timings: Timings,
    *,
    now_ms: int,
    probers: int = PROBERS,
    db: str | None = None,
    contracted: int = CONTRACTED,
    labeler: str | None = None,
) -> Founded:
    """Found the network under ``layout`` (see the module docstring) unless its ledger
    already holds the DAO. ``endpoints``: host1.. hostN's PDS URLs; the first
    ``contracted`` get a contract; ``labeler``: the labeler's URL, when it runs."""
    if not 0 < contracted <= len(endpoints):
        raise InvalidInputError(f"cannot contract {contracted} of {len(endpoints)} hosts")
    if db is not None and not is_postgres_url(db):
        raise InvalidInputError(f"--postgres takes a postgresql:// URL, not {db!r}")
    gov = Keystore(layout.keys)
    agent = _identity(gov, AGENT)
    founders = [_identity(gov, name) for name in FOUNDERS]
    hosts = [_identity(Keystore(layout.provider(n) / "keys.json"), PROVIDER) for n in
             range(1, len(endpoints) + 1)]  # fmt: skip
    watchers = [_identity(Keystore(layout.prober(n) / "keys.json"), PROBER) for n in
                range(1, probers + 1)]  # fmt: skip
    lab_did = labeler_identity(layout, labeler) if labeler is not None else None
    lab = (
        _identity(Keystore(layout.labeler / "keys.json"), PROVIDER) if labeler is not None else None
    )
    mandate_text = local_mandate_text()
    layout.gov.mkdir(parents=True, exist_ok=True)
    if not layout.mandate.exists():
        layout.mandate.write_text(mandate_text, encoding="utf-8")
    url = ledger_url(layout, db)
    store = SqlEventStore.open(url)
    try:
        dao = Dao(store)
        if dao.state.initialized:
            m = _market(dao, agent)
            held = {c.provider for c in m.state.contracts.values() if c.service == "hosting"}
            return Founded(
                agent.did,
                tuple(h.did for h in hosts),
                tuple(h.did for h in hosts if h.did in held),
                created=False,
                labeler=lab_did,
                labeler_provider=lab.did if lab is not None else None,
            )
    finally:
        store.close()
    building = url
    if db is None:
        tmp = layout.gov / "genesis.db"
        for leftover in (tmp, tmp.with_name("genesis.db-wal"), tmp.with_name("genesis.db-shm")):
            leftover.unlink(missing_ok=True)
        building = f"sqlite://{tmp}"
    store = SqlEventStore.open(building)
    try:
        dao = Dao.init(
            store,
            founders[0],
            constitution=default_constitution().model_copy(update={"agents": (agent.did,)}),
            mandate=parse_mandate(mandate_text),
            now=now_ms,
            cofounders=tuple(founders[1:]),
            opening=OPENING_BALANCE,
        )
        m = _market(dao, agent)
        _found_market(
            m,
            hosts=hosts,
            endpoints=endpoints,
            probers=watchers,
            timings=timings,
            now_ms=now_ms,
            contracted=contracted,
            labeler=(lab, labeler) if lab is not None and labeler is not None else None,
        )
    finally:
        store.close()
    if db is None:
        _replace(layout.gov / "genesis.db", layout.ledger)
    return Founded(
        agent.did,
        tuple(h.did for h in hosts),
        tuple(h.did for h in hosts[:contracted]),
        created=True,
        labeler=lab_did,
        labeler_provider=lab.did if lab is not None else None,
    )


def _market(dao: Dao, agent: Signer) -> Market:
    return Market(dao.ledger, operator_did=agent.did, operator_key=agent.key,
                  dao=DaoLink(dao, agent))  # fmt: skip


def _replace(built: Path, ledger: Path) -> None:
    """Put the finished genesis ledger in place (its WAL already folded in on close)."""
    for suffix in ("-wal", "-shm"):
        Path(f"{ledger}{suffix}").unlink(missing_ok=True)
    os.replace(built, ledger)
    for suffix in ("-wal", "-shm"):
        side = Path(f"{built}{suffix}")
        if side.exists():
            shutil.move(side, Path(f"{ledger}{suffix}"))


def _registration(
    m: Market, s: Signer, endpoint: str, services: list[str], *, t: int, nonce: str
) -> dict[str, Any]:
    priced = {
        "hosting": (HOSTED_ACCOUNTS, ACCOUNT_PRICE),
        "labeler": (LABELER_CAPACITY, LABELER_ACCOUNT_PRICE),
    }
    sold = [svc for svc in services if svc in priced]
    return sign_doc(s.key, {
        "$type": "registration", "provider": s.did, "market": m.operator_did,
        "key": s.key.did_key(), "services": services, "regions": [REGION],
        "capacity": {svc: {"accounts": priced[svc][0]} for svc in sold},
        "prices": {svc: {"account": priced[svc][1]} for svc in sold},
        "bond": BOND if sold else 0, "endpoint": endpoint, "nonce": nonce, "signed_ms": t,
    })  # fmt: skip


def _found_market(
    m: Market,
    *,
    hosts: list[Signer],
    endpoints: Sequence[str],
    probers: list[Signer],
    timings: Timings,
    now_ms: int,
    contracted: int,
    labeler: tuple[Signer, str] | None = None,
) -> None:
    start = now_ms + START_DELAY_MS
    m.open(MarketParams(genesis_ms=start, epoch_s=timings.epoch_s, window_s=timings.probe_s),
           now_ms)  # fmt: skip
    t = now_ms + 1
    for n, (s, endpoint) in enumerate(zip(hosts, endpoints, strict=True), 1):
        m.register_provider(
            _registration(m, s, endpoint, ["hosting"], t=t, nonce=f"genesis-host{n}"), t
        )
        m.receive_bond(s.did, BOND, f"genesis-bond-host{n}", t)
    for n, s in enumerate(probers, 1):
        where = f"https://prober{n}.local.invalid"
        m.register_provider(
            _registration(m, s, where, ["prober"], t=t, nonce=f"genesis-prober{n}"), t
        )
    rfb = m.create_rfb(
        {
            "service": "hosting", "quantity": contracted * HOSTED_ACCOUNTS, "region": REGION,
            "start_ms": start, "term_s": TERM_S, "max_prices": {"account": MAX_ACCOUNT_PRICE},
            "deadline_ms": start, "max_bids": contracted,
        },
        t + 1,
    )  # fmt: skip
    for n, s in enumerate(hosts[:contracted], 1):
        m.submit_bid(
            sign_doc(s.key, {
                "$type": "bid", "provider": s.did, "market": m.operator_did, "rfb": rfb.id,
                "quantity": HOSTED_ACCOUNTS, "prices": {"account": ACCOUNT_PRICE},
                "sla": {"availability_ppm": 999_000, "latency_p95_ms": 500},
                "bond": 0, "expires_ms": start, "nonce": f"genesis-bid-host{n}",
            }),
            t + 2,
        )  # fmt: skip
    _, awarded = m.award(rfb.id, t + 3)
    for c in awarded:
        s = next(h for h in hosts if h.did == c.provider)
        m.sign_contract(
            sign_doc(s.key, {"$type": "terms", "provider": s.did, "market": m.operator_did,
                             "contract": c.id, "terms_digest": c.terms_digest(),
                             "nonce": f"genesis-terms-{c.id}"}),
            t + 4,
        )  # fmt: skip
        _approve(m, c.id, t + 4)
    if labeler is not None:
        _contract_labeler(m, *labeler, quantity=contracted * HOSTED_ACCOUNTS, start=start,
                          t=t + 5)  # fmt: skip


def _approve(m: Market, contract: str, t: int) -> None:
    approved = m.approve_contract(contract, t)
    if approved.status != "active":
        raise InvalidInputError(f"genesis: contract {contract} is {approved.status}, not active")


_LABELER_SLA: Final = {"availability_ppm": 990_000, "latency_p95_ms": 1_000}
"""What the probers hold the labeler to: 99% of windows up, and its label queries'
95th percentile latency within a second."""


def _contract_labeler(m: Market, s: Signer, endpoint: str, *, quantity: int, start: int,
                      t: int) -> None:  # fmt: skip
    """Step 7: register, bond and contract the labeler for ``quantity`` accounts."""
    m.register_provider(_registration(m, s, endpoint, ["labeler"], t=t, nonce="genesis-labeler"),
                        t)  # fmt: skip
    m.receive_bond(s.did, BOND, "genesis-bond-labeler", t)
    rfb = m.create_rfb(
        {
            "service": "labeler", "quantity": quantity, "region": REGION, "start_ms": start,
            "term_s": TERM_S, "max_prices": {"account": MAX_LABELER_ACCOUNT_PRICE},
            "deadline_ms": start, "max_bids": 1, "sla": _LABELER_SLA,
        },
        t + 1,
    )  # fmt: skip
    m.submit_bid(
        sign_doc(s.key, {
            "$type": "bid", "provider": s.did, "market": m.operator_did, "rfb": rfb.id,
            "quantity": quantity, "prices": {"account": LABELER_ACCOUNT_PRICE},
            "sla": _LABELER_SLA, "bond": 0, "expires_ms": start, "nonce": "genesis-bid-labeler",
        }),
        t + 2,
    )  # fmt: skip
    _, awarded = m.award(rfb.id, t + 3)
    for c in awarded:
        m.sign_contract(
            sign_doc(s.key, {"$type": "terms", "provider": s.did, "market": m.operator_did,
                             "contract": c.id, "terms_digest": c.terms_digest(),
                             "nonce": f"genesis-terms-{c.id}"}),
            t + 4,
        )  # fmt: skip
        _approve(m, c.id, t + 4)
