"""A live local network for the app view's tests: a directory, two PDSs and an app view
following both PDSs' firehoses, every PDS forwarding ``app.bsky.*`` to it.

Everything is real: uvicorn on free loopback ports, the services' own stores (the
second PDS and the app view on PostgreSQL when it is reachable), the atproto SDK as the
client. Tests wait on the app view's health report (the firehose cursor it has indexed
up to), polled with a deadline, never on the clock alone.
"""

from __future__ import annotations

import os
import secrets
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from atproto import Client
from plaza.services.appview import AppviewSettings
from plaza.services.appview import create_app as create_appview
from plaza.services.directory import DirectorySettings
from plaza.services.directory import create_app as create_directory
from plaza.services.pds import PdsSettings, create_app, service_did_for
from plaza.services.runner import ServedApp, ServerThread
from tests.conftest import _PG_MISSING, PG_URL

ON_PG = _PG_MISSING is None and not os.environ.get("PLAZA_TEST_SQLITE_ONLY")
DEADLINE_S = 30.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Net:
    directory: str
    pds: list[str]
    appview: str
    apps: list[Any]  # the two PDS apps

    def synced(self) -> None:
        """Return once the app view has indexed every event both PDSs have published."""
        want = [app.state.pds.sequencer.last_seq for app in self.apps]
        deadline = time.monotonic() + DEADLINE_S
        while True:
            health = httpx.get(f"{self.appview}/xrpc/_health", timeout=10).json()
            seqs = {s["url"]: s["seq"] for s in health["sources"]}
            if all(seqs.get(url, 0) >= n for url, n in zip(self.pds, want, strict=True)):
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"app view stuck at {seqs}, PDSs at {want}: {health}")
            time.sleep(0.02)  # polling another server: a short interval, bounded above

    def client(self, i: int, prefix: str = "u") -> tuple[Client, dict[str, str]]:
        """A new account on PDS ``i``, logged in with the atproto SDK."""
        handle = f"{prefix}{secrets.token_hex(3)}.test"
        password = "pw-" + secrets.token_hex(8)
        r = httpx.post(
            f"{self.pds[i]}/xrpc/com.atproto.server.createAccount",
            json={"handle": handle, "password": password, "email": f"{handle}@example.com"},
            timeout=30,
        )
        assert r.status_code == 200, r.text
        client = Client(base_url=self.pds[i])
        client.login(handle, password)
        return client, {"did": r.json()["did"], "handle": handle}


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    root = tmp_path_factory.mktemp("avnet")
    dport, p1, p2, av = (_free_port() for _ in range(4))
    directory = f"http://127.0.0.1:{dport}"
    pds_urls = [f"http://127.0.0.1:{p1}", f"http://127.0.0.1:{p2}"]
    av_url = f"http://127.0.0.1:{av}"
    schema = f"av_{uuid.uuid4().hex[:10]}" if ON_PG else None
    pg = f"{PG_URL}?schema={schema}" if schema else None

    def pds(i: int, db: str | None) -> Any:
        return create_app(
            PdsSettings(
                data_dir=root / f"pds{i}",
                public_url=pds_urls[i],
                directory_url=directory,
                db_url=db,
                appview_url=av_url,
                appview_did=service_did_for(av_url),
            )
        )

    pds_apps = [pds(0, None), pds(1, None if pg is None else pg + "_pds")]
    appview = create_appview(
        AppviewSettings(
            data_dir=root / "appview",
            public_url=av_url,
            directory_url=directory,
            relay_urls=tuple(pds_urls),
            db=pg,
        )
    )
    apps = [
        ServedApp(
            "directory", create_directory(DirectorySettings.for_data_dir(root / "d")), port=dport
        ),
        ServedApp("pds1", pds_apps[0], port=p1),
        ServedApp("pds2", pds_apps[1], port=p2),
        ServedApp("appview", appview, port=av),
    ]
    with ServerThread(apps) as urls:
        yield Net(urls[0], urls[1:3], urls[3], pds_apps)
    if schema is not None:
        import psycopg

        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}_pds" CASCADE')
