"""Blobs cannot fill the disk: a per-account quota, and unreferenced blobs collected
after a grace period — never one a record still references."""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from plaza.atproto.cid import CID, RAW
from plaza.cli import app as cli
from plaza.services.directory import DirectorySettings
from plaza.services.directory import create_app as create_directory
from plaza.services.pds import PdsSettings, create_app
from plaza.services.pds.repos import Write
from plaza.services.pds.store import BlobRow
from plaza.services.runner import ServedApp, ServerThread
from tests.conftest import _PG_MISSING, PG_URL
from tests.services.pds.conftest import PgRepo, pg_repo

MAX_BLOB = 20_000
QUOTA = 50_000
GRACE_S = 3600  # far longer than a test runs: only the test's clock passes it
TOKEN_TTL_S = 30 * 24 * 3600  # sessions outlive every move of the clock


class Clock:
    """The PDS's clock: real time plus what the test has moved it forward by."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@dataclass
class Host:
    url: str
    data_dir: Path
    app: Any  # the served PDS (its parts at app.state.pds)
    clock: Clock

    def swept(self) -> None:
        """Wait for two more sweeps of the blob collector to complete, so one began
        after this call."""
        collector = self.app.state.pds.blob_gc
        target = collector.sweeps + 2
        deadline = time.monotonic() + 60
        while collector.sweeps < target:
            assert time.monotonic() < deadline, "the blob collector stopped sweeping"
            time.sleep(0.02)

    def after_grace(self) -> None:
        """Sweep (marking what is unreferenced), move the clock past the grace period,
        and sweep again (collecting what stayed unreferenced)."""
        self.swept()
        self.clock.offset += 2 * GRACE_S
        self.swept()

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
    clock = Clock()
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
                blob_grace_s=GRACE_S,
                blob_gc_every_s=0.05,
                access_ttl_s=TOKEN_TTL_S,
            ),
            clock=clock,
        )
        with ServerThread([ServedApp("pds", pds)]) as (url,):
            yield Host(url, root / "pds", pds, clock)
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


def _record(acct: dict[str, str], blob: dict[str, Any], text: str = "a picture") -> dict[str, Any]:
    return {
        "repo": acct["did"],
        "collection": "app.bsky.feed.post",
        "record": {
            "$type": "app.bsky.feed.post",
            "text": text,
            "createdAt": "2026-01-01T00:00:00.000Z",
            "embed": {"$type": "app.bsky.embed.images", "images": [{"image": blob, "alt": ""}]},
        },
    }


def _post(host: Host, acct: dict[str, str], blob: dict[str, Any], text: str = "x") -> str:
    r = httpx.post(
        f"{host.url}/xrpc/com.atproto.repo.createRecord",
        json=_record(acct, blob, text),
        headers={"authorization": f"Bearer {acct['accessJwt']}"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    uri: str = r.json()["uri"]
    return uri


def _delete(host: Host, acct: dict[str, str], uri: str) -> None:
    rkey = uri.rsplit("/", 1)[1]
    r = httpx.post(
        f"{host.url}/xrpc/com.atproto.repo.deleteRecord",
        json={"repo": acct["did"], "collection": "app.bsky.feed.post", "rkey": rkey},
        headers={"authorization": f"Bearer {acct['accessJwt']}"},
        timeout=30,
    )
    assert r.status_code == 200, r.text


def test_an_unreferenced_blob_is_collected_after_the_grace_period(host: Host) -> None:
    acct = host.account()
    cid = _cid(host.upload(acct, os.urandom(MAX_BLOB)))
    _cid(host.upload(acct, os.urandom(MAX_BLOB)))
    assert host.upload(acct, os.urandom(MAX_BLOB)).status_code == 413  # at the quota
    host.swept()
    assert cid in host.blobs(acct)  # marked, within the grace period
    host.after_grace()
    assert host.blobs(acct) == []
    assert not host.on_disk(cid)
    missing = host.get(acct, cid)
    assert missing.status_code == 400 and missing.json()["error"] == "BlobNotFound"
    assert host.upload(acct, os.urandom(MAX_BLOB)).status_code == 200  # room again


def test_a_referenced_blob_is_never_collected(host: Host) -> None:
    acct = host.account()
    blob = host.upload(acct, os.urandom(1000)).json()["blob"]
    cid = blob["ref"]["$link"]
    _post(host, acct, blob)
    host.after_grace()
    assert cid in host.blobs(acct) and host.on_disk(cid)
    assert host.get(acct, cid).status_code == 200


def test_a_blob_is_collected_once_its_last_record_is_deleted(host: Host) -> None:
    acct = host.account()
    blob = host.upload(acct, os.urandom(1000)).json()["blob"]
    cid = blob["ref"]["$link"]
    first, second = _post(host, acct, blob, "one"), _post(host, acct, blob, "two")
    _delete(host, acct, first)
    host.after_grace()
    assert cid in host.blobs(acct)  # the second still holds it
    _delete(host, acct, second)
    host.after_grace()
    assert cid not in host.blobs(acct)
    assert not host.on_disk(cid)


def test_bytes_another_account_holds_stay(host: Host) -> None:
    keeper, dropper = host.account(), host.account()
    data = os.urandom(1000)
    blob = host.upload(keeper, data).json()["blob"]
    cid = blob["ref"]["$link"]
    _post(host, keeper, blob)
    assert _cid(host.upload(dropper, data)) == cid
    host.after_grace()
    assert cid not in host.blobs(dropper)
    assert host.on_disk(cid)
    assert host.get(keeper, cid).content == data


DEEP = 40  # levels of nesting above a blob reference, past any fixed walking limit


def _deep_record(acct: dict[str, str], blob: dict[str, Any]) -> dict[str, Any]:
    """A post whose extra field holds ``blob`` under :data:`DEEP` levels of maps and lists."""
    value: Any = blob
    for level in range(DEEP):
        value = {"inner": value} if level % 2 else [value]
    body = _record(acct, blob)
    del body["record"]["embed"]
    body["record"]["deep"] = value
    return body


def test_a_blob_referenced_deep_in_a_record_must_exist(host: Host) -> None:
    acct = host.account()
    data = os.urandom(500)
    missing = {
        "$type": "blob",
        "ref": {"$link": str(CID.compute(data, RAW))},
        "mimeType": "image/png",
        "size": len(data),
    }
    head = httpx.get(
        f"{host.url}/xrpc/com.atproto.sync.getLatestCommit", params={"did": acct["did"]}
    ).json()
    r = httpx.post(
        f"{host.url}/xrpc/com.atproto.repo.createRecord",
        json=_deep_record(acct, missing),
        headers={"authorization": f"Bearer {acct['accessJwt']}"},
        timeout=30,
    )
    assert r.status_code == 400 and r.json()["error"] == "BlobNotFound", r.text
    after = httpx.get(
        f"{host.url}/xrpc/com.atproto.sync.getLatestCommit", params={"did": acct["did"]}
    ).json()
    assert after == head
    # Uploaded, the same blob is found at that depth.
    assert _cid(host.upload(acct, data)) == missing["ref"]["$link"]
    r = httpx.post(
        f"{host.url}/xrpc/com.atproto.repo.createRecord",
        json=_deep_record(acct, missing),
        headers={"authorization": f"Bearer {acct['accessJwt']}"},
        timeout=30,
    )
    assert r.status_code == 200, r.text


def test_a_blob_referenced_deep_in_a_record_is_never_collected(host: Host) -> None:
    acct = host.account()
    data = os.urandom(1000)
    blob = host.upload(acct, data).json()["blob"]
    cid = blob["ref"]["$link"]
    r = httpx.post(
        f"{host.url}/xrpc/com.atproto.repo.createRecord",
        json=_deep_record(acct, blob),
        headers={"authorization": f"Bearer {acct['accessJwt']}"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    store = host.app.state.pds.store
    assert store.is_blob_referenced(acct["did"], CID.decode(cid).raw)
    host.after_grace()
    assert cid in host.blobs(acct) and host.on_disk(cid)
    assert host.get(acct, cid).content == data


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, list[Host]]]:
    """A directory and two hosts that collect blobs (the second on PostgreSQL when it
    is reachable), for a migration between them."""
    root: Path = tmp_path_factory.mktemp("blobmig")
    clocks = [Clock(), Clock()]
    schema = None if _PG_MISSING else f"blobmig_{uuid.uuid4().hex[:10]}"
    directory = ServedApp("directory", create_directory(DirectorySettings.for_data_dir(root / "d")))
    with ServerThread([directory]) as (dir_url,):
        apps = [
            ServedApp(
                f"pds{i}",
                create_app(
                    PdsSettings(
                        data_dir=root / f"pds{i}",
                        public_url=f"http://127.0.0.1:{port}",
                        directory_url=dir_url,
                        db_url=None if i == 0 or schema is None else f"{PG_URL}?schema={schema}",
                        blob_grace_s=GRACE_S,
                        blob_gc_every_s=0.05,
                        access_ttl_s=TOKEN_TTL_S,
                    ),
                    clock=clocks[i],
                ),
                port=port,
            )
            for i, port in enumerate((_port(), _port()))
        ]
        with ServerThread(apps) as urls:
            hosts = [Host(u, root / f"pds{i}", apps[i].app, clocks[i]) for i, u in enumerate(urls)]
            yield dir_url, hosts
    if schema is not None:
        import psycopg

        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_blobs_uploaded_after_an_import_are_kept(pair: tuple[str, list[Host]]) -> None:
    """Migration imports the repository, then uploads the blobs its records reference:
    the new host must keep every one of them."""
    directory, (old, new) = pair
    acct = old.account()
    data = os.urandom(5000)
    blob = old.upload(acct, data).json()["blob"]
    cid = blob["ref"]["$link"]
    _post(old, acct, blob)
    result = CliRunner().invoke(
        cli,
        [
            "account",
            "migrate",
            "--did",
            acct["did"],
            "--from",
            old.url,
            "--to",
            new.url,
            "--directory",
            directory,
            "--mail-dir",
            str(old.data_dir / "mail"),
        ],
        env={"PLAZA_PASSWORD": acct["password"]},
    )
    assert result.exit_code == 0, result.output
    new.after_grace()
    assert new.blobs(acct) == [cid] and new.on_disk(cid)
    assert new.get(acct, cid).content == data
    assert old.get(acct, cid).status_code == 400  # the old host serves no deactivated repo
    assert old.on_disk(cid)  # but keeps what its records reference


@pytest.mark.skipif(_PG_MISSING is not None, reason=str(_PG_MISSING))
def test_collection_waits_for_a_commit_in_flight(tmp_path: Path) -> None:
    """On PostgreSQL a commit runs while other tasks do: a sweep that finds a blob
    unreferenced while the commit that references it is in flight must wait for the
    repository and then see the reference."""
    with pg_repo(tmp_path, "did:plc:inflightinflightinflight", "g.test", blob_grace_s=0) as pg:
        _sweep_during_commit(pg)


def _sweep_during_commit(pg: PgRepo) -> None:
    ctx, acct, did = pg.pds, pg.acct, pg.did
    cid = ctx.blobs.put_bytes(b"picture")
    ctx.store.add_blob(did, BlobRow(cid.raw, "image/png", 7, "2026-01-01T00:00:00.000Z"))
    record = {
        "$type": "app.bsky.feed.post",
        "text": "in flight",
        "createdAt": "2026-01-01T00:00:00.000Z",
        "embed": {
            "$type": "app.bsky.embed.images",
            "images": [
                {
                    "image": {"$type": "blob", "ref": cid, "mimeType": "image/png", "size": 7},
                    "alt": "",
                }
            ],
        },
    }

    async def scenario() -> int:
        await ctx.repos.start()
        try:
            ctx.store.mark_unreferenced_blobs(int(time.time()) - 10)
            write = asyncio.create_task(
                ctx.repos.write(
                    acct,
                    [Write("create", "app.bsky.feed.post", ctx.repos.clock.next(), record)],
                    swap_commit=None,
                    validate=True,
                )
            )
            while not ctx.sequencer._in_flight:  # the commit has been sent
                await asyncio.sleep(0)
            collected = await ctx.blob_gc.sweep(time.time())
            await write
            return collected
        finally:
            await ctx.repos.aclose()

    assert asyncio.run(scenario()) == 0
    assert ctx.store.get_blob(did, cid.raw) is not None and ctx.blobs.has(cid)
    assert ctx.store.is_blob_referenced(did, cid.raw)


@pytest.mark.parametrize(
    "mime",
    ["not a mime", "image", "x" * 200 + "/png", "image/" + "p" * 200, "image/png/extra", "/png"],
    ids=["spaces", "no-subtype", "long-type", "long-subtype", "two-slashes", "no-type"],
)
def test_a_malformed_blob_mime_type_is_refused(host: Host, mime: str) -> None:
    acct = host.account()
    r = httpx.post(
        f"{host.url}/xrpc/com.atproto.repo.uploadBlob",
        content=b"bytes",
        headers={"authorization": f"Bearer {acct['accessJwt']}", "content-type": mime},
    )
    assert r.status_code == 400 and r.json()["error"] == "InvalidRequest", r.text
    assert host.blobs(acct) == []
    ok = httpx.post(
        f"{host.url}/xrpc/com.atproto.repo.uploadBlob",
        content=b"bytes",
        headers={
            "authorization": f"Bearer {acct['accessJwt']}",
            "content-type": "Image/PNG; charset=binary",
        },
    )
    assert ok.json()["blob"]["mimeType"] == "image/png"


@pytest.mark.parametrize("header", [None, "*/*", "application/octet-stream"])
def test_an_unnamed_blob_type_is_read_from_the_bytes(host: Host, header: str | None) -> None:
    acct = host.account()
    headers = {"authorization": f"Bearer {acct['accessJwt']}"}
    if header is not None:
        headers["content-type"] = header
    url = f"{host.url}/xrpc/com.atproto.repo.uploadBlob"
    gif = httpx.post(url, content=b"GIF89a" + bytes(40), headers=headers)
    assert gif.json()["blob"]["mimeType"] == "image/gif", gif.text
    other = httpx.post(url, content=b"plain words", headers=headers)
    assert other.json()["blob"]["mimeType"] == "application/octet-stream", other.text
