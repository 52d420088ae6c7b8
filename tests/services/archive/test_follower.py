"""The follower against a firehose the test controls: every fault is dropped, counted
and changes nothing; a restart resumes from the stored cursor."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from plaza.atproto.cid import CID
from plaza.atproto.commit import sign_commit
from plaza.atproto.crypto import ES256K, PrivateKey
from plaza.atproto.repo import Repo, Write
from plaza.atproto.repo_verify import import_car
from plaza.atproto.sync import sync_event_car
from plaza.atproto.tid import int_to_tid
from tests.services.archive.conftest import archive, archive_settings, directory, latest, wait_for
from tests.services.archive.hostile import (
    Author,
    HostileFirehose,
    commit_frame,
    event_frame,
    posts,
    registered,
)


def metrics(url: str) -> dict[str, Any]:
    out: dict[str, Any] = httpx.get(f"{url}/_metrics", timeout=10).json()
    return out


def repo_car(url: str, did: str) -> bytes:
    r = httpx.get(f"{url}/xrpc/com.atproto.sync.getRepo", params={"did": did}, timeout=10)
    assert r.status_code == 200, r.text
    return r.content


def at_head(url: str, did: str, cid: object) -> Any:
    return lambda: (latest(url, did) or {}).get("cid") == str(cid)


def test_faults_are_dropped_counted_and_change_nothing(tmp_path: Path) -> None:
    fire = HostileFirehose()
    with directory(tmp_path) as dir_url, fire.running() as source:
        author = registered(dir_url)
        genesis = author.commit(posts("a", "b"))
        fire.push(commit_frame(1, genesis), 1)
        c1 = author.commit(posts("c"))
        fire.push(commit_frame(2, c1), 2)
        settings = archive_settings(tmp_path, source, dir_url, max_frame_bytes=40_000)
        with archive(settings) as (url, _app):
            wait_for("the first commits", at_head(url, author.did, c1.cid))
            before = repo_car(url, author.did)
            assert metrics(url)["records"] == 3

            # 3: a commit signed with a key that is not the account's.
            forged = author.commit(posts("d"), key=PrivateKey.generate(ES256K), keep=False)
            fire.push(commit_frame(3, forged), 3)
            # 4: a valid, signed commit whose ops leave one out: the inversion cannot
            # reach prevData.
            two = author.commit(posts("d", "e"), keep=False)
            fire.push(commit_frame(4, two, ops=two.ops[:1]), 4)
            # 5: a signed commit over the archived data with a rev older than the head's.
            assert author.repo is not None
            low = int_to_tid(author.start - 10)
            stale_head = sign_commit(author.did, c1.data, low, author.key)
            backwards = Repo(author.did, stale_head, author.repo.mst).apply_writes(
                posts("f"), author.key, int_to_tid(author.start - 5)
            )
            assert backwards.prev_data == c1.data and backwards.rev < c1.rev
            fire.push(commit_frame(5, backwards), 5)
            # a truncated frame (no seq can be read from it)
            cut = commit_frame(6, author.commit(posts("g"), keep=False))
            fire.push(cut[: len(cut) // 2], None)
            # 6: a frame over the archive's size limit
            big = author.commit(_big_post("h", 50_000), keep=False)
            fire.push(commit_frame(6, big), 6)
            wait_for("the faults to be read", lambda: metrics(url)["cursor"] == 6)

            m = metrics(url)
            assert m["dropped"] == {
                "bad_signature": 1,
                "invalid_commit": 1,
                "stale_rev": 1,
                "malformed_frame": 1,
                "oversized_frame": 1,
            }
            assert latest(url, author.did) == {"cid": str(c1.cid), "rev": c1.rev}
            assert repo_car(url, author.did) == before
            assert m["records"] == 3 and m["resyncs_pending"] == 0

            # 7: a frame too large to read at all (the connection closes, 1009): the
            # archive reconnects past it. The stream goes on: the next valid commit
            # lands on the unchanged head.
            huge = author.commit(_big_post("j", 100_000), keep=False)
            fire.push(commit_frame(7, huge), 7)
            c2 = author.commit(posts("i"))
            fire.push(commit_frame(8, c2), 8)
            wait_for("the next valid commit", at_head(url, author.did, c2.cid))
            m = metrics(url)
            assert m["records"] == 4 and m["cursor"] == 8
            assert m["dropped"]["oversized_frame"] == 2 and m["firehose"]["connections"] == 2
            assert fire.cursors == [0, 7]

            # 9: a commit for a DID the directory does not know (a host emitting
            # events for an account it cannot hold): dropped, no fetch is wanted.
            stranger = Author("did:plc:" + "q" * 24, PrivateKey.generate(ES256K))
            fire.push(commit_frame(9, stranger.commit(posts("x"))), 9)
            wait_for("the stranger's commit", lambda: metrics(url)["cursor"] == 9)
            m = metrics(url)
            assert m["dropped"]["unknown_did"] == 1 and m["resyncs_pending"] == 0
            assert m["repos"] == 1 and m["records"] == 4


def _big_post(rkey: str, size: int) -> list[Write]:
    record = {"$type": "app.bsky.feed.post", "text": "x" * size}
    return [Write.create("app.bsky.feed.post", rkey, record)]


def test_a_restart_resumes_from_the_stored_cursor(tmp_path: Path) -> None:
    fire = HostileFirehose()
    with directory(tmp_path) as dir_url, fire.running() as source:
        author = registered(dir_url)
        first = author.commit(posts("a"))
        fire.push(commit_frame(10, first), 10)
        settings = archive_settings(tmp_path, source, dir_url)
        with archive(settings) as (url, _app):
            wait_for("the first commit", at_head(url, author.did, first.cid))
        assert fire.cursors == [0]  # the first start reads the source's whole window
        second = author.commit(posts("b"))
        fire.push(commit_frame(11, second), 11)
        third = author.commit(posts("c"))
        fire.push(commit_frame(12, third), 12)
        with archive(settings) as (url, _app):
            wait_for("the later commits", at_head(url, author.did, third.cid))
            m = metrics(url)
            assert fire.cursors == [0, 10]
            assert m["commits_applied"] == 2  # the two new commits, nothing twice
            assert m["resyncs"]["wanted"] == 0 and m["dropped"] == {}
            assert m["cursor"] == 12 and m["records"] == 3


def test_sync_account_and_identity_events(tmp_path: Path) -> None:
    """``#sync`` over the archived data moves only the head; over other data it asks for
    a resync (the host is unreachable here: the copy stays as it was). ``#account``
    records a status and deletes nothing."""
    fire = HostileFirehose()
    with directory(tmp_path) as dir_url, fire.running() as source:
        author = registered(dir_url)
        genesis = author.commit(posts("a", "b"))
        fire.push(commit_frame(1, genesis), 1)
        with archive(archive_settings(tmp_path, source, dir_url)) as (url, _app):
            wait_for("the first commit", at_head(url, author.did, genesis.cid))
            # The same data, re-signed at a later rev (as after a migration).
            resigned = sign_commit(author.did, genesis.data, author.rev(), author.key)
            blocks = sync_event_car(resigned)
            fire.push(event_frame("#sync", 2, did=author.did, rev=resigned.rev, blocks=blocks), 2)
            wait_for("the #sync", at_head(url, author.did, resigned.cid))
            car = repo_car(url, author.did)
            copy = import_car(car, did=author.did, key=author.key.public_key)
            assert copy.commit_cid == resigned.cid and len(copy.records) == 2
            assert copy.unreferenced_blocks == 0  # the old commit block is gone

            fire.push(event_frame("#identity", 3, did=author.did), 3)
            fire.push(event_frame("#account", 4, did=author.did, active=False, status="deleted"), 4)
            wait_for("the #account", lambda: metrics(url)["cursor"] == 4)
            status = httpx.get(
                f"{url}/xrpc/com.atproto.sync.getRepoStatus", params={"did": author.did}
            ).json()
            assert status == {
                "did": author.did,
                "active": False,
                "status": "deleted",
                "rev": resigned.rev,
            }
            assert repo_car(url, author.did) == car  # still served, unchanged

            # A #sync to data the archive does not have: a resync is wanted, and while
            # the host cannot be reached the archived copy stays.
            other = sign_commit(author.did, c_data(author), author.rev(), author.key)
            fire.push(
                event_frame(
                    "#sync", 5, did=author.did, rev=other.rev, blocks=sync_event_car(other)
                ),
                5,
            )
            wait_for("the resync", lambda: metrics(url)["resyncs"]["failed"] >= 1)
            assert repo_car(url, author.did) == car
            assert metrics(url)["resyncs_pending"] == 1


def c_data(author: Author) -> CID:
    """The data root of a tree the archive does not hold."""
    assert author.repo is not None
    return author.repo.mst.put("app.bsky.feed.post/zzz", author.repo.data).root()
