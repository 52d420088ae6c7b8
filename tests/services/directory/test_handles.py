"""The directory as the network's handle authority: one live DID per handle of its
domains, kept from the operations it accepts, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest

from plaza.atproto.plc import create_tombstone, create_update
from plaza.services.directory import (
    DirectorySettings,
    DirectoryStore,
    HandleNotFoundError,
    HandleTakenError,
    create_app,
)
from plaza.services.runner import ServedApp, ServerThread
from tests.services.directory.helpers import T0, identity


@pytest.fixture
def store(db_url: str) -> Iterator[DirectoryStore]:
    s = DirectoryStore.open(db_url)
    try:
        yield s
    finally:
        s.close()


def _export_len(store: DirectoryStore) -> int:
    return len(store.export())


def test_a_second_did_cannot_claim_a_taken_handle(store: DirectoryStore) -> None:
    alice = identity("alice.test")
    store.submit(alice.did, alice.genesis, T0)
    # The same handle, from another PDS: a different DID.
    impostor = identity("alice.test", "https://pds-two.example")
    assert impostor.did != alice.did
    before = _export_len(store)
    with pytest.raises(HandleTakenError) as refused:
        store.submit(impostor.did, impostor.genesis, T0 + timedelta(seconds=1))
    assert refused.value.code == "HandleNotAvailable" and refused.value.status == 409
    assert _export_len(store) == before
    assert not store.state(impostor.did).exists
    assert store.resolve_handle("alice.test") == alice.did
    assert store.resolve_handle("ALICE.test") == alice.did


def test_an_update_cannot_take_a_handle_and_moving_away_frees_it(store: DirectoryStore) -> None:
    alice, bob = identity("alice.test"), identity("bob.test")
    store.submit(alice.did, alice.genesis, T0)
    store.submit(bob.did, bob.genesis, T0)
    grab = create_update(bob.genesis, bob.pds, handle="alice.test")
    with pytest.raises(HandleTakenError):
        store.submit(bob.did, grab, T0 + timedelta(seconds=1))
    assert store.resolve_handle("bob.test") == bob.did

    moved = create_update(alice.genesis, alice.pds, handle="alice2.test")
    store.submit(alice.did, moved, T0 + timedelta(seconds=2))
    assert store.resolve_handle("alice2.test") == alice.did
    with pytest.raises(HandleNotFoundError):
        store.resolve_handle("alice.test")
    store.submit(bob.did, grab, T0 + timedelta(seconds=3))
    assert store.resolve_handle("alice.test") == bob.did
    with pytest.raises(HandleNotFoundError):
        store.resolve_handle("bob.test")


def test_a_tombstone_releases_the_handle(store: DirectoryStore) -> None:
    alice = identity("alice.test")
    store.submit(alice.did, alice.genesis, T0)
    store.submit(alice.did, create_tombstone(alice.genesis, alice.pds), T0 + timedelta(seconds=1))
    with pytest.raises(HandleNotFoundError):
        store.resolve_handle("alice.test")
    again = identity("alice.test", "https://pds-two.example")
    store.submit(again.did, again.genesis, T0 + timedelta(seconds=2))
    assert store.resolve_handle("alice.test") == again.did


def test_handles_outside_the_networks_domains_are_not_its_to_refuse(
    store: DirectoryStore,
) -> None:
    # Their authority is DNS: whoever listed a foreign name first must not block its owner.
    first, second = identity("alice.example.com"), identity("alice.example.com", "https://b.ex")
    store.submit(first.did, first.genesis, T0)
    store.submit(second.did, second.genesis, T0)
    with pytest.raises(HandleNotFoundError, match="outside"):
        store.resolve_handle("alice.example.com")
    with pytest.raises(HandleNotFoundError, match="not a handle"):
        store.resolve_handle("not a handle")


def test_the_directory_serves_resolve_handle_and_refuses_with_a_code(db_url: str) -> None:
    app = create_app(DirectorySettings(db_url=db_url), clock=lambda: T0)
    alice, impostor = identity("alice.test"), identity("alice.test", "https://pds-two.example")
    resolve = "/xrpc/com.atproto.identity.resolveHandle"
    with ServerThread([ServedApp("directory", app)]) as (url,), httpx.Client(timeout=10) as http:
        assert http.post(f"{url}/{alice.did}", json=alice.genesis.to_json()).status_code == 200
        r = http.post(f"{url}/{impostor.did}", json=impostor.genesis.to_json())
        assert r.status_code == 409 and r.json()["error"] == "HandleNotAvailable", r.text
        assert http.get(f"{url}/{impostor.did}").status_code == 404
        r = http.get(url + resolve, params={"handle": "alice.test"})
        assert r.status_code == 200 and r.json() == {"did": alice.did}
        r = http.get(url + resolve, params={"handle": "nobody.test"})
        assert r.status_code == 400 and r.json()["error"] == "HandleNotFound"
        r = http.get(url + resolve)
        assert r.status_code == 400 and r.json()["error"] == "InvalidRequest"
