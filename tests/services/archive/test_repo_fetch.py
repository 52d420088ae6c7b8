"""The repo fetcher against a real PDS that stops and comes back: a failed fetch keeps
the archived copy and retries after a doubling delay; the fetched repository is the
host's, verified."""

from __future__ import annotations

from pathlib import Path

import httpx

from plaza.atproto.repo_verify import import_car
from tests.services.archive.conftest import (
    archive,
    archive_settings,
    caught_up,
    directory,
    free_port,
    latest,
    member,
    pds,
    wait_for,
)
from tests.services.archive.fetching import Fetchers
from tests.services.pds.firehose_reader import read_events


def repo_of(url: str, did: str) -> bytes:
    r = httpx.get(f"{url}/xrpc/com.atproto.sync.getRepo", params={"did": did}, timeout=30)
    assert r.status_code == 200, r.text
    return r.content


def test_a_failed_resync_keeps_the_archived_copy_and_backs_off(tmp_path: Path) -> None:
    port = free_port()
    with directory(tmp_path) as dir_url:
        settings = archive_settings(
            tmp_path, "http://127.0.0.1:9", dir_url, retry_base_s=2.0, retry_max_s=60.0
        )
        f = Fetchers(settings)
        store = f.archive.store
        with pds(tmp_path, dir_url, port=port) as (pds_url, _):
            alice = member(pds_url)
            for i in range(3):
                alice.client.send_post(f"post {i}")
            store.want_resync(alice.did, None, now=f.now)
            assert f.repos_round() == 1
            first = latest(pds_url, alice.did)
            head = store.head(alice.did)
            assert head is not None and not head.resync
            assert str(head.commit_cid) == first["cid"]  # type: ignore[index]
            alice.client.send_post("one more")
        # The host is down: the archive keeps what it has, and waits before trying again.
        store.want_resync(alice.did, None, now=f.now)
        assert f.repos_round() == 1
        kept = store.head(alice.did)
        assert kept is not None and kept.resync and kept.commit_cid == head.commit_cid
        assert store.counts().records == 3
        assert store.next_resync() == f.now + 2.0
        assert f.repos_round() == 0  # not due yet
        f.now += 2.0
        assert f.repos_round() == 1  # due, still down: the delay doubles
        assert store.next_resync() == f.now + 4.0
        with pds(tmp_path, dir_url, port=port) as (pds_url, _):
            f.now += 4.0
            assert f.repos_round() == 1
            host = import_car(repo_of(pds_url, alice.did))
        now = store.head(alice.did)
        assert now is not None and not now.resync and now.commit_cid == host.commit_cid
        assert store.counts().records == 4
        assert f.archive.metrics.resyncs_failed == 2 and f.archive.metrics.resyncs_done == 2


def test_a_chain_the_archive_missed_is_fetched_whole(tmp_path: Path) -> None:
    """Started with a cursor past the account's first events, the archive cannot build
    on the next commit: it fetches the whole repository, then follows again."""
    with directory(tmp_path) as dir_url, pds(tmp_path, dir_url) as (pds_url, _):
        bob = member(pds_url)
        for i in range(4):
            bob.client.send_post(f"missed {i}")
        last_seq = read_events(pds_url)[-1].seq
        settings = archive_settings(tmp_path, pds_url, dir_url)
        Fetchers(settings).archive.store.advance(last_seq)
        with archive(settings) as (arch_url, _app):
            bob.client.send_post("seen")
            wait_for("the resync", caught_up(arch_url, pds_url, bob.did))
            bob.client.send_post("followed")
            wait_for("the next commit", caught_up(arch_url, pds_url, bob.did))
            metrics = httpx.get(f"{arch_url}/_metrics").json()
            assert metrics["resyncs"]["done"] == 1
            assert metrics["records"] == 6 and metrics["commits_applied"] >= 1
            copy = import_car(repo_of(arch_url, bob.did), did=bob.did)
            host = import_car(repo_of(pds_url, bob.did), did=bob.did)
            assert copy.records == host.records and copy.commit_cid == host.commit_cid
