"""DAO fixtures: deterministic identities, a constitution naming them, a DAO on each backend."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import pytest

from plaza.atproto.crypto import PrivateKey
from plaza.dao.constitution import Constitution, default_constitution
from plaza.dao.mandate import default_mandate
from plaza.dao.service import Dao
from plaza.ledger import EventStore, MemoryEventStore
from plaza.ledger.keystore import Signer
from tests.ledger.conftest import backend, store  # noqa: F401 - re-exported fixtures

T0 = 1_700_000_000_000
HOUR = 3_600_000
DAY = 24 * HOUR


def signer(name: str, alg: str = "ES256K") -> Signer:
    """A deterministic identity named ``name`` (its did:key)."""
    secret = hashlib.sha256(name.encode()).digest()
    key = PrivateKey.from_bytes(alg, secret)  # type: ignore[arg-type]
    return Signer(key.did_key(), key)


@dataclass
class World:
    alice: Signer
    bob: Signer
    carol: Signer
    dave: Signer
    erin: Signer
    agent: Signer
    ledger_key: Signer
    constitution: Constitution


@pytest.fixture(scope="session")
def world() -> World:
    return make_world()


def make_world() -> World:
    """Five people, an agent and a ledger key, with a constitution that names the last two
    (and alice and bob as treasurers)."""
    agent = signer("agent")
    ledger_key = signer("ledger", "ES256")
    base = default_constitution()
    constitution = base.model_copy(
        update={
            "agents": (agent.did,),
            "treasurers": (signer("alice").did, signer("bob").did),
            "ledger_keys": (ledger_key.did_key,),
        }
    )
    return World(
        alice=signer("alice"),
        bob=signer("bob"),
        carol=signer("carol"),
        dave=signer("dave"),
        erin=signer("erin", "ES256"),
        agent=agent,
        ledger_key=ledger_key,
        constitution=constitution,
    )


def found(events: EventStore, world: World, opening: int = 1_000_000) -> Dao:
    """A DAO whose founders are alice, bob and carol, with an opening balance."""
    return Dao.init(
        events,
        world.alice,
        constitution=world.constitution,
        mandate=default_mandate(),
        now=T0,
        cofounders=(world.bob, world.carol),
        opening=opening,
    )


@pytest.fixture
def dao(world: World) -> Dao:
    return found(MemoryEventStore(), world)
