"""The blob fetcher against a real PDS that stops and comes back: a blob the host cannot
serve now is tried again after a doubling delay, is kept only when its bytes are the
CID's, with the host's MIME type; a blob over the limit is refused for good."""

from __future__ import annotations

from pathlib import Path

from plaza.atproto.cid import CID
from tests.services.archive.conftest import (
    archive_settings,
    directory,
    free_port,
    image_blob,
    member,
    pds,
    png_1x1,
)
from tests.services.archive.fetching import Fetchers


def test_a_blob_is_fetched_once_its_host_is_back(tmp_path: Path) -> None:
    port = free_port()
    png = png_1x1()
    with directory(tmp_path) as dir_url:
        settings = archive_settings(
            tmp_path, "http://127.0.0.1:9", dir_url, retry_base_s=5.0, retry_max_s=60.0
        )
        f = Fetchers(settings)
        store = f.archive.store
        with pds(tmp_path, dir_url, port=port) as (pds_url, _):
            alice = member(pds_url)
            post = alice.client.send_image(text="pixel", image=png, image_alt="a pixel")
            cid = CID.decode(image_blob(alice.client, alice.did, post.uri))
            store.want_resync(alice.did, None, now=f.now)
            assert f.repos_round() == 1
        assert [r.cid for r in store.blobs_due(f.now, 10)] == [cid]
        assert f.blobs_round() == 1  # the host is down
        row = store.blob(alice.did, cid)
        assert row is not None and row.state == "wanted" and row.attempts == 1
        assert store.next_blob_try() == f.now + 5.0
        assert f.blobs_round() == 0
        assert not f.archive.blobs.has(cid)
        with pds(tmp_path, dir_url, port=port):
            f.now += 5.0
            assert f.blobs_round() == 1
        row = store.blob(alice.did, cid)
        assert row is not None and row.state == "held"
        assert (row.mime, row.size) == ("image/png", len(png))
        assert b"".join(f.archive.blobs.read(cid)) == png
        assert f.archive.metrics.blobs_failed == 1 and f.archive.metrics.blobs_fetched == 1


def test_a_blob_over_the_limit_is_refused(tmp_path: Path) -> None:
    png = png_1x1()
    with directory(tmp_path) as dir_url, pds(tmp_path, dir_url) as (pds_url, _):
        settings = archive_settings(tmp_path, "http://127.0.0.1:9", dir_url, max_blob_bytes=10)
        f = Fetchers(settings)
        alice = member(pds_url)
        post = alice.client.send_image(text="pixel", image=png, image_alt="a pixel")
        cid = CID.decode(image_blob(alice.client, alice.did, post.uri))
        f.archive.store.want_resync(alice.did, None, now=f.now)
        assert f.repos_round() == 1
        assert f.blobs_round() == 1
        row = f.archive.store.blob(alice.did, cid)
        assert row is not None and row.state == "refused"
        assert f.archive.store.blobs_due(f.now + 10_000, 10) == []
        assert not f.archive.blobs.has(cid)
