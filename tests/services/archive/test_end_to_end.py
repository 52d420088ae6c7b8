"""The archive follows a real PDS's firehose to the head, then serves everything it
archived with the PDS stopped: the same commit, the same MST root and record CIDs, the
image blob with its type."""

from __future__ import annotations

from pathlib import Path

import httpx

from plaza.atproto.car import read_car
from plaza.atproto.repo_verify import import_car, verify_record_proof
from tests.services.archive.conftest import (
    archive,
    archive_settings,
    caught_up,
    directory,
    image_blob,
    latest,
    member,
    pds,
    png_1x1,
    wait_for,
)


def xrpc(url: str, method: str, **params: str) -> httpx.Response:
    return httpx.get(f"{url}/xrpc/com.atproto.sync.{method}", params=params, timeout=30)


def test_archive_serves_a_repository_after_its_host_stops(tmp_path: Path, db_url: str) -> None:
    """On each backend of the archive's store (``db_url``: SQLite or PostgreSQL)."""
    png = png_1x1()
    with directory(tmp_path) as dir_url, pds(tmp_path, dir_url) as (pds_url, pds_thread):
        alice = member(pds_url)
        posts = [alice.client.send_post(f"post {i}") for i in range(3)]
        settings = archive_settings(tmp_path, pds_url, dir_url, db=db_url)
        with archive(settings) as (arch_url, app):
            assert app.state.archive.store.db.url == db_url
            # Two more posts and an image while the archive is following live.
            posts += [alice.client.send_post(f"post {i}") for i in range(3, 5)]
            image = alice.client.send_image(text="a pixel", image=png, image_alt="one pixel")
            wait_for("the archive to reach the PDS's head", caught_up(arch_url, pds_url, alice.did))
            blob_cid = image_blob(alice.client, alice.did, image.uri)
            wait_for(
                "the image blob",
                lambda: blob_cid in xrpc(arch_url, "listBlobs", did=alice.did).json()["cids"],
            )
            host_head = latest(pds_url, alice.did)
            host_car = xrpc(pds_url, "getRepo", did=alice.did).content
            rkey = posts[0].uri.rsplit("/", 1)[1]
            pds_thread.stop()
            assert_gone(pds_url)

            assert latest(arch_url, alice.did) == host_head
            host = import_car(host_car, did=alice.did)
            served = xrpc(arch_url, "getRepo", did=alice.did)
            assert served.status_code == 200
            assert served.headers["content-type"] == "application/vnd.ipld.car"
            copy = import_car(served.content, did=alice.did)
            assert copy.commit_cid == host.commit_cid
            assert copy.data == host.data
            assert copy.records == host.records
            assert len(copy.records) == 6
            assert copy.unreferenced_blocks == 0

            proof = xrpc(
                arch_url, "getRecord", did=alice.did, collection="app.bsky.feed.post", rkey=rkey
            )
            assert proof.status_code == 200
            record = verify_record_proof(proof.content, "app.bsky.feed.post", rkey, did=alice.did)
            assert str(record.cid) == posts[0].cid
            assert record.value["text"] == "post 0"

            blob = xrpc(arch_url, "getBlob", did=alice.did, cid=blob_cid)
            assert blob.status_code == 200
            assert blob.content == png
            assert blob.headers["content-type"] == "image/png"
            assert xrpc(arch_url, "listBlobs", did=alice.did).json() == {"cids": [blob_cid]}

            status = xrpc(arch_url, "getRepoStatus", did=alice.did).json()
            assert status == {"did": alice.did, "active": True, "rev": host_head["rev"]}  # type: ignore[index]
            repos = xrpc(arch_url, "listRepos").json()["repos"]
            assert [r["did"] for r in repos] == [alice.did]
            assert repos[0]["head"] == host_head["cid"]  # type: ignore[index]

            metrics = httpx.get(f"{arch_url}/_metrics").json()
            assert metrics["repos"] == 1 and metrics["records"] == 6
            assert metrics["blobs"] == 1 and metrics["blob_bytes"] == len(png)
            assert metrics["store_bytes"] > 0 and metrics["bytes_per_record"] > 0
            assert metrics["dropped"] == {}


def assert_gone(url: str) -> None:
    try:
        httpx.get(f"{url}/xrpc/_health", timeout=2)
    except httpx.HTTPError:
        return
    raise AssertionError(f"{url} still answers")


def test_get_repo_since_sends_only_newer_blocks(tmp_path: Path) -> None:
    with directory(tmp_path) as dir_url, pds(tmp_path, dir_url) as (pds_url, _):
        bob = member(pds_url)
        bob.client.send_post("first")
        with archive(archive_settings(tmp_path, pds_url, dir_url)) as (arch_url, _app):
            wait_for("the archive", caught_up(arch_url, pds_url, bob.did))
            before = latest(arch_url, bob.did)
            assert before is not None
            later = bob.client.send_post("second")
            wait_for("the archive", caught_up(arch_url, pds_url, bob.did))
            diff = xrpc(arch_url, "getRepo", did=bob.did, since=before["rev"])
            assert diff.status_code == 200
            head = latest(arch_url, bob.did)
            assert head is not None
            car = read_car(diff.content)
            assert str(car.root) == head["cid"]
            new = {str(c) for c in car.blocks}
            full = import_car(xrpc(arch_url, "getRepo", did=bob.did).content)
            first = next(str(c) for c in full.records.values() if str(c) != later.cid)
            assert head["cid"] in new and later.cid in new
            assert first not in new
            assert before["cid"] not in new
            assert len(new) < len(full.blocks)
            everything = xrpc(arch_url, "getRepo", did=bob.did, since="2222222222222")
            assert {str(c) for c in read_car(everything.content).blocks} == {
                str(c) for c in full.blocks
            }
            bad = xrpc(arch_url, "getRepo", did=bob.did, since="yesterday")
            assert bad.status_code == 400 and bad.json()["error"] == "InvalidRequest"
