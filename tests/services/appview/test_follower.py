"""The firehose follower in-process against a real PDS: backfill of an account it only
heard of, a stored cursor, and frames that change nothing."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx

from plaza.atproto import cbor
from plaza.services.appview import AppviewStore
from plaza.services.appview.follower import Follower
from plaza.services.appview.indexer import Indexer
from plaza.services.appview.schema import REPO_CURRENT
from plaza.services.identities import Identities
from tests.services.appview.conftest import DEADLINE_S, Net


async def _follow_until(follower: Follower, seq: int, done: object) -> None:
    task = asyncio.create_task(follower.run())
    try:
        await asyncio.wait_for(follower.indexed(seq), DEADLINE_S)
        deadline = time.monotonic() + DEADLINE_S
        while not done():  # type: ignore[operator]
            assert time.monotonic() < deadline, dict(follower.dropped)
            await asyncio.sleep(0.01)  # the backfill reads another server
    finally:
        task.cancel()


def test_an_account_heard_of_is_backfilled_from_its_host(net: Net, tmp_path: Path) -> None:
    carol, c = net.client(1, "hc")
    alice, _ = net.client(0, "ha")
    post = carol.send_post("only on pds2's firehose")
    alice.follow(c["did"])
    alice.like(post.uri, post.cid)
    store = AppviewStore.open(f"sqlite://{tmp_path / 'av.db'}")

    def carol_done() -> bool:
        row = store.db.one(
            "SELECT a.repo_state, a.handle, p.likes FROM actors a JOIN posts p ON p.author = a.id "
            "WHERE a.did = ?",
            (c["did"],),
        )
        return row is not None and row[0] == REPO_CURRENT and row[2] == 1

    async def main() -> Follower:
        async with httpx.AsyncClient(timeout=30) as http:
            follower = Follower(net.pds[0], Indexer(store), Identities(net.directory, http), http)
            seq = net.apps[0].state.pds.sequencer.last_seq
            await _follow_until(follower, seq, carol_done)
            return follower

    follower = asyncio.run(main())
    row = store.db.one("SELECT handle, followers FROM actors WHERE did = ?", (c["did"],))
    assert row == (c["handle"], 1)
    assert store.cursor(net.pds[0]) == follower.seq
    assert follower.backfills >= 2  # alice (first commit seen) and carol (heard of)
    store.close()


def test_bad_frames_change_nothing_but_the_count(net: Net, tmp_path: Path) -> None:
    store = AppviewStore.open(f"sqlite://{tmp_path / 'av.db'}")

    async def main() -> Follower:
        async with httpx.AsyncClient(timeout=30) as http:
            follower = Follower(net.pds[0], Indexer(store), Identities(net.directory, http), http)
            await follower.handle(b"\xff not cbor")
            await follower.handle(cbor.encode({"op": 1}) + cbor.encode({"seq": 5}))
            await follower.handle(cbor.encode({"op": 1, "t": "#commit"}) + cbor.encode({"seq": -3}))
            commit = {"seq": 7, "repo": "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", "ops": "nope"}
            await follower.handle(
                cbor.encode({"op": 1, "t": "#identity"}) + cbor.encode({"seq": 6})
            )
            await follower.handle(cbor.encode({"op": 1, "t": "#commit"}) + cbor.encode(commit))
            return follower

    follower = asyncio.run(main())
    assert follower.dropped["bad_frame"] == 2 and follower.dropped["bad_seq"] == 1
    assert sum(follower.dropped.values()) == 5  # plus the identity with no DID, the commit
    assert store.db.scalar("SELECT COUNT(*) FROM posts") == 0
    assert store.cursor(net.pds[0]) == 7  # a dropped event is passed, not retried
    store.close()


def _frames_after(pds: str, cursor: int, count: int) -> list[bytes]:
    from websockets.sync.client import connect

    ws_url = pds.replace("http://", "ws://") + "/xrpc/com.atproto.sync.subscribeRepos"
    out: list[bytes] = []
    with connect(f"{ws_url}?cursor={cursor}", max_size=6_000_000) as ws:
        while len(out) < count:
            frame = ws.recv(timeout=DEADLINE_S)
            assert isinstance(frame, bytes)
            out.append(frame)
    return out


def test_a_run_of_commits_is_written_in_one_transaction(net: Net, tmp_path: Path) -> None:
    gus, g = net.client(0, "gus")
    gus.send_post("first, to be backfilled")
    store = AppviewStore.open(f"sqlite://{tmp_path / 'av.db'}")
    sequencer = net.apps[0].state.pds.sequencer

    async def main() -> None:
        async with httpx.AsyncClient(timeout=30) as http:
            follower = Follower(net.pds[0], Indexer(store), Identities(net.directory, http), http)
            await _follow_until(follower, sequencer.last_seq, lambda: True)
            start = follower.seq
            posts = [gus.send_post(f"post {i}") for i in range(5)]
            frames = _frames_after(net.pds[0], start, 5)
            await follower.handle_batch(frames)
            assert follower.runs == 1 and follower.seq == sequencer.last_seq
            got = store.db.query(
                "SELECT rkey FROM posts p JOIN actors a ON a.id = p.author WHERE a.did = ?",
                (g["did"],),
            )
            assert {p.uri.rsplit("/", 1)[1] for p in posts} <= {r[0] for r in got}
            assert store.cursor(net.pds[0]) == sequencer.last_seq

    asyncio.run(main())
    store.close()
