"""A live network for the relay tests: a directory, two PDSs (the second on PostgreSQL
when it is reachable), two scriptable hostile hosts and a relay, all on real loopback
sockets (uvicorn in a background thread), and a reader of the relay's firehose over a
real WebSocket."""

from __future__ import annotations

import os
import secrets
import socket
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import ClientConnection, connect

from plaza.services.directory import DirectorySettings
from plaza.services.directory import create_app as create_directory
from plaza.services.pds import PdsSettings
from plaza.services.pds import create_app as create_pds
from plaza.services.relay import RelayComponents, RelaySettings
from plaza.services.relay import create_app as create_relay
from plaza.services.relay.frames import Frame, decode_frame
from plaza.services.runner import ServedApp, ServerThread
from tests.conftest import _PG_MISSING, PG_URL
from tests.services.relay.hostile import FakeHost

ON_PG = _PG_MISSING is None and not os.environ.get("PLAZA_TEST_SQLITE_ONLY")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def firehose(url: str, cursor: int | None = 0) -> ClientConnection:
    ws = url.replace("http://", "ws://") + "/xrpc/com.atproto.sync.subscribeRepos"
    if cursor is not None:
        ws += f"?cursor={cursor}"
    return connect(ws, max_size=10_000_000)


class Tap:
    """The relay's firehose read from a cursor, frame by frame."""

    def __init__(self, url: str, cursor: int | None = 0) -> None:
        self._conn = firehose(url, cursor)
        self.ws = self._conn.__enter__()
        self.seen: list[Frame] = []

    def __enter__(self) -> Tap:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def until(self, match: Callable[[Frame], bool], timeout: float = 20.0) -> Frame:
        """Read until a frame matches (every frame read is kept in ``seen``)."""
        while True:
            raw = self.ws.recv(timeout=timeout)
            assert isinstance(raw, bytes)
            frame = decode_frame(raw)
            self.seen.append(frame)
            if match(frame):
                return frame

    def commit_of(self, did: str, rev: str, timeout: float = 20.0) -> Frame:
        return self.until(
            lambda f: f.kind == "#commit" and f.body["repo"] == did and f.body["rev"] == rev,
            timeout,
        )

    def close(self) -> None:
        self._conn.__exit__(None, None, None)


@dataclass
class Net:
    directory: str
    pds: list[str]
    relay: str
    hosts: list[FakeHost]
    parts: RelayComponents

    def new_account(self, i: int = 0) -> dict[str, str]:
        handle = f"r{secrets.token_hex(4)}.test"
        r = httpx.post(
            f"{self.pds[i]}/xrpc/com.atproto.server.createAccount",
            json={"handle": handle, "password": "pw-" + secrets.token_hex(8)},
            timeout=30,
        )
        assert r.status_code == 200, r.text
        body = r.json()
        return {"did": body["did"], "handle": handle, "access": body["accessJwt"]}

    def post(self, acct: dict[str, str], text: str, i: int = 0) -> dict[str, Any]:
        r = httpx.post(
            f"{self.pds[i]}/xrpc/com.atproto.repo.createRecord",
            headers={"Authorization": f"Bearer {acct['access']}"},
            json={
                "repo": acct["did"],
                "collection": "app.bsky.feed.post",
                "record": {
                    "$type": "app.bsky.feed.post",
                    "text": text,
                    "createdAt": "2026-01-01T00:00:00.000Z",
                },
            },
            timeout=30,
        )
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    def xrpc(self, nsid: str, **params: Any) -> httpx.Response:
        return httpx.get(f"{self.relay}/xrpc/{nsid}", params=params, timeout=30)

    def crawl(self, hostname: str) -> httpx.Response:
        return httpx.post(
            f"{self.relay}/xrpc/com.atproto.sync.requestCrawl",
            json={"hostname": hostname},
            timeout=30,
        )

    def metrics(self) -> dict[str, Any]:
        r = httpx.get(f"{self.relay}/_metrics", timeout=30)
        assert r.status_code == 200
        body: dict[str, Any] = r.json()
        return body

    def host_metrics(self, url: str) -> dict[str, Any]:
        name = url.removeprefix("http://")
        host: dict[str, Any] = self.metrics()["hosts"][name]
        return host


RELAY_LIMITS: dict[str, Any] = {
    "max_frame_bytes": 60_000,
    "host_rate_per_s": 400.0,
    "host_burst": 40,
    "flush_every_s": 0.002,
    "resync_backoff_s": (0.05, 0.4),
    "reconnect_backoff_s": (0.05, 0.4),
    "identity_refresh_s": 0.0,
    "crawl_rate": (100.0, 1000),
}


@pytest.fixture(scope="module", params=[0, 1], ids=["inline", "worker"])
def net(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Net]:
    """The network, its relay verifying in its own process or in one worker process."""
    root: Path = tmp_path_factory.mktemp("relaynet")
    dport, p1, p2, rport = free_port(), free_port(), free_port(), free_port()
    directory = f"http://127.0.0.1:{dport}"
    schema = f"pds_{uuid.uuid4().hex[:10]}" if ON_PG else None
    fakes = [FakeHost(), FakeHost()]
    fake_ports = [free_port() for _ in fakes]
    apps = [
        ServedApp(
            "directory", create_directory(DirectorySettings.for_data_dir(root / "dir")), port=dport
        ),
        ServedApp(
            "pds1",
            create_pds(
                PdsSettings(
                    data_dir=root / "pds1",
                    public_url=f"http://127.0.0.1:{p1}",
                    directory_url=directory,
                )
            ),
            port=p1,
        ),
        ServedApp(
            "pds2",
            create_pds(
                PdsSettings(
                    data_dir=root / "pds2",
                    public_url=f"http://127.0.0.1:{p2}",
                    directory_url=directory,
                    db_url=None if schema is None else f"{PG_URL}?schema={schema}",
                )
            ),
            port=p2,
        ),
        *[
            ServedApp(f"fake{i}", fake.app(), port=port)
            for i, (fake, port) in enumerate(zip(fakes, fake_ports, strict=True))
        ],
    ]
    relay_app = create_relay(
        RelaySettings(
            data_dir=root / "relay",
            directory_url=directory,
            public_url=f"http://127.0.0.1:{rport}",
            hosts=(f"127.0.0.1:{p1}",),
            verify_workers=request.param,
            **RELAY_LIMITS,
        )
    )
    apps.append(ServedApp("relay", relay_app, port=rport))
    with ServerThread(apps) as urls:
        for fake, url in zip(fakes, urls[3:5], strict=True):
            fake.url = url
        yield Net(directory, urls[1:3], urls[5], fakes, relay_app.state.relay)
    if schema is not None:
        import psycopg

        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
