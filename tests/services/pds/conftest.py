"""A live local network for the hosting-service tests: a directory and two PDSs.

Everything is real: uvicorn on free loopback ports (in a background thread), the
directory's and PDSs' own stores (the second PDS on PostgreSQL when it is reachable),
and the atproto SDK or httpx as clients.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from plaza.services.directory import DirectorySettings
from plaza.services.directory import create_app as create_directory
from plaza.services.pds import PdsSettings, create_app, service_did_for
from plaza.services.pds.components import PdsComponents
from plaza.services.runner import ServedApp, ServerThread
from tests.conftest import _PG_MISSING, PG_URL

ADMIN_PASSWORD = "admin-" + secrets.token_hex(8)

# The second PDS of the network runs on PostgreSQL when it is reachable (and not
# switched off): a test labelled "postgresql" is skipped, naming why, when it is not.
SECOND_ON_PG = _PG_MISSING is None and not os.environ.get("PLAZA_TEST_SQLITE_ONLY")
_NO_PG = _PG_MISSING or "PostgreSQL switched off (PLAZA_TEST_SQLITE_ONLY is set)"
DIALECTS = ("sqlite", "postgresql")
BACKENDS = pytest.mark.parametrize(
    "i",
    [
        pytest.param(0, id="sqlite"),
        pytest.param(1, id="postgresql", marks=pytest.mark.skipif(not SECOND_ON_PG, reason=_NO_PG)),
    ],
)
"""Parametrizes a test over the network's PDSs by backend: ``i`` 0 on SQLite, 1 on
PostgreSQL; the test gets its URL from :meth:`Network.on_backend`."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Network:
    directory: str
    pds: list[str]
    data_dirs: list[Path]
    apps: list[Any]

    def on_backend(self, i: int) -> str:
        """The URL of PDS ``i`` of :data:`BACKENDS`, once its store is checked to run on
        the backend the test is labelled with."""
        dialect = self.apps[i].state.pds.store.db.dialect
        assert dialect == DIALECTS[i], f"PDS {i} runs on {dialect}, not {DIALECTS[i]}"
        return self.pds[i]

    def directory_seq(self) -> int:
        """The sequence number of the directory's latest operation (0 for none)."""
        seq = 0
        while True:
            r = httpx.get(f"{self.directory}/export", params={"after": seq}, timeout=30)
            assert r.status_code == 200, r.text
            lines = [json.loads(line) for line in r.text.splitlines() if line]
            if not lines:
                return seq
            seq = int(lines[-1]["seq"])

    def directory_ops_after(self, seq: int) -> list[dict[str, Any]]:
        """The directory's operations after ``seq`` (``/export`` lines)."""
        r = httpx.get(f"{self.directory}/export", params={"after": seq}, timeout=30)
        assert r.status_code == 200, r.text
        return [json.loads(line) for line in r.text.splitlines() if line]

    def mail_dir(self, i: int) -> Path:
        return self.data_dirs[i] / "mail"

    def new_account(self, i: int = 0, *, prefix: str = "u") -> dict[str, str]:
        """A fresh account on PDS ``i``: did, handle, password and tokens."""
        handle = f"{prefix}{secrets.token_hex(4)}.test"
        password = "pw-" + secrets.token_hex(8)
        r = httpx.post(
            f"{self.pds[i]}/xrpc/com.atproto.server.createAccount",
            json={"handle": handle, "password": password, "email": f"{handle}@example.com"},
            timeout=30,
        )
        assert r.status_code == 200, r.text
        body = r.json()
        return {
            "did": body["did"],
            "handle": handle,
            "password": password,
            "access": body["accessJwt"],
            "refresh": body["refreshJwt"],
        }


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    root = tmp_path_factory.mktemp("net")
    dport, p1, p2 = _free_port(), _free_port(), _free_port()
    directory_url = f"http://127.0.0.1:{dport}"
    schema = None
    db2 = None
    if SECOND_ON_PG:
        schema = f"pds_{uuid.uuid4().hex[:10]}"
        db2 = f"{PG_URL}?schema={schema}"
    dirs = [root / "pds1", root / "pds2"]
    apps = [
        ServedApp(
            "directory", create_directory(DirectorySettings.for_data_dir(root / "dir")), port=dport
        ),
        ServedApp(
            "pds1",
            create_app(
                PdsSettings(
                    data_dir=dirs[0],
                    public_url=f"http://127.0.0.1:{p1}",
                    directory_url=directory_url,
                    admin_password=ADMIN_PASSWORD,
                    max_blob_bytes=200_000,
                    # The second PDS stands in as pds1's app view: it serves profiles of
                    # its own accounts, so proxied reads reach a real peer.
                    appview_url=f"http://127.0.0.1:{p2}",
                    appview_did=service_did_for(f"http://127.0.0.1:{p2}"),
                )
            ),
            port=p1,
        ),
        ServedApp(
            "pds2",
            create_app(
                PdsSettings(
                    data_dir=dirs[1],
                    public_url=f"http://127.0.0.1:{p2}",
                    directory_url=directory_url,
                    db_url=db2,
                    admin_password=ADMIN_PASSWORD,
                    max_blob_bytes=200_000,
                )
            ),
            port=p2,
        ),
    ]
    with ServerThread(apps) as urls:
        yield Network(urls[0], urls[1:], dirs, [a.app for a in apps[1:]])
    if schema is not None:
        import psycopg

        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@dataclass
class PgRepo:
    """The parts of a PDS on a fresh PostgreSQL schema holding one account with an empty repo."""

    pds: PdsComponents
    acct: Any  # the account, as the repository layer takes it
    did: str
    key: Any  # PrivateKey
    schema: str


@contextmanager
def pg_repo(tmp_path: Path, did: str, handle: str, **settings: Any) -> Iterator[PgRepo]:
    """Open the parts of a PDS on a new schema (``settings`` added to its PdsSettings), create
    ``did`` with an empty repository; close the store and drop the schema afterwards."""
    import time

    import psycopg

    from plaza.atproto.crypto import ES256K, PrivateKey
    from plaza.services.pds.components import open_components
    from plaza.services.pds.store import ACTIVE, AccountRow

    schema = f"pds_{uuid.uuid4().hex[:10]}"
    ctx = open_components(
        PdsSettings(
            data_dir=tmp_path,
            public_url="http://127.0.0.1:1",
            directory_url="-",
            db_url=f"{PG_URL}?schema={schema}",
            **settings,
        )
    )
    try:
        key = PrivateKey.generate(ES256K)
        ctx.store.create_account(
            AccountRow(did, handle, None, "x", key.to_bytes(), "2026-01-01T00:00:00.000Z", ACTIVE)
        )
        ctx.repos.create_repo(did, key, time.time(), emit=False)
        acct = ctx.accounts.cached(did)
        assert acct is not None
        yield PgRepo(ctx, acct, did, key, schema)
    finally:
        ctx.store.close()
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
