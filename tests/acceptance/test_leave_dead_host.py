"""Issue 12's acceptance run: an account leaves a host that was killed, with no help from it.

Everything is real and runs as the README says: ``plaza up`` (one OS process per
service), the atproto SDK as the member's client, ``plaza account new-recovery-key`` and
``plaza account recover`` as commands, SIGKILL for the host's death.

1. The account is created on the first PDS with the member's own ``recoveryKey``; through
   the SDK it posts 5 times and posts an image.
2. The archive (fed by the relay) reaches the account's head.
3. The first PDS is killed with SIGKILL (``plaza chaos kill``); ``plaza account
   recover`` moves the account to the second PDS.
4. The DID document names the second PDS, which serves the same records with the same
   CIDs, and the image blob.
5. The member logs in there with the new password and posts; the relay and the archive
   follow the account to its new host.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from atproto import Client, models
from tests.cli.test_up import _free_base
from tests.services.pds.test_sdk import _png_1x1

PLAZA = str(Path(sys.executable).with_name("plaza"))
DEADLINE_S = 60.0
T = TypeVar("T")


def _until(what: str, probe: Callable[[], T | None], timeout: float = DEADLINE_S) -> T:
    """Poll ``probe`` until it returns something other than None (short interval)."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = probe()
        except (httpx.HTTPError, OSError, ValueError, KeyError) as exc:
            last_error, value = exc, None
        if value is not None:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what} (last error: {last_error!r})")


@pytest.fixture
def network(tmp_path: Path) -> Iterator[dict[str, Any]]:
    data_dir = tmp_path / "plaza"
    base = _free_base()
    proc = subprocess.Popen(
        [PLAZA, "up", "--data-dir", str(data_dir), "--port-base", str(base)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    endpoints_file = data_dir / "endpoints.json"

    def ready() -> dict[str, Any] | None:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        if not endpoints_file.exists():
            return None
        endpoints: dict[str, Any] = json.loads(endpoints_file.read_text())
        if {"relay", "archive"} - endpoints.keys():
            return None
        return endpoints

    try:
        yield _until("plaza up", ready)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


def _latest(base: str, did: str) -> dict[str, Any]:
    resp = httpx.get(f"{base}/xrpc/com.atproto.sync.getLatestCommit", params={"did": did})
    resp.raise_for_status()
    body: dict[str, Any] = resp.json()
    return body


def _records(base: str, did: str) -> dict[str, str]:
    resp = httpx.get(
        f"{base}/xrpc/com.atproto.repo.listRecords",
        params={"repo": did, "collection": "app.bsky.feed.post", "limit": 100},
    )
    resp.raise_for_status()
    return {r["uri"]: r["cid"] for r in resp.json()["records"]}


def test_an_account_leaves_a_killed_host_through_the_archive(
    network: dict[str, Any], tmp_path: Path
) -> None:
    directory, (pds1, pds2) = network["directory"], network["pds"][:2]
    relay, archive = network["relay"], network["archive"]

    # The member makes their own rotation key; the command prints its did:key.
    keyfile = tmp_path / "recovery.key"
    made = subprocess.run(
        [PLAZA, "account", "new-recovery-key", "--out", str(keyfile)],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    recovery_did_key = next(w for w in made.stdout.split() if w.startswith("did:key:"))
    assert keyfile.stat().st_mode & 0o077 == 0

    # 1. Sign-up with the standard recoveryKey field, 5 posts and an image, via the SDK.
    client = Client(base_url=pds1)
    client.com.atproto.server.create_account(
        models.ComAtprotoServerCreateAccount.Data(
            handle="alice.test", password="the first password", recovery_key=recovery_did_key
        )
    )
    client.login("alice.test", "the first password")
    did = client.me.did  # type: ignore[union-attr]
    for i in range(5):
        client.send_post(f"post {i} before the host dies")
    png = _png_1x1()
    image_post = client.send_image(text="a green pixel", image=png, image_alt="green")
    blob_cid = client.get_post(image_post.uri.rsplit("/", 1)[1], did).value.embed.images[0]
    blob_cid = blob_cid.image.ref.link
    doc = httpx.get(f"{directory}/{did}/data").json()
    assert doc["rotationKeys"][0] == recovery_did_key
    before = _records(pds1, did)
    assert len(before) == 6
    head = _latest(pds1, did)

    # 2. The archive reaches the account's head, blob included.
    _until("the archive at the head", lambda: _latest(archive, did) == head or None)

    def archived_blob() -> bool | None:
        resp = httpx.get(f"{archive}/xrpc/com.atproto.sync.listBlobs", params={"did": did})
        return True if resp.status_code == 200 and blob_cid in resp.json()["cids"] else None

    _until("the archive holding the image", archived_blob)

    # 3. The first PDS dies (killed on purpose: plaza up does not restart it); the
    #    account moves without it.
    subprocess.run(
        [PLAZA, "chaos", "kill", "pds1", "--data-dir", str(tmp_path / "plaza")],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip

    def refused() -> bool | None:
        try:
            httpx.get(f"{pds1}/xrpc/_health", timeout=1)
        except httpx.ConnectError:
            return True
        return None

    _until("the first PDS gone", refused)
    recover = subprocess.run(
        [
            PLAZA, "account", "recover", "--did", did, "--key", str(keyfile),
            "--archive", archive, "--to", pds2, "--new-password", "the second password",
            "--directory", directory,
        ],
        check=False, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert recover.returncode == 0, recover.stdout + recover.stderr

    # 4. The DID document names the second PDS; it serves the same records and the image.
    doc = httpx.get(f"{directory}/{did}/data").json()
    assert doc["services"]["atproto_pds"]["endpoint"] == pds2
    assert doc["rotationKeys"][0] == recovery_did_key
    assert _records(pds2, did) == before
    blob = httpx.get(f"{pds2}/xrpc/com.atproto.sync.getBlob", params={"did": did, "cid": blob_cid})
    assert blob.status_code == 200 and blob.content == png

    # 5. The member logs in with the new password and posts; relay and archive follow.
    moved = Client(base_url=pds2)
    moved.login("alice.test", "the second password")
    after = moved.send_post("hello from my new host")
    assert after.uri in _records(pds2, did)
    new_head = _latest(pds2, did)
    _until("the relay following to the new host", lambda: _latest(relay, did) == new_head or None)
    status = httpx.get(f"{relay}/xrpc/com.atproto.sync.getRepoStatus", params={"did": did}).json()
    assert status["active"] is True and status["rev"] == new_head["rev"]
    _until("the archive following", lambda: _latest(archive, did) == new_head or None)
