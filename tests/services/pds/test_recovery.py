"""Leaving a dead host: an account recovered from an archive's copy with the member's own
rotation key, on a live directory and two PDSs, the first one (its own process) killed
with SIGKILL before the move. The copy comes from the archive service
(:mod:`plaza.services.archive`), which follows the first PDS's firehose directly and
serves the account after its host is gone.
"""

from __future__ import annotations

import secrets
import signal
import stat
import struct
import subprocess
import sys
import time
import uuid
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from atproto import Client, models
from plaza.atproto.crypto import ES256K, PrivateKey, parse_private_key
from plaza.atproto.plc import create_update, parse_operation
from plaza.atproto.repo_verify import import_car
from plaza.cli import app as cli
from plaza.services.directory import DirectorySettings
from plaza.services.directory import create_app as create_directory
from plaza.services.pds import PdsSettings, create_app
from plaza.services.pds.recovery import RecoveryError, recover_account
from plaza.services.runner import ServedApp, ServerThread
from tests.conftest import PG_URL
from tests.services.archive.conftest import (
    archive,
    archive_settings,
    caught_up,
    holds,
    wait_for,
)
from tests.services.pds.conftest import SECOND_ON_PG

POSTS = 5


def _png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\x00\x80\xff")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


@dataclass
class Hosts:
    """A directory and a second PDS that stay up; a first PDS in a process of its own
    (``plaza serve pds``) that can be killed; an archive following the first PDS's
    firehose."""

    directory: str
    old: str
    new: str
    archive: str
    first: subprocess.Popen[bytes]

    def archived(self, did: str) -> None:
        """Wait until the archive holds ``did``'s head and every blob the first PDS lists."""
        wait_for(f"the archive to hold {did}", holds(self.archive, self.old, did))

    def stop_old(self) -> None:
        """SIGKILL the first PDS: it answers nothing any more."""
        self.first.send_signal(signal.SIGKILL)
        self.first.wait(30)
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{self.old}/xrpc/_health", timeout=5)

    def data(self, did: str) -> dict[str, Any]:
        r = httpx.get(f"{self.directory}/{did}/data", timeout=30)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    def log_length(self, did: str) -> int:
        return len(httpx.get(f"{self.directory}/{did}/log/audit", timeout=30).json())


@pytest.fixture
def hosts(tmp_path: Path) -> Iterator[Hosts]:
    """The second PDS (the one accounts are recovered to) runs on PostgreSQL when it is
    reachable, as in :mod:`tests.services.pds.conftest`."""
    schema = f"pds_{uuid.uuid4().hex[:10]}" if SECOND_ON_PG else None
    stay = ServerThread(
        [ServedApp("directory", create_directory(DirectorySettings.for_data_dir(tmp_path / "d")))]
    )
    (directory,) = stay.__enter__()
    try:
        # Each PDS's public URL must be its real one: bind first, then build the app.
        first_port, second_port = _free_port(), _free_port()
        db = None if schema is None else f"{PG_URL}?schema={schema}"
        second = ServerThread(
            [
                ServedApp(
                    "pds2", _pds(tmp_path / "pds2", directory, second_port, db), port=second_port
                )
            ]
        )
        (new,) = second.__enter__()
        first = _serve_pds(tmp_path / "pds1", directory, first_port)
        old = f"http://127.0.0.1:{first_port}"
        try:
            with archive(archive_settings(tmp_path, old, directory)) as (archive_url, _):
                yield Hosts(directory, old, new, archive_url, first)
        finally:
            if first.poll() is None:
                first.kill()
            first.wait(30)
            second.__exit__(None, None, None)
    finally:
        stay.__exit__(None, None, None)
        if schema is not None:
            import psycopg

            with psycopg.connect(PG_URL, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _serve_pds(data_dir: Path, directory: str, port: int) -> subprocess.Popen[bytes]:
    """``plaza serve pds`` in its own process, once it answers (polled, with a deadline)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", "from plaza.cli import main; main()", "serve", "pds",
         "--port", str(port), "--data-dir", str(data_dir), "--directory", directory],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/xrpc/_health", timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.05)
    proc.kill()
    raise AssertionError("plaza serve pds did not start")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pds(data_dir: Path, directory: str, port: int, db: str | None = None) -> Any:
    return create_app(
        PdsSettings(
            data_dir=data_dir,
            public_url=f"http://127.0.0.1:{port}",
            directory_url=directory,
            db_url=db,
            max_blob_bytes=200_000,
        )
    )


@dataclass
class Member:
    did: str
    handle: str
    password: str
    key: PrivateKey
    image_cid: str
    png: bytes


def _member_with_posts(url: str) -> Member:
    """An account made through the atproto SDK with the member's own recovery key, with
    five posts and an image post."""
    key = PrivateKey.generate(ES256K)
    handle = f"rec{secrets.token_hex(3)}.test"
    password = "old password 123"
    Client(base_url=url).com.atproto.server.create_account(
        models.ComAtprotoServerCreateAccount.Data(
            handle=handle,
            password=password,
            email=f"{handle}@example.com",
            recovery_key=key.did_key(),
        )
    )
    client = Client(base_url=url)
    client.login(handle, password)
    assert client.me is not None
    for i in range(POSTS):
        client.send_post(f"post {i} before the host dies")
    png = _png()
    post = client.send_image(text="a picture", image=png, image_alt="one pixel")
    record = client.get_post(post.uri.rsplit("/", 1)[1], client.me.did).value
    return Member(client.me.did, handle, password, key, record.embed.images[0].image.ref.link, png)


def _key_file(tmp_path: Path, key: PrivateKey, *, multibase: bool = False) -> Path:
    path = tmp_path / "recovery.key"
    path.write_text(key.multibase() if multibase else key.to_bytes().hex())
    path.chmod(0o600)
    return path


def test_recover_to_the_second_host_after_the_first_is_killed(hosts: Hosts, tmp_path: Path) -> None:
    m = _member_with_posts(hosts.old)
    assert hosts.data(m.did)["rotationKeys"][0] == m.key.did_key()
    hosts.archived(m.did)
    head = httpx.get(f"{hosts.old}/xrpc/com.atproto.sync.getLatestCommit", params={"did": m.did})
    old_rotation = hosts.data(m.did)["rotationKeys"]
    hosts.stop_old()
    # What the archive serves with the host gone: the host's head.
    copy = httpx.get(f"{hosts.archive}/xrpc/com.atproto.sync.getRepo", params={"did": m.did})
    archived = import_car(copy.content, did=m.did)
    assert str(archived.commit_cid) == head.json()["cid"]

    keyfile = _key_file(tmp_path, m.key, multibase=True)
    result = CliRunner().invoke(
        cli,
        [
            "account", "recover", "--did", m.did, "--key", str(keyfile),
            "--archive", hosts.archive, "--to", hosts.new,
            "--new-password", "new password 456", "--directory", hosts.directory,
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "FAILED" not in result.output and "same record CIDs" in result.output
    said = " ".join(result.output.split())
    # The new key is named as text (a did:key is no emoji shortcode here).
    assert hosts.data(m.did)["verificationMethods"]["atproto"] in said
    assert m.key.multibase() not in result.output and m.key.to_bytes().hex() not in result.output

    # The DID names the second host and its key; the member's key first, the dead
    # host's gone, the new host's added.
    data = hosts.data(m.did)
    assert data["services"]["atproto_pds"]["endpoint"] == hosts.new
    assert data["rotationKeys"][0] == m.key.did_key()
    assert old_rotation[1] not in data["rotationKeys"]
    assert len(data["rotationKeys"]) == 2
    # Same records with the same CIDs, signed by the directory's key.
    car = httpx.get(f"{hosts.new}/xrpc/com.atproto.sync.getRepo", params={"did": m.did}).content
    from plaza.atproto.crypto import parse_did_key

    moved = import_car(car, did=m.did, key=parse_did_key(data["verificationMethods"]["atproto"]))
    assert moved.data == archived.data
    assert dict(moved.records) == dict(archived.records)
    assert len([p for p in moved.records if p.startswith("app.bsky.feed.post/")]) == POSTS + 1
    blob = httpx.get(
        f"{hosts.new}/xrpc/com.atproto.sync.getBlob", params={"did": m.did, "cid": m.image_cid}
    )
    assert blob.status_code == 200 and blob.content == m.png
    # The member logs in with the new password and posts.
    client = Client(base_url=hosts.new)
    client.login(m.handle, "new password 456")
    post = client.send_post("hello from the new host")
    assert post.uri.startswith(f"at://{m.did}/app.bsky.feed.post/")
    status = httpx.get(
        f"{hosts.new}/xrpc/com.atproto.sync.getRepoStatus", params={"did": m.did}
    ).json()
    assert status["active"] is True


def test_a_key_the_did_does_not_list_changes_nothing(hosts: Hosts) -> None:
    m = _member_with_posts(hosts.old)
    hosts.archived(m.did)
    before = hosts.log_length(m.did)
    with pytest.raises(RecoveryError) as err:
        recover_account(
            did=m.did,
            rotation_key=PrivateKey.generate(ES256K),
            archive_url=hosts.archive,
            new_url=hosts.new,
            password="new password 456",
            directory_url=hosts.directory,
        )
    message = err.value.message
    assert "step 1 (read the identity)" in message
    assert "is not among the DID's rotation keys" in message
    assert message.endswith("nothing was changed.")
    assert hosts.log_length(m.did) == before
    gone = httpx.get(f"{hosts.new}/xrpc/com.atproto.sync.getRepoStatus", params={"did": m.did})
    assert gone.status_code == 400 and gone.json()["error"] == "RepoNotFound"


def test_an_unreachable_archive_changes_nothing(hosts: Hosts) -> None:
    m = _member_with_posts(hosts.old)
    hosts.archived(m.did)
    before = hosts.log_length(m.did)
    hosts.stop_old()
    with pytest.raises(RecoveryError) as err:
        recover_account(
            did=m.did,
            rotation_key=m.key,
            archive_url=f"http://127.0.0.1:{_free_port()}",  # a closed port
            new_url=hosts.new,
            password="new password 456",
            directory_url=hosts.directory,
        )
    message = err.value.message
    assert "step 2 (fetch the repository from the archive)" in message
    assert message.endswith("nothing was changed.")
    assert hosts.log_length(m.did) == before


def test_an_interrupted_recovery_resumes(hosts: Hosts, tmp_path: Path) -> None:
    """The first run reads from an archive that followed the first PDS to its head but
    refused the image (its blob limit is below the image's size): the run stops saying
    what is left; a second run, from an archive that holds the image, resumes and
    finishes."""
    m = _member_with_posts(hosts.old)
    hosts.archived(m.did)
    partial = archive_settings(
        tmp_path / "partial", hosts.old, hosts.directory, max_blob_bytes=len(m.png) - 1
    )
    with archive(partial) as (partial_url, _):
        wait_for(f"{partial_url} to reach the head", caught_up(partial_url, hosts.old, m.did))
        wait_for(f"{partial_url} to refuse the image", lambda: _refused(partial_url) == 1)
        assert httpx.get(
            f"{partial_url}/xrpc/com.atproto.sync.listBlobs", params={"did": m.did}
        ).json() == {"cids": []}
        hosts.stop_old()
        args: dict[str, Any] = {
            "did": m.did,
            "rotation_key": m.key,
            "archive_url": partial_url,
            "new_url": hosts.new,
            "password": "new password 456",
            "directory_url": hosts.directory,
        }
        with pytest.raises(RecoveryError) as err:
            recover_account(**args)
    message = err.value.message
    assert "step 7 (copy the repository and blobs)" in message
    assert "still misses 1 blobs" in message
    assert "The DID already names the new host" in message
    assert "the new host has the account (not active yet)" in message
    assert message.endswith("re-run to resume.")

    report = recover_account(**{**args, "archive_url": hosts.archive})
    assert report.ok, report.checks
    assert report.resumed[:2] == ["reserve a signing key on the new host", "sign the PLC operation"]
    assert "create the account on the new host" in report.resumed
    assert report.blobs == 1 and report.records == POSTS + 1


def _refused(archive_url: str) -> int:
    """How many blobs the archive refused for good (over its size limit)."""
    refused: int = httpx.get(f"{archive_url}/_metrics").json()["blob_fetches"]["refused"]
    return refused


def _create(url: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{url}/xrpc/com.atproto.server.createAccount", json=body, timeout=30)


def _reserve(url: str, did: str | None) -> httpx.Response:
    body = {} if did is None else {"did": did}
    return httpx.post(f"{url}/xrpc/com.atproto.server.reserveSigningKey", json=body, timeout=30)


def test_create_account_without_a_token_needs_the_did_to_name_a_reserved_key(
    hosts: Hosts,
) -> None:
    m = _member_with_posts(hosts.old)
    reserved = _reserve(hosts.new, m.did)
    assert reserved.status_code == 200, reserved.text
    key = reserved.json()["signingKey"]
    assert _reserve(hosts.new, m.did).json()["signingKey"] == key  # one per DID
    assert _reserve(hosts.new, None).json()["signingKey"] != key
    unknown = _reserve(hosts.new, "did:plc:" + "a" * 24)
    assert unknown.status_code == 400 and unknown.json()["error"] == "InvalidRequest"
    body = {"did": m.did, "handle": m.handle, "password": "taken over 123"}

    # The DID still names the first host: refused.
    refused = _create(hosts.new, body)
    assert refused.status_code == 401 and refused.json()["error"] == "AuthenticationRequired"
    # A plcOp naming a key the host did not reserve: refused, and not submitted.
    before = hosts.log_length(m.did)
    last = parse_operation(httpx.get(f"{hosts.directory}/{m.did}/log/last").json())
    stranger = PrivateKey.generate(ES256K).did_key()
    op = create_update(last, m.key, signing_key=stranger, pds_endpoint=hosts.new)  # type: ignore[arg-type]
    refused = _create(hosts.new, {**body, "plcOp": op.to_json()})
    assert refused.status_code == 400 and "reserved" in refused.json()["message"]
    assert hosts.log_length(m.did) == before
    # The DID names the host but a key it did not reserve: refused.
    assert httpx.post(f"{hosts.directory}/{m.did}", json=op.to_json()).status_code == 200
    refused = _create(hosts.new, body)
    assert refused.status_code == 401 and refused.json()["error"] == "AuthenticationRequired"
    # plcOp naming the reserved key, sent with a second request for the DID without one
    # (a watcher's, hoping to win once the directory names the host): the request that
    # carries the operation gets the account, deactivated, with the reserved key.
    last = parse_operation(httpx.get(f"{hosts.directory}/{m.did}/log/last").json())
    op = create_update(last, m.key, signing_key=key)  # type: ignore[arg-type]
    mine = {**body, "password": "the member 123", "plcOp": op.to_json()}
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda b: _create(hosts.new, b), [mine, body]))
    assert answers[0].status_code == 200, answers[0].text
    assert answers[1].status_code in (400, 401), answers[1].text
    assert hosts.data(m.did)["verificationMethods"]["atproto"] == key
    login = httpx.post(
        f"{hosts.new}/xrpc/com.atproto.server.createSession",
        json={"identifier": m.did, "password": "the member 123"},
    )
    assert login.status_code == 200, login.text
    status = httpx.get(
        f"{hosts.new}/xrpc/com.atproto.sync.getRepoStatus", params={"did": m.did}
    ).json()
    assert status["active"] is False and status["status"] == "deactivated"
    # The reservation is spent: the DID gets a fresh one.
    assert _reserve(hosts.new, m.did).json()["signingKey"] != key


def test_add_recovery_key_and_new_recovery_key(hosts: Hosts, tmp_path: Path) -> None:
    handle = f"late{secrets.token_hex(3)}.test"
    made = _create(hosts.old, {"handle": handle, "password": "old password 123"})
    assert made.status_code == 200, made.text
    did = made.json()["did"]
    host_key = hosts.data(did)["rotationKeys"]

    keyfile = tmp_path / "mine.key"
    out = CliRunner().invoke(cli, ["account", "new-recovery-key", "--out", str(keyfile)])
    assert out.exit_code == 0, out.output
    assert stat.S_IMODE(keyfile.stat().st_mode) == 0o600
    key = parse_private_key(keyfile.read_text())
    assert out.output.strip() == key.did_key()
    again = CliRunner().invoke(cli, ["account", "new-recovery-key", "--out", str(keyfile)])
    assert again.exit_code == 1 and "not overwriting" in again.output
    assert parse_private_key(keyfile.read_text()).did_key() == key.did_key()

    result = CliRunner().invoke(
        cli,
        [
            "account", "add-recovery-key", "--did", did, "--pds", hosts.old,
            "--key", str(keyfile), "--mail-dir", str(tmp_path / "pds1" / "mail"),
            "--directory", hosts.directory,
        ],
        env={"PLAZA_PASSWORD": "old password 123"},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert key.to_bytes().hex() not in result.output
    assert hosts.data(did)["rotationKeys"] == [key.did_key(), *host_key]


def test_a_key_file_others_can_read_is_warned_of_and_a_bad_one_refused(
    hosts: Hosts, tmp_path: Path
) -> None:
    key = PrivateKey.generate(ES256K)
    path = _key_file(tmp_path, key)
    path.chmod(0o644)
    args = [
        "account", "recover", "--did", "did:plc:" + "a" * 24, "--key", str(path),
        "--archive", hosts.archive, "--to", hosts.new, "--new-password", "whatever 123",
        "--directory", hosts.directory,
    ]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    said = " ".join(result.output.split())  # as one line, however the console wrapped it
    assert "readable by others" in said
    assert result.exit_code == 1 and "step 1 (read the identity)" in said
    assert key.to_bytes().hex() not in said
    path.write_text("not a key " + "ab" * 20)
    result = CliRunner().invoke(cli, args)
    said = " ".join(result.output.split())
    assert result.exit_code == 1 and "holds no usable private key" in said
    assert "ab" * 20 not in said


def test_import_refuses_a_commit_no_key_of_the_did_signed(hosts: Hosts) -> None:
    """importRepo takes a copy signed by a key the DID named before (the recovery above
    relies on it) but not one signed by a key the DID never named: refused, nothing
    changed."""
    from plaza.atproto import repo as core
    from plaza.atproto.tid import TidClock

    m = _member_with_posts(hosts.old)
    session = httpx.post(
        f"{hosts.old}/xrpc/com.atproto.server.createSession",
        json={"identifier": m.did, "password": m.password},
    ).json()
    auth = {
        "authorization": f"Bearer {session['accessJwt']}",
        "content-type": "application/vnd.ipld.car",
    }
    head = httpx.get(f"{hosts.old}/xrpc/com.atproto.sync.getLatestCommit", params={"did": m.did})
    stranger = PrivateKey.generate(ES256K)
    rev = TidClock(lambda: time.time_ns() // 1000, 7).next()
    post = {
        "$type": "app.bsky.feed.post",
        "text": "forged",
        "createdAt": "2026-01-01T00:00:00.000Z",
    }
    forged = core.Repo.create(
        m.did,
        stranger,
        rev,
        writes=[core.Write.create("app.bsky.feed.post", "3aaaaaaaaaaaa", post)],
    )
    car = core.export_car(forged.new_blocks, forged.cid)
    refused = httpx.post(f"{hosts.old}/xrpc/com.atproto.repo.importRepo", content=car, headers=auth)
    assert refused.status_code == 400, refused.text
    assert "nor by a key the DID has named" in refused.json()["message"]
    after = httpx.get(f"{hosts.old}/xrpc/com.atproto.sync.getLatestCommit", params={"did": m.did})
    assert after.json() == head.json()
