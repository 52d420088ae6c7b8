"""The simulated hosts over real sockets: frames released at the offered rate reach a
WebSocket subscriber in sequence, each with its scheduled send time; a cursor replays
what was missed; and ``getRepo`` serves the repository at the host's position, which
verifies with the real importer and matches ``getLatestCommit``."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import httpx
import numpy as np
from websockets.asyncio.client import connect

from plaza.atproto import cbor
from plaza.atproto.repo_verify import import_car
from plaza.bench.relay_fixture import FixtureSpec, ensure_fixture, load_host
from plaza.bench.relay_hosts import SUBSCRIBE, Hosts, SimHost


async def _session(fixture: Path) -> None:
    hosts = Hosts([SimHost(h, load_host(fixture, h)) for h in range(2)])
    urls = await hosts.start()
    scheduler = asyncio.create_task(hosts.schedule())
    try:
        ws_url = urls[1].replace("http://", "ws://") + SUBSCRIBE
        async with connect(ws_url, compression=None) as ws:
            while hosts.hosts[1].subscribers == 0:
                await asyncio.sleep(0.01)  # the server counts the subscriber after accept
            hosts.command({"cmd": "rate", "rate": 200})
            seqs = []
            for _ in range(6):
                _, body = cbor.decode_multi(await asyncio.wait_for(ws.recv(), 10))
                seqs.append(body["seq"])
            hosts.command({"cmd": "rate", "rate": 0})
        assert seqs == [1, 2, 3, 4, 5, 6]
        sent = hosts.sent_at[1, :6]
        assert np.all(np.isfinite(sent)) and np.all(np.diff(sent) > 0)
        assert sent[-1] <= time.monotonic()
        released = hosts.hosts[1].released
        async with connect(ws_url + "?cursor=2", compression=None) as ws:
            _, body = cbor.decode_multi(await asyncio.wait_for(ws.recv(), 10))
            assert body["seq"] == 3
        did = hosts.hosts[1].data.accounts[0].did
        async with httpx.AsyncClient(base_url=urls[1]) as client:
            latest = (
                await client.get("/xrpc/com.atproto.sync.getLatestCommit", params={"did": did})
            ).json()
            car = (await client.get("/xrpc/com.atproto.sync.getRepo", params={"did": did})).content
            missing = await client.get("/xrpc/com.atproto.sync.getRepo", params={"did": "x"})
            health = await client.get("/_health")
        repo = import_car(car, did=did)
        assert str(repo.commit_cid) == latest["cid"] and repo.commit.rev == latest["rev"]
        # the account's last released commit is the head getRepo serves
        owners = hosts.hosts[1].data.owners[:released]
        last = max(k for k, owner in enumerate(owners) if owner == 0)
        _, body = cbor.decode_multi(hosts.hosts[1].data.frames[last])
        assert str(body["commit"]) == latest["cid"]
        assert missing.status_code == 400 and health.status_code == 200
    finally:
        scheduler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await scheduler


def test_hosts_release_record_replay_and_serve_repos(tmp_path: Path) -> None:
    fixture = ensure_fixture(
        FixtureSpec(hosts=2, accounts=2, records=8, commits=10), tmp_path, workers=1
    )
    asyncio.run(_session(fixture))
