"""Market fixtures: event stores on every backend, keys, a test mandate and a small world
(operator, hosting providers, probers) built through the real market commands."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from plaza.atproto.crypto import PrivateKey
from plaza.atproto.plc import create_genesis
from plaza.atproto.plc.proof import proof_value
from plaza.dao import Mandate, parse_mandate
from plaza.dao.service import Dao
from plaza.ledger import EventStore, Ledger, MemoryEventStore, SqlEventStore
from plaza.market import Market, MarketParams, encode_series, sign_doc
from tests.conftest import _PG_MISSING, PG_URL

# 2023-11-14 22:13:20 UTC; an hour-aligned start keeps the arithmetic readable.
GENESIS = 1_700_000_000_000
WINDOW_S = 60
EPOCH_S = 6_000  # 100 windows of one minute
HOUR = 3_600_000

TEST_MANDATE = """
schema = 1
version = 1
title = "market test mandate"
currency = "EUR"

[limits]
max_provider_share_ppm = 400000
hhi_ceiling = 4000
concentration_min_accounts = 0

[budgets.infrastructure]
limit = 2000000
period = "30d"

[actions."rfb.create"]
class = "automatic"

[actions."contract.award"]
class = "optimistic"
window = "1h"
category = "infrastructure"
vote_above = 1000000

[actions."settlement.pay"]
class = "automatic"
category = "infrastructure"
cap = 500000

[actions."provider.suspend"]
class = "automatic"

[actions."provider.offboard"]
class = "vote"
proposal_type = "contract"

[actions."escrow.open"]
class = "automatic"

[actions."escrow.deposit"]
class = "automatic"

[actions."escrow.release"]
class = "automatic"

[actions."escrow.forfeit"]
class = "automatic"
"""


def market_mandate(**limits: Any) -> Mandate:
    """The test mandate, with any ``[limits]`` overridden."""
    mandate = parse_mandate(TEST_MANDATE)
    if not limits:
        return mandate
    return mandate.model_copy(update={"limits": mandate.limits.model_copy(update=limits)})


def key_for(n: int) -> PrivateKey:
    """A fixed test key (deterministic documents make failures reproducible)."""
    return PrivateKey.from_bytes("ES256K", bytes([n]) * 32)


def plc_identity(key: PrivateKey, name: str) -> tuple[str, dict[str, Any]]:
    """A real did:plc whose genesis lists ``key`` (as rotation and #atproto key), and its
    identity proof (the one-operation chain)."""
    did, genesis = create_genesis(
        key=key,
        rotation_keys=[key.did_key()],
        signing_key=key.did_key(),
        handle=f"{name}.test",
        pds_endpoint=f"https://{name}.example",
    )
    return did, proof_value([genesis])


StoreFactory = Callable[[], EventStore]


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """Opens connections to one fresh store on each backend (memory shares one object)."""
    opened: list[EventStore] = []
    if request.param == "memory":
        shared = MemoryEventStore()
        yield lambda: shared
        return
    if request.param == "sqlite":
        url = f"sqlite://{tmp_path / 'market.db'}"
    else:
        if _PG_MISSING:
            pytest.skip(_PG_MISSING)
        schema = f"t_{uuid.uuid4().hex[:12]}"
        url = f"{PG_URL}?schema={schema}"

    def factory() -> EventStore:
        s = SqlEventStore.open(url)
        opened.append(s)
        return s

    yield factory
    for s in opened:
        s.close()
    if request.param == "postgresql":
        import psycopg

        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@dataclass
class Party:
    """A provider or prober: its DID and key."""

    did: str
    key: PrivateKey

    def sign(self, doc: dict[str, Any]) -> dict[str, Any]:
        return sign_doc(self.key, doc)


@dataclass
class World:
    """A market with an operator and named parties, plus document builders."""

    market: Market
    operator: Party
    parties: dict[str, Party] = field(default_factory=dict)

    def party(self, name: str) -> Party:
        return self.parties[name]

    def register(
        self,
        name: str,
        n: int,
        *,
        services: tuple[str, ...] = ("hosting",),
        bond: int = 100_000,
        accounts: int = 1_000,
        now: int = GENESIS - 5 * HOUR,
        endpoint: str = "",
        receipt: bool = True,
    ) -> Party:
        """Register a party; with ``receipt``, also record that its bond was paid."""
        key = key_for(n)
        did, proof = plc_identity(key, name)
        party = Party(did, key)
        self.parties[name] = party
        capacity = {
            s: {"accounts": accounts, "gb": 1_000, "rps": 100} for s in services if s != "prober"
        }
        prices = {s: {"account": 5_000_000} for s in services if s != "prober"}
        doc = party.sign(
            {
                "$type": "registration",
                "provider": did,
                "market": self.market.operator_did,
                "key": key.did_key(),
                "services": list(services),
                "regions": ["eu"],
                "capacity": capacity,
                "prices": prices,
                "bond": bond,
                "endpoint": endpoint or f"https://{name}.example",
                "nonce": f"reg-{name}",
                "signed_ms": now,
                "proof": proof,
            }
        )
        self.market.register_provider(doc, now)
        if bond and receipt:
            self.market.receive_bond(did, bond, f"pay-{name}", now)
        return party

    def registration(self, name: str) -> dict[str, Any]:
        """The signed registration document of a registered party (from the ledger)."""
        for ev in self.market.ledger.read():
            if ev.type == "market.provider.registered":
                doc: dict[str, Any] = ev.payload["doc"]
                if doc["provider"] == self.party(name).did:
                    return doc
        raise KeyError(name)

    def bid(
        self,
        name: str,
        rfb: str,
        *,
        account: int,
        quantity: int = 600,
        bond: int = 50_000,
        expires: int = GENESIS,
        latency: int = 800,
        nonce: str | None = None,
        sign: bool = True,
    ) -> dict[str, Any]:
        party = self.party(name)
        doc = {
            "$type": "bid",
            "provider": party.did,
            "market": self.market.operator_did,
            "rfb": rfb,
            "quantity": quantity,
            "prices": {
                "account": account,
                "gb_hour": 1_000_000,
                "request": 500,
                "egress_gb": 2_000_000,
            },
            "sla": {
                "availability_ppm": 999_000,
                "latency_p95_ms": latency,
                "durability_ppm": 999_999,
            },
            "bond": bond,
            "expires_ms": expires,
            "nonce": nonce or f"bid-{name}-{rfb}-{account}",
        }
        return party.sign(doc) if sign else doc

    def usage(
        self, name: str, contract: str, epoch: int, usage: dict[str, int], *, observer: bool = False
    ) -> dict[str, Any]:
        party = self.party(name)
        doc: dict[str, Any] = {
            "$type": "observation" if observer else "usage",
            "observer" if observer else "provider": party.did,
            "market": self.market.operator_did,
            "contract": contract,
            "epoch": epoch,
            "usage": usage,
            "nonce": f"{'obs' if observer else 'use'}-{name}-{contract}-{epoch}",
        }
        return party.sign(doc)

    def probes(
        self,
        prober: str,
        epoch: int,
        series: dict[str, tuple[list[int], list[int]]],
        *,
        windows_from: int = 0,
    ) -> dict[str, Any]:
        """A probe document: ``series`` maps provider name -> (up flags, latencies)."""
        party = self.party(prober)
        first = epoch * (EPOCH_S // WINDOW_S) + windows_from
        return party.sign(
            {
                "$type": "probe",
                "prober": party.did,
                "market": self.market.operator_did,
                "series": [
                    encode_series(self.party(name).did, first, up, lat)
                    for name, (up, lat) in sorted(series.items())
                ],
                "nonce": f"probe-{prober}-{epoch}-{windows_from}",
            }
        )


MARKET_DID = key_for(200).did_key()
"""The DID of the test markets' operator: the market every test document is signed for."""


def make_world(
    store: EventStore, mandate: Mandate | None = None, *, operator: int = 200, **params: Any
) -> World:
    """A market run by the operator with key ``operator`` (another number, another market)."""
    operator_key = key_for(operator)
    operator = Party(operator_key.did_key(), operator_key)
    market = Market(
        Ledger(store),
        operator_did=operator.did,
        operator_key=operator_key,
        mandate=mandate or market_mandate(),
    )
    defaults: dict[str, Any] = {"genesis_ms": GENESIS, "epoch_s": EPOCH_S, "window_s": WINDOW_S}
    defaults.update(params)
    market.open(MarketParams(**defaults), GENESIS - 6 * HOUR)
    return World(market, operator)


def make_dao_world(store: EventStore, **params: Any) -> tuple[Dao, World]:
    """A DAO founded by three members with 10,000.00 in its treasury and the test mandate,
    and a market run by its agent on the same ledger."""
    from plaza.dao.constitution import default_constitution
    from plaza.ledger.keystore import Signer
    from plaza.market.dao_port import DaoLink

    operator_key = key_for(200)
    agent = Signer(operator_key.did_key(), operator_key)
    members = [Signer(key_for(n).did_key(), key_for(n)) for n in (201, 202, 203)]
    dao = Dao.init(
        store,
        members[0],
        constitution=default_constitution().model_copy(update={"agents": (agent.did,)}),
        mandate=market_mandate(),
        now=GENESIS - 10 * HOUR,
        cofounders=tuple(members[1:]),
        opening=1_000_000,
    )
    market = Market(dao.ledger, operator_did=agent.did, operator_key=agent.key,
                    dao=DaoLink(dao, agent))  # fmt: skip
    defaults: dict[str, Any] = {"genesis_ms": GENESIS, "epoch_s": EPOCH_S, "window_s": WINDOW_S}
    defaults.update(params)
    market.open(MarketParams(**defaults), GENESIS - 6 * HOUR)
    return dao, World(market, Party(agent.did, agent.key))


@pytest.fixture
def world(store_factory: StoreFactory) -> World:
    return make_world(store_factory())
