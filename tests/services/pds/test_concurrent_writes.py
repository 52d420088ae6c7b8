"""Concurrent writes on a live PDS, on SQLite and on PostgreSQL (where commits overlap).

Every acknowledged record must be kept, each repository's commits must chain, and the
firehose must carry every commit exactly once and in sequence order, even though on
PostgreSQL commits run on several connections and can finish out of order. A commit
the database refuses changes nothing and does not stall the stream.
"""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from atproto import models
from plaza.atproto import cbor
from plaza.atproto.repo_verify import import_car
from plaza.errors import StorageError
from plaza.services.pds import PdsSettings
from plaza.services.pds.components import open_components
from plaza.services.pds.repos import Write
from tests.conftest import _PG_MISSING, PG_URL
from tests.services.pds.conftest import BACKENDS, Network, PgRepo, pg_repo
from tests.services.pds.firehose_reader import read_events

CREATE = "com.atproto.repo.createRecord"


def _post(text: str) -> dict[str, Any]:
    return {"$type": "app.bsky.feed.post", "text": text, "createdAt": "2026-01-01T00:00:00.000Z"}


def _create(url: str, acct: dict[str, str], text: str) -> httpx.Response:
    return httpx.post(
        f"{url}/xrpc/{CREATE}",
        json={"repo": acct["did"], "collection": "app.bsky.feed.post", "record": _post(text)},
        headers={"authorization": f"Bearer {acct['access']}"},
        timeout=30,
    )


async def _burst(url: str, accts: list[dict[str, str]], per_account: int) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:

        async def one(acct: dict[str, str], n: int) -> dict[str, Any]:
            r = await client.post(
                f"/xrpc/{CREATE}",
                json={
                    "repo": acct["did"],
                    "collection": "app.bsky.feed.post",
                    "record": _post(f"burst {n}"),
                },
                headers={"authorization": f"Bearer {acct['access']}"},
            )
            assert r.status_code == 200, r.text
            return {"did": acct["did"], **r.json()}

        jobs = [one(a, n) for n in range(per_account) for a in accts]
        return await asyncio.gather(*jobs)


@BACKENDS
def test_concurrent_writes_are_kept_chained_and_streamed_in_order(network: Network, i: int) -> None:
    url = network.on_backend(i)
    accts = [network.new_account(i, prefix="cw") for _ in range(4)]
    dids = {a["did"] for a in accts}
    acked = asyncio.run(_burst(url, accts, 8))
    assert len(acked) == 32

    for rec in acked:  # every acknowledged record is there
        collection, rkey = rec["uri"].split("/")[-2:]
        r = httpx.get(
            f"{url}/xrpc/com.atproto.repo.getRecord",
            params={"repo": rec["did"], "collection": collection, "rkey": rkey},
        )
        assert r.status_code == 200 and r.json()["cid"] == rec["cid"]

    events = read_events(url, 0)
    seqs = [e.seq for e in events]
    assert seqs == sorted(set(seqs)), "every event once, in sequence order"
    commits = [
        e
        for e in events
        if isinstance(e, models.ComAtprotoSyncSubscribeRepos.Commit) and e.repo in dids
    ]
    created = {(c.repo, op.path) for c in commits for op in c.ops if op.action == "create"}
    assert created == {(r["did"], "/".join(r["uri"].split("/")[-2:])) for r in acked}
    for did in dids:  # each repository's commits chain: since = the previous rev
        chain = [c for c in commits if c.repo == did]
        assert len(chain) == 1 + 8  # the account's first commit, then the burst
        for prev, cur in itertools.pairwise(chain):
            assert cur.since == prev.rev and cur.rev > prev.rev
        latest = httpx.get(
            f"{url}/xrpc/com.atproto.sync.getLatestCommit", params={"did": did}
        ).json()
        assert latest == {"cid": str(chain[-1].commit), "rev": chain[-1].rev}


@BACKENDS
def test_a_refused_commit_changes_nothing_and_leaves_a_gap(network: Network, i: int) -> None:
    url = network.on_backend(i)
    ctx = network.apps[i].state.pds
    acct = network.new_account(i, prefix="gap")
    before = httpx.get(
        f"{url}/xrpc/com.atproto.sync.getLatestCommit", params={"did": acct["did"]}
    ).json()
    # Take the sequence number the next commit will get, so the store refuses it.
    taken = ctx.sequencer._last + 1
    if ctx.store.db.dialect == "postgresql":
        with psycopg.connect(ctx.store.db.url.split("?")[0], autocommit=True) as conn:
            schema = ctx.store.db.url.split("schema=")[1]
            conn.execute(f'SET search_path TO "{schema}"')
            conn.execute(
                "INSERT INTO pds_event (seq, did, kind, created_s, frame) "
                "VALUES (%s, 'did:x', '#info', 0, '')",
                (taken,),
            )
    else:
        ctx.store.db.execute(
            "INSERT INTO pds_event (seq, did, kind, created_s, frame) "
            "VALUES (?, 'did:x', '#info', 0, x'')",
            (taken,),
        )
    r = _create(url, acct, "refused")
    assert r.status_code >= 400, r.text
    after = httpx.get(
        f"{url}/xrpc/com.atproto.sync.getLatestCommit", params={"did": acct["did"]}
    ).json()
    assert after == before
    listed = httpx.get(
        f"{url}/xrpc/com.atproto.repo.listRecords",
        params={"repo": acct["did"], "collection": "app.bsky.feed.post"},
    ).json()
    assert listed["records"] == []
    ctx.store.db.execute("DELETE FROM pds_event WHERE seq = ?", (taken,))

    ok = _create(url, acct, "accepted")
    assert ok.status_code == 200, ok.text
    events = [e for e in read_events(url, taken - 1) if getattr(e, "repo", None) == acct["did"]]
    assert [e.seq for e in events] == [taken + 1]
    assert events[0].since == before["rev"]


def test_repository_lock_admits_one_holder_at_a_time(tmp_path: Path) -> None:
    """A writer arriving after the first holder left waits for the one queued before it."""
    ctx = open_components(
        PdsSettings(data_dir=tmp_path, public_url="http://127.0.0.1:1", directory_url="-")
    )
    order: list[str] = []

    async def holder(name: str, entered: asyncio.Event, leave: asyncio.Event) -> None:
        async with ctx.repos.lock("did:plc:x"):
            order.append(f"in {name}")
            entered.set()
            await leave.wait()
            order.append(f"out {name}")

    async def scenario() -> None:
        gates = {name: (asyncio.Event(), asyncio.Event()) for name in "abc"}
        first = asyncio.create_task(holder("a", *gates["a"]))
        await gates["a"][0].wait()  # a holds the lock
        queued = asyncio.create_task(holder("b", *gates["b"]))
        await asyncio.sleep(0)  # b runs up to the lock and waits there
        gates["a"][1].set()
        await first  # a has left; b is woken but has not run yet
        late = asyncio.create_task(holder("c", *gates["c"]))
        gates["b"][1].set()
        gates["c"][1].set()
        await asyncio.gather(queued, late)

    try:
        asyncio.run(scenario())
    finally:
        ctx.store.close()
    assert order == ["in a", "out a", "in b", "out b", "in c", "out c"]
    assert ctx.repos._locks == {}  # nothing left behind


@pytest.mark.skipif(_PG_MISSING is not None, reason=str(_PG_MISSING))
def test_a_cancelled_request_does_not_strand_its_commit(tmp_path: Path) -> None:
    """Cancelled while PostgreSQL commits (as at shutdown), the write still lands, the
    head moves, the event is published, and the next write builds on it."""
    with pg_repo(tmp_path, "did:plc:cancelledcancelledcancel", "c.test") as pg:
        _cancelled_commit(pg)


def _cancelled_commit(pg: PgRepo) -> None:
    ctx, acct, did, key = pg.pds, pg.acct, pg.did, pg.key

    def post(text: str) -> list[Write]:
        return [Write("create", "app.bsky.feed.post", ctx.repos.clock.next(), _post(text))]

    async def scenario() -> tuple[str, str]:
        await ctx.repos.start()
        try:
            first = asyncio.create_task(
                ctx.repos.write(acct, post("one"), swap_commit=None, validate=True)
            )
            while not ctx.sequencer._in_flight:  # the commit has been sent
                await asyncio.sleep(0)
            first.cancel()
            with pytest.raises(asyncio.CancelledError):
                await first
            head = ctx.repos.latest(did)
            second = await ctx.repos.write(acct, post("two"), swap_commit=None, validate=True)
            return head.rev, second.rev
        finally:
            await ctx.repos.aclose()

    head_rev, second_rev = asyncio.run(scenario())
    bodies = [list(cbor.decode_multi(e.frame))[1] for e in ctx.sequencer.read_after(0)]
    assert len(bodies) == 2 and bodies[1]["since"] == bodies[0]["rev"] == head_rev
    assert ctx.repos.latest(did).rev == second_rev == bodies[1]["rev"]
    exported = import_car(ctx.repos.export(did), did=did, key=key.public_key)
    assert len(exported.records) == 2  # the second commit's tree holds the first record


@pytest.mark.skipif(_PG_MISSING is not None, reason=str(_PG_MISSING))
def test_writes_recover_when_database_connections_die(tmp_path: Path) -> None:
    """Every pooled connection killed while idle: each is replaced before a commit uses
    it. One killed while its commit runs: that write fails (never sent again), the next
    one re-reads the head, and the repository stays whole."""
    with pg_repo(tmp_path, "did:plc:reconnectreconnectreconn", "r.test") as pg:
        _dying_connections(pg)


async def _lock_waiters(admin: psycopg.Connection[Any], pids: list[int]) -> list[int]:
    """The backends among ``pids`` waiting for a lock, once there is one: PostgreSQL's
    own view is polled, yielding to the event loop in between (so the commit in flight
    can reach the server), for at most 2,000 rounds."""
    for _ in range(2000):
        rows = admin.execute(
            "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid = ANY(%s)",
            (pids,),
        ).fetchall()
        if rows:
            return [int(row[0]) for row in rows]
        await asyncio.sleep(0.005)
    raise AssertionError("no commit ever waited for the row lock")


def _dying_connections(pg: PgRepo) -> None:
    ctx, acct, did, key, schema = pg.pds, pg.acct, pg.did, pg.key, pg.schema

    def post(n: int) -> list[Write]:
        return [Write("create", "app.bsky.feed.post", ctx.repos.clock.next(), _post(f"{n}"))]

    async def scenario() -> tuple[int, int]:
        await ctx.repos.start()
        try:
            assert ctx.repos.committer is not None
            pooled = [c.info.backend_pid for c in ctx.repos.committer._all]
            assert len(pooled) == 6
            with psycopg.connect(PG_URL, autocommit=True) as admin:
                for pid in pooled:
                    admin.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))
            for n in range(12):
                await ctx.repos.write(acct, post(n), swap_commit=None, validate=True)
            # Now one dies mid-commit: the commit waits on a row lock held here.
            failed = 0
            with psycopg.connect(f"{PG_URL}", autocommit=False) as blocker:
                blocker.execute(
                    f'SELECT 1 FROM "{schema}".pds_repo_root WHERE did = %s FOR UPDATE', (did,)
                )
                write = asyncio.create_task(
                    ctx.repos.write(acct, post(12), swap_commit=None, validate=True)
                )
                while not ctx.sequencer._in_flight:
                    await asyncio.sleep(0.01)
                busy = [c.info.backend_pid for c in ctx.repos.committer._all]
                with psycopg.connect(PG_URL, autocommit=True) as admin:
                    waiting = await _lock_waiters(admin, busy)
                    assert len(waiting) == 1
                    admin.execute("SELECT pg_terminate_backend(%s, 5000)", (waiting[0],))
                try:
                    await write
                except StorageError:
                    failed += 1
                blocker.rollback()
            await ctx.repos.write(acct, post(13), swap_commit=None, validate=True)
            return 14 - failed, failed
        finally:
            await ctx.repos.aclose()

    ok, failed = asyncio.run(scenario())
    assert failed == 1 and ok == 13
    exported = import_car(ctx.repos.export(did), did=did, key=key.public_key)
    assert len(exported.records) == ok
