"""Repository revisions cannot be used to stop a host: an imported ``rev`` far in the
future is refused, and a repository's floor (its next ``rev`` exceeds its last) is its
own, never the TID clock every account's record keys and revisions come from.

The attack, with standard calls only: a member who listed their own recovery key
moves their DID's signing key to a key they hold (a PLC operation signed with the
recovery key), signs a repository whose commit ``rev`` is far ahead, and imports it.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from plaza.atproto import repo as core
from plaza.atproto.crypto import ES256K, PrivateKey
from plaza.atproto.plc.operations import (
    PlcOperation,
    operation_cid,
    parse_operation,
    sign_operation,
)
from plaza.atproto.tid import MAX_CLOCK_ID, MAX_TIMESTAMP, encode_tid, tid_timestamp
from plaza.services.pds import PdsSettings
from plaza.services.pds.components import PdsComponents, open_components
from plaza.services.pds.errors import InvalidRequestError
from plaza.services.pds.repos import MAX_REV_SKEW_S, Write
from plaza.services.pds.store import ACTIVE, AccountRow
from tests.services.pds.conftest import BACKENDS, Network

YEAR_US = 365 * 24 * 3600 * 1_000_000
MINUTE_US = 60 * 1_000_000
POST = "app.bsky.feed.post"


def _post(text: str) -> dict[str, Any]:
    return {"$type": POST, "text": text, "createdAt": "2026-01-01T00:00:00.000Z"}


def _repo_car(did: str, key: PrivateKey, rev: str) -> bytes:
    """A one-record repository of ``did`` whose commit is at ``rev``, signed with ``key``."""
    result = core.Repo.create(
        did, key, rev, writes=[core.Write.create(POST, "3aaaaaaaaaaaa", _post("mine"))]
    )
    return core.export_car(result.new_blocks, result.cid)


def _now_us() -> int:
    return time.time_ns() // 1000


# -- the attack, over XRPC -------------------------------------------------------------


@dataclass
class Attacker:
    url: str
    did: str
    access: str
    key: PrivateKey  # the signing key the DID document now lists

    def head(self) -> dict[str, str]:
        r = httpx.get(f"{self.url}/xrpc/com.atproto.sync.getLatestCommit", params={"did": self.did})
        assert r.status_code == 200, r.text
        head: dict[str, str] = r.json()
        return head

    def import_repo(self, rev: str) -> httpx.Response:
        return httpx.post(
            f"{self.url}/xrpc/com.atproto.repo.importRepo",
            content=_repo_car(self.did, self.key, rev),
            headers={
                "authorization": f"Bearer {self.access}",
                "content-type": "application/vnd.ipld.car",
            },
            timeout=30,
        )


def _attacker(network: Network, url: str) -> Attacker:
    """An account created with its own recovery key, which then moves the DID's
    signing key to a key it holds."""
    recovery = PrivateKey.generate()
    handle = f"atk{secrets.token_hex(4)}.test"
    r = httpx.post(
        f"{url}/xrpc/com.atproto.server.createAccount",
        json={"handle": handle, "password": "a long password", "recoveryKey": recovery.did_key()},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    did, access = r.json()["did"], r.json()["accessJwt"]
    held = PrivateKey.generate(ES256K)
    last = parse_operation(httpx.get(f"{network.directory}/{did}/log/last").json())
    assert isinstance(last, PlcOperation)
    update = sign_operation(
        replace(
            last,
            verification_methods={"atproto": held.did_key()},
            prev=str(operation_cid(last)),
            sig=None,
        ),
        recovery,
    )
    r = httpx.post(f"{network.directory}/{did}", json=update.to_json())
    assert r.status_code == 200, r.text
    return Attacker(url, did, access, held)


def _create(url: str, acct: dict[str, str], text: str) -> tuple[str, str]:
    """Create a post with a host-chosen record key: ``(rkey, commit rev)``."""
    r = httpx.post(
        f"{url}/xrpc/com.atproto.repo.createRecord",
        json={"repo": acct["did"], "collection": POST, "record": _post(text)},
        headers={"authorization": f"Bearer {acct['access']}"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    return r.json()["uri"].rsplit("/", 1)[1], r.json()["commit"]["rev"]


def _near_now(tid: str) -> bool:
    return abs(tid_timestamp(tid) - _now_us()) < 10 * MINUTE_US


@BACKENDS
def test_a_repository_dated_in_the_future_is_refused_and_changes_nothing(
    network: Network, i: int
) -> None:
    url = network.on_backend(i)
    victim = network.new_account(i, prefix="vic")
    attacker = _attacker(network, url)
    head = attacker.head()
    far = encode_tid(_now_us() + 200 * YEAR_US, 0)
    largest = encode_tid(MAX_TIMESTAMP, MAX_CLOCK_ID)
    for rev in (far, largest):
        r = attacker.import_repo(rev)
        assert r.status_code == 400, r.text
        assert r.json()["error"] == "InvalidRequest"
        assert rev in r.json()["message"] and "ahead of this host's clock" in r.json()["message"]
        assert attacker.head() == head
    # Every other account keeps writing at the clock, and accounts can still be made.
    rkey, rev = _create(url, victim, "after the attack")
    assert _near_now(rkey) and _near_now(rev)
    newcomer = network.new_account(i, prefix="new")
    rkey, rev = _create(url, newcomer, "hello")
    assert _near_now(rkey) and _near_now(rev)
    # The same repository dated now is imported: the refusals were for the rev alone.
    now = encode_tid(_now_us(), 0)
    r = attacker.import_repo(now)
    assert r.status_code == 200, r.text
    assert attacker.head()["rev"] == now


@BACKENDS
def test_a_repository_ahead_of_the_clock_keeps_its_own_floor(network: Network, i: int) -> None:
    """A rev within the allowed skew is imported; that repository's next rev follows
    it, and nobody else's does."""
    url = network.on_backend(i)
    victim = network.new_account(i, prefix="vic")
    attacker = _attacker(network, url)
    ahead = encode_tid(_now_us() + 4 * MINUTE_US, 0)
    r = attacker.import_repo(ahead)
    assert r.status_code == 200, r.text
    mine = {"did": attacker.did, "access": attacker.access}
    _, rev = _create(url, mine, "next")
    assert rev > ahead
    _, later = _create(url, mine, "and next")
    assert later > rev
    rkey, victim_rev = _create(url, victim, "mine stays at the clock")
    assert rkey < ahead and victim_rev < ahead
    assert _near_now(rkey) and _near_now(victim_rev)


# -- the rules, with the host's clock in the test's hand -------------------------------

NOW = 1_800_000_000.0  # seconds since the epoch: the host's clock, until a test moves it


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def _at(clock: Clock, tid: str) -> bool:
    """True if ``tid`` is dated at the stalled clock (a few TIDs past it at most)."""
    now_us = int(clock.now * 1_000_000)
    return now_us <= tid_timestamp(tid) < now_us + 100


def _open(tmp_path: Path, db_url: str, clock: Clock) -> PdsComponents:
    settings = PdsSettings(
        data_dir=tmp_path / "pds",
        public_url="http://127.0.0.1:1",
        directory_url="-",
        db_url=db_url,
    )
    return open_components(settings, clock=clock)


def _account(ctx: PdsComponents, name: str) -> Any:
    did = f"did:plc:{name:a<24}"
    key = PrivateKey.generate(ES256K)
    ctx.store.create_account(
        AccountRow(
            did, f"{name}.test", None, "x", key.to_bytes(), "2026-01-01T00:00:00.000Z", ACTIVE
        )
    )
    ctx.repos.create_repo(did, key, NOW, emit=False)
    acct = ctx.accounts.cached(did)
    assert acct is not None
    return acct


def _write(ctx: PdsComponents, acct: Any, text: str) -> str:
    """Commit one post with a host-chosen record key; the commit's rev."""

    async def run() -> str:
        await ctx.repos.start()
        try:
            writes = [Write("create", POST, ctx.repos.clock.next(), _post(text))]
            outcome = await ctx.repos.write(acct, writes, swap_commit=None, validate=True)
            return outcome.rev
        finally:
            await ctx.repos.aclose()

    return asyncio.run(run())


def _import(ctx: PdsComponents, acct: Any, rev: str) -> None:
    asyncio.run(ctx.repos.import_car(acct, _repo_car(acct.did, acct.key, rev)))


def test_the_allowed_skew_is_exact(tmp_path: Path, db_url: str) -> None:
    clock = Clock()
    ctx = _open(tmp_path, db_url, clock)
    try:
        acct = _account(ctx, "skew")
        before = ctx.store.get_root(acct.did)
        limit_us = int(NOW * 1_000_000) + int(MAX_REV_SKEW_S * 1_000_000)
        with pytest.raises(InvalidRequestError, match="ahead of this host's clock") as refused:
            _import(ctx, acct, encode_tid(limit_us + 1, 0))
        assert (refused.value.code, refused.value.status) == ("InvalidRequest", 400)
        assert ctx.store.get_root(acct.did) == before
        _import(ctx, acct, encode_tid(limit_us, 0))
        root = ctx.store.get_root(acct.did)
        assert root is not None and root.rev == encode_tid(limit_us, 0)
        # The shared clock did not move: record keys and other revisions stay at NOW.
        assert _at(clock, ctx.repos.clock.next())
    finally:
        ctx.store.close()


def test_the_clock_is_not_poisoned_across_a_restart(tmp_path: Path, db_url: str) -> None:
    """A repository whose stored rev is ahead of the clock (here: the host's clock ran a
    day ahead, then was corrected) writes after its own rev, before and after the host
    restarts; after the restart its first write leaves the shared clock where the
    clock is, so every other repository's revisions and record keys follow it."""
    clock = Clock()
    ctx = _open(tmp_path, db_url, clock)
    try:
        ahead, other = _account(ctx, "ahead"), _account(ctx, "other")
        clock.now = NOW + 24 * 3600
        last = _write(ctx, ahead, "written a day ahead")
        clock.now = NOW
        rev = _write(ctx, ahead, "after the correction")
        assert rev > last
    finally:
        ctx.store.close()
    clock.now = NOW + 1
    ctx = _open(tmp_path, db_url, clock)
    try:
        ahead = ctx.accounts.cached(ahead.did)
        other = ctx.accounts.cached(other.did)
        again = _write(ctx, ahead, "after the restart")
        assert again > rev
        assert _at(clock, _write(ctx, other, "still at the clock"))
        assert _at(clock, ctx.repos.clock.next())
    finally:
        ctx.store.close()


def test_no_rev_after_the_largest_stops_only_that_repository(tmp_path: Path, db_url: str) -> None:
    """A repository at the largest TID (stored before revisions were bounded) cannot
    commit again; it is told why, and every other repository writes on."""
    clock = Clock()
    ctx = _open(tmp_path, db_url, clock)
    try:
        stuck, other = _account(ctx, "stuck"), _account(ctx, "fine")
        ctx.repos.rev_skew_s = float(MAX_TIMESTAMP)  # as a host without the bound would
        _import(ctx, stuck, encode_tid(MAX_TIMESTAMP, MAX_CLOCK_ID))
        ctx.repos.rev_skew_s = MAX_REV_SKEW_S
        with pytest.raises(InvalidRequestError, match="No revision follows"):
            _write(ctx, stuck, "one more")
        assert _at(clock, _write(ctx, other, "unaffected"))
    finally:
        ctx.store.close()
