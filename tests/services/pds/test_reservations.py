"""Reserved signing keys: kept in the store on both backends, bounded, expiring; and
``reserveSigningKey`` rate-limited per client address over a real socket."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from plaza.services.directory import DirectorySettings
from plaza.services.directory import create_app as create_directory
from plaza.services.pds import PdsSettings, create_app
from plaza.services.pds import reservations as module
from plaza.services.pds.errors import RateLimitedError
from plaza.services.pds.identity import DirectoryClient
from plaza.services.pds.reservations import KeyReservations
from plaza.services.pds.store import PdsStore
from plaza.services.runner import ServedApp, ServerThread

DID = "did:plc:" + "b" * 24
TTL = 100


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_reservations_expire_and_are_bounded(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    store = PdsStore.open(db_url)
    clock = Clock()

    async def run() -> None:
        async with httpx.AsyncClient() as http:
            # Reservations for no DID never ask the directory: none is running here.
            keys = KeyReservations(
                store=store, identity=DirectoryClient("http://127.0.0.1:9", http), ttl_s=TTL,
                clock=clock,
            )  # fmt: skip
            first = await keys.reserve(None)
            assert await keys.reserve(None) != first
            found = keys.find(DID, first)  # a key reserved for no DID serves any DID
            assert found is not None and found.did_key() == first
            clock.now += TTL - 1
            assert keys.find(DID, first) is not None
            clock.now += 1
            assert keys.find(DID, first) is None  # expired
            monkeypatch.setattr(module, "MAX_UNBOUND", 3)
            await keys.reserve(None)  # the expired two are dropped first
            await keys.reserve(None)
            await keys.reserve(None)
            with pytest.raises(RateLimitedError):
                await keys.reserve(None)

    try:
        asyncio.run(run())
        # Stored for a DID: found for it, not for another; released with its DID.
        store.add_reserved_key("did:key:zQ3sX", DID, b"\x03" * 32, 1_000, 2_000)
        other = "did:plc:" + "c" * 24
        assert store.reserved_key("did:key:zQ3sX", other, 1_500) is None
        assert store.reserved_key("did:key:zQ3sX", DID, 1_500) == b"\x03" * 32
        store.drop_reserved_keys(DID, "did:key:none")
        assert store.reserved_key_for(DID, 1_500) is None
    finally:
        store.close()


def test_reserve_signing_key_is_rate_limited_per_address(tmp_path: Path) -> None:
    with ServerThread(
        [ServedApp("directory", create_directory(DirectorySettings.for_data_dir(tmp_path / "d")))]
    ) as (directory,):
        pds = create_app(
            PdsSettings(
                data_dir=tmp_path / "pds",
                public_url="http://127.0.0.1:1",
                directory_url=directory,
                reserve_key_limit=(2, 300),
            )
        )
        with ServerThread([ServedApp("pds", pds)]) as (url,):
            method = f"{url}/xrpc/com.atproto.server.reserveSigningKey"
            assert httpx.post(method, json={}).status_code == 200
            bad = httpx.post(method, json={"did": "not a did"})
            assert bad.status_code == 400 and bad.json()["error"] == "InvalidRequest"
            third = httpx.post(method, json={})
            # The limit counts attempts, the refused one included.
            assert third.status_code == 429 and third.json()["error"] == "RateLimitExceeded"
