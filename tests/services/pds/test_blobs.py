"""Blobs cannot fill the disk: a per-account quota, and unreferenced blobs collected
after a grace period — never one a record still references."""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from plaza.atproto.cid import CID, RAW
from plaza.services.directory import DirectorySettings
from plaza.services.directory import create_app as create_directory
from plaza.services.pds import PdsSettings, create_app
from plaza.services.runner import ServedApp, ServerThread
from tests.conftest import _PG_MISSING, PG_URL

MAX_BLOB = 20_000
QUOTA = 50_000


@dataclass
class Host:
    url: str
    data_dir: Path

    def account(self) -> dict[str, str]:
        handle = f"b{secrets.token_hex(4)}.test"
        r = httpx.post(
            f"{self.url}/xrpc/com.atproto.server.createAccount",
            json={"handle": handle, "password": "pw-12345678", "email": f"{handle}@x.test"},
            timeout=30,
        )
        assert r.status_code == 200, r.text
        return {**r.json(), "password": "pw-12345678"}

    def upload(self, acct: dict[str, str], data: bytes) -> httpx.Response:
        return httpx.post(
            f"{self.url}/xrpc/com.atproto.repo.uploadBlob",
            content=data,
            headers={"authorization": f"Bearer {acct['accessJwt']}", "content-type": "image/png"},
            timeout=30,
        )

    def blobs(self, acct: dict[str, str]) -> list[str]:
        r = httpx.get(f"{self.url}/xrpc/com.atproto.sync.listBlobs", params={"did": acct["did"]})
        cids: list[str] = r.json()["cids"]
        return cids

    def on_disk(self, cid: str) -> bool:
        return (self.data_dir / "blobs" / cid[-2:] / cid).is_file()

    def get(self, acct: dict[str, str], cid: str) -> httpx.Response:
        return httpx.get(
            f"{self.url}/xrpc/com.atproto.sync.getBlob", params={"did": acct["did"], "cid": cid}
        )


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def host(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Host]:
    root: Path = tmp_path_factory.mktemp("blobs")
    schema = None
    if request.param == "postgresql":
        if _PG_MISSING:
            pytest.skip(_PG_MISSING)
        schema = f"blobs_{uuid.uuid4().hex[:10]}"
    directory = ServedApp("directory", create_directory(DirectorySettings.for_data_dir(root / "d")))
    with ServerThread([directory]) as (dir_url,):
        pds = create_app(
            PdsSettings(
                data_dir=root / "pds",
                public_url="http://127.0.0.1:1",
                directory_url=dir_url,
                db_url=None if schema is None else f"{PG_URL}?schema={schema}",
                max_blob_bytes=MAX_BLOB,
                blob_quota_bytes=QUOTA,
            )
        )
        with ServerThread([ServedApp("pds", pds)]) as (url,):
            yield Host(url, root / "pds")
    if schema is not None:
        import psycopg

        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _cid(resp: httpx.Response) -> str:
    assert resp.status_code == 200, resp.text
    link: str = resp.json()["blob"]["ref"]["$link"]
    return link


def test_uploads_stop_at_the_quota_and_a_refusal_changes_nothing(host: Host) -> None:
    acct = host.account()
    first = _cid(host.upload(acct, os.urandom(MAX_BLOB)))
    second = _cid(host.upload(acct, os.urandom(MAX_BLOB)))
    before = host.blobs(acct)
    assert sorted(before) == sorted([first, second])
    extra = os.urandom(MAX_BLOB)
    refused = host.upload(acct, extra)
    assert refused.status_code == 413, refused.text
    assert refused.json()["error"] == "BlobQuotaExceeded"
    assert host.blobs(acct) == before
    assert not host.on_disk(str(CID.compute(extra, RAW)))
    # A blob the account holds already costs nothing more.
    again = host.upload(acct, (host.data_dir / "blobs" / first[-2:] / first).read_bytes())
    assert _cid(again) == first
    # Another account has its own quota.
    other = host.account()
    assert host.upload(other, extra).status_code == 200


def _record(acct: dict[str, str], blob: dict[str, Any]) -> dict[str, Any]:
    return {
        "repo": acct["did"],
        "collection": "app.bsky.feed.post",
        "record": {
            "$type": "app.bsky.feed.post",
            "text": "a picture",
            "createdAt": "2026-01-01T00:00:00.000Z",
            "embed": {"$type": "app.bsky.embed.images", "images": [{"image": blob, "alt": ""}]},
        },
    }
