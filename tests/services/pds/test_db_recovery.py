"""A PDS on PostgreSQL outlives its database connections: killed backends are replaced
before the next request uses them."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from plaza.services.directory import DirectorySettings
from plaza.services.directory import create_app as create_directory
from plaza.services.pds import PdsSettings, create_app
from plaza.services.runner import ServedApp, ServerThread
from tests.conftest import _PG_MISSING, PG_URL

pytestmark = pytest.mark.skipif(_PG_MISSING is not None, reason=str(_PG_MISSING))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Any]]:
    root: Path = tmp_path_factory.mktemp("dbre")
    schema = f"dbre_{uuid.uuid4().hex[:10]}"
    directory = ServedApp("directory", create_directory(DirectorySettings.for_data_dir(root / "d")))
    with ServerThread([directory]) as (dir_url,):
        app = create_app(
            PdsSettings(
                data_dir=root / "pds",
                public_url="http://127.0.0.1:1",
                directory_url=dir_url,
                db_url=f"{PG_URL}?schema={schema}",
            )
        )
        with ServerThread([ServedApp("pds", app)]) as (url,):
            yield url, app.state.pds
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _post(url: str, acct: dict[str, str], text: str) -> httpx.Response:
    return httpx.post(
        f"{url}/xrpc/com.atproto.repo.createRecord",
        json={
            "repo": acct["did"],
            "collection": "app.bsky.feed.post",
            "record": {"text": text, "createdAt": "2026-01-01T00:00:00.000Z"},
        },
        headers={"authorization": f"Bearer {acct['accessJwt']}"},
        timeout=30,
    )


def _texts(url: str, did: str) -> list[str]:
    r = httpx.get(
        f"{url}/xrpc/com.atproto.repo.listRecords",
        params={"repo": did, "collection": "app.bsky.feed.post"},
    )
    assert r.status_code == 200, r.text
    return sorted(rec["value"]["text"] for rec in r.json()["records"])


def test_the_next_requests_succeed_after_every_connection_is_killed(
    served: tuple[str, Any],
) -> None:
    url, ctx = served
    handle = f"k{secrets.token_hex(4)}.test"
    acct = httpx.post(
        f"{url}/xrpc/com.atproto.server.createAccount",
        json={"handle": handle, "password": "pw-12345678"},
        timeout=30,
    ).json()
    assert _post(url, acct, "before").status_code == 200
    pids = [ctx.store.db._conn.info.backend_pid]
    pids += [c.info.backend_pid for c in ctx.repos.committer._all]
    with psycopg.connect(PG_URL, autocommit=True) as admin:
        for pid in pids:
            admin.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))
    assert _texts(url, acct["did"]) == ["before"]  # a read on the store's connection
    for n in range(8):  # more writes than pooled connections
        r = _post(url, acct, f"after {n}")
        assert r.status_code == 200, r.text
    assert _texts(url, acct["did"]) == sorted([f"after {n}" for n in range(8)] + ["before"])
