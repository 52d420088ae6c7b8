"""The security suite's settings and its live network: a directory and a PDS on real
sockets, with fresh accounts and snapshots of every table of their stores.

The number of examples is fixed and the generation derandomized, so a CI run is
repeatable and short. ``PLAZA_FUZZ_SCALE=N`` multiplies every test's examples by ``N``
and ``PLAZA_FUZZ_RANDOM=1`` draws new inputs on each run (a long local hunt), e.g.
``PLAZA_FUZZ_SCALE=20 PLAZA_FUZZ_RANDOM=1 .venv/bin/pytest tests/security``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import secrets
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, settings

from plaza.atproto.crypto import ES256K, PrivateKey
from plaza.db import connect
from plaza.services.directory import DirectorySettings
from plaza.services.directory import create_app as create_directory
from plaza.services.pds import PdsSettings, create_app
from plaza.services.pds.throttle import Backoff
from plaza.services.runner import ServedApp, ServerThread

SCALE = float(os.environ.get("PLAZA_FUZZ_SCALE", "1"))
RANDOM = os.environ.get("PLAZA_FUZZ_RANDOM", "") not in ("", "0")
ADMIN_PASSWORD = "admin-" + secrets.token_hex(8)
# Tables whose rows change on their own schedule, not with a request's outcome: the PDS's
# housekeeping flushes usage counters every few seconds, and its blob sweep marks
# unreferenced blobs (it runs once at start-up here, and then not for a day).
VOLATILE_TABLES = frozenset({"pds_usage", "pds_blob_orphan"})


def fuzz_settings(examples: int) -> settings:
    """Hypothesis settings of one fuzz test: ``examples`` times ``PLAZA_FUZZ_SCALE``."""
    return settings(
        max_examples=max(1, int(examples * SCALE)),
        derandomize=not RANDOM,
        deadline=None,
        database=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
            HealthCheck.function_scoped_fixture,
        ],
        print_blob=True,
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A longer run (``PLAZA_FUZZ_SCALE``) gets a proportionally longer per-test timeout."""
    if SCALE > 1:
        here = Path(__file__).parent
        for item in items:
            if here in item.path.parents:
                item.add_marker(pytest.mark.timeout(int(300 * SCALE)))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def snapshot(url: str, *, skip: frozenset[str] = VOLATILE_TABLES) -> dict[str, str]:
    """A digest of every row of every table of the store at ``url`` (SQLite), by table."""
    db = connect(url)
    try:
        tables = [
            r[0]
            for r in db.query("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        ]
        out: dict[str, str] = {}
        for table in tables:
            if table in skip:
                continue
            rows = sorted(repr(tuple(r)) for r in db.query(f'SELECT * FROM "{table}"'))
            out[table] = hashlib.sha256("\n".join(rows).encode()).hexdigest()
        return out
    finally:
        db.close()


def files_under(folder: Path) -> dict[str, int]:
    """Every file under ``folder`` with its size."""
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): p.stat().st_size for p in folder.rglob("*") if p.is_file()}


@dataclass
class Account:
    did: str
    handle: str
    password: str
    access: str
    refresh: str


@dataclass
class Live:
    """The network under test: URLs, the stores behind them, and account helpers."""

    directory: str
    pds: str
    pds_db: str
    pds_blobs: Path
    pds_mail: Path
    directory_db: str
    client: httpx.Client
    pds_app: Any
    directory_app: Any
    _accounts: dict[str, Account] = field(default_factory=dict)
    _cars: dict[str, bytes] = field(default_factory=dict)

    def new_account(self, prefix: str = "fz") -> Account:
        handle = f"{prefix}{secrets.token_hex(4)}.test"
        password = "pw-" + secrets.token_hex(8)
        r = self.client.post(
            f"{self.pds}/xrpc/com.atproto.server.createAccount",
            json={"handle": handle, "password": password, "email": f"{handle}@example.com"},
        )
        assert r.status_code == 200, r.text
        body = r.json()
        return Account(body["did"], handle, password, body["accessJwt"], body["refreshJwt"])

    def account_for(self, key: str) -> Account:
        """One account per ``key`` (a test's own), created on first use."""
        if key not in self._accounts:
            self._accounts[key] = self.new_account()
        return self._accounts[key]

    def repo_car(self, did: str) -> bytes:
        """The CAR export of ``did``'s repository (fetched once)."""
        if did not in self._cars:
            r = self.client.get(f"{self.pds}/xrpc/com.atproto.sync.getRepo", params={"did": did})
            assert r.status_code == 200, r.text
            self._cars[did] = r.content
        return self._cars[did]

    def signing_key(self, did: str) -> PrivateKey:
        """``did``'s repository signing key, read from the PDS's store."""
        db = connect(self.pds_db)
        try:
            raw = db.scalar("SELECT signing_key FROM pds_account WHERE did = ?", (did,))
        finally:
            db.close()
        return PrivateKey.from_bytes(ES256K, bytes(raw))

    def state(self) -> dict[str, Any]:
        """Everything a refused request must leave as it was."""
        return {
            "pds": snapshot(self.pds_db),
            "blobs": files_under(self.pds_blobs),
            "directory": snapshot(self.directory_db),
        }


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    root = tmp_path_factory.mktemp("security")
    dport, pport = _free_port(), _free_port()
    # the fuzzer creates DIDs far faster than the directory's per-address limit allows
    directory_settings = dataclasses.replace(
        DirectorySettings.for_data_dir(root / "dir"), genesis_burst=1_000_000
    )
    pds_settings = PdsSettings(
        data_dir=root / "pds",
        public_url=f"http://127.0.0.1:{pport}",
        directory_url=f"http://127.0.0.1:{dport}",
        admin_password=ADMIN_PASSWORD,
        max_blob_bytes=100_000,
        blob_gc_every_s=86_400.0,
        # the fuzzer signs up and logs in far more often than a person
        create_account_limit=(1_000_000, 300),
        login_ip_limit=(1_000_000, 300),
        password_backoff=Backoff(free_failures=1_000_000),
    )
    apps = [
        ServedApp("directory", create_directory(directory_settings), port=dport),
        ServedApp("pds", create_app(pds_settings), port=pport),
    ]
    with ServerThread(apps) as urls, httpx.Client(timeout=60) as client:
        yield Live(
            directory=urls[0],
            pds=urls[1],
            pds_db=pds_settings.database_url,
            pds_blobs=pds_settings.blob_dir,
            pds_mail=pds_settings.mail_dir,
            directory_db=directory_settings.db_url,
            client=client,
            pds_app=apps[1].app,
            directory_app=apps[0].app,
        )
