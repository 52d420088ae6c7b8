"""Resolving accounts through a real directory (:class:`Identities`, shared by the relay
and the app view): keys and hosts from a verified log, cached, refreshed on demand or at
most once per period on suspicion, and unknown DIDs not asked for again within that
period."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from plaza.atproto.crypto import ES256K, PrivateKey
from plaza.services.directory import DirectorySettings
from plaza.services.directory import create_app as create_directory
from plaza.services.identities import Identities, IdentityError, UnknownDidError
from plaza.services.relay.settings import endpoint_host
from plaza.services.runner import ServedApp, ServerThread
from tests.services.relay.hostile import FakeAccount


@pytest.fixture(scope="module")
def directory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root: Path = tmp_path_factory.mktemp("dir")
    app = create_directory(DirectorySettings.for_data_dir(root))
    with ServerThread([ServedApp("directory", app)]) as (url,):
        yield url


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_keys_and_hosts_come_from_the_log_and_are_cached(directory: str) -> None:
    acct = FakeAccount(directory, "http://127.0.0.1:2583").register()
    clock = Clock()

    async def run() -> None:
        async with httpx.AsyncClient() as http:
            ids = Identities(directory, http, refresh_s=30.0, clock=clock, host_of=endpoint_host)
            first = await ids.get(acct.did)
            assert first.key is not None and first.key.did_key() == acct.key.did_key()
            assert first.host == "127.0.0.1:2583" and first.handle is not None
            assert await ids.get(acct.did) is first and ids.lookups == 1
            # the account rotates its key and moves
            acct.update_identity(key=PrivateKey.generate(ES256K), host="https://pds.example.com")
            assert await ids.refresh(acct.did) is first  # suspicion, but too soon
            clock.now += 31
            moved = await ids.refresh(acct.did)
            assert moved.host == "pds.example.com" and ids.lookups == 2
            assert moved.key is not None and moved.key.did_key() == acct.key.did_key()
            await ids.refresh(acct.did, force=True)  # #identity: always
            assert ids.lookups == 3
            # lookups of one DID at once share one request
            await asyncio.gather(*(ids.refresh(acct.did, force=True) for _ in range(5)))
            assert ids.lookups == 4

    asyncio.run(run())


def test_unknown_dids_are_not_asked_for_again_too_soon(directory: str) -> None:
    clock = Clock()
    unknown = "did:plc:" + "a" * 24

    async def run() -> None:
        async with httpx.AsyncClient() as http:
            ids = Identities(directory, http, refresh_s=30.0, clock=clock, host_of=endpoint_host)
            for _ in range(3):
                with pytest.raises(UnknownDidError):
                    await ids.get(unknown)
            assert ids.lookups == 1
            clock.now += 31
            with pytest.raises(UnknownDidError):
                await ids.get(unknown)
            assert ids.lookups == 2
            with pytest.raises(UnknownDidError, match="only did:plc"):
                await ids.get("did:web:example.com")
            assert ids.lookups == 2

    asyncio.run(run())


def test_an_unreachable_directory_is_asked_again(free_port: int) -> None:
    async def run() -> None:
        async with httpx.AsyncClient() as http:
            ids = Identities(f"http://127.0.0.1:{free_port}", http, refresh_s=30.0, clock=Clock())
            for _ in range(2):
                with pytest.raises(IdentityError) as caught:
                    await ids.get("did:plc:" + "b" * 24)
                assert not isinstance(caught.value, UnknownDidError)
            assert ids.lookups == 2

    asyncio.run(run())
