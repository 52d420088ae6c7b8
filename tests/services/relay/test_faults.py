"""Hostile hosts: every bad frame is dropped or throttled, counted for its host, and
leaves the relay's state and stream as they were.

Each test drives a scriptable host (:mod:`tests.services.relay.hostile`) over a real
WebSocket and reads the relay's own firehose. Frames from one host are handled in
order, so a valid commit pushed after the bad ones and seen coming out of the relay
proves the bad ones were dealt with before it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from plaza.atproto import cbor
from plaza.atproto.cid import CID
from plaza.atproto.crypto import ES256K, PrivateKey
from plaza.atproto.repo import CommitResult
from plaza.atproto.sync import sync_event_car
from plaza.services.relay.frames import encode_error_frame
from tests.services.relay.conftest import Net, Tap
from tests.services.relay.hostile import FakeAccount, FakeHost, commit_body


@pytest.fixture(scope="module")
def fake(net: Net) -> FakeHost:
    host = net.hosts[0]
    r = net.crawl(host.url)
    assert r.status_code == 200, r.text
    return host


@pytest.fixture
def tap(net: Net) -> Iterator[Tap]:
    with Tap(net.relay, None) as t:
        yield t


def _account(net: Net, host: FakeHost) -> FakeAccount:
    return FakeAccount(net.directory, host.url).register()


def _send(host: FakeHost, result: CommitResult, **override: Any) -> int:
    return host.push("#commit", commit_body(result, **override))


def _valid(host: FakeHost, tap: Tap, acct: FakeAccount) -> CommitResult:
    """Push the account's next commit and wait until the relay passes it on."""
    result = acct.next_commit()
    _send(host, result)
    tap.commit_of(acct.did, result.rev)
    return result


def _dropped(net: Net, host: FakeHost) -> dict[str, int]:
    counts: dict[str, int] = net.host_metrics(host.url)["dropped"]
    return counts


def _head(net: Net, did: str) -> dict[str, Any]:
    r = net.xrpc("com.atproto.sync.getLatestCommit", did=did)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _check_stream(tap: Tap) -> None:
    seqs = [f.body["seq"] for f in tap.seen]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))


def _expect_drop(
    net: Net, fake: FakeHost, tap: Tap, acct: FakeAccount, reason: str, *, bad: Any
) -> None:
    """Push ``bad()`` between two valid commits: only those come out, ``reason`` is
    counted once, and the head is the last valid commit."""
    _valid(fake, tap, acct)
    before = _dropped(net, fake).get(reason, 0)
    bad()
    last = _valid(fake, tap, acct)
    assert _dropped(net, fake).get(reason, 0) == before + 1
    assert _head(net, acct.did) == {"cid": str(last.cid), "rev": last.rev}
    revs = [f.body.get("rev") for f in tap.seen if f.kind == "#commit"]
    assert len(revs) == len(set(revs))
    _check_stream(tap)


def test_forged_signature_is_dropped(net: Net, fake: FakeHost, tap: Tap) -> None:
    acct = _account(net, fake)
    forger = PrivateKey.generate(ES256K)

    def bad() -> None:
        _send(fake, acct.next_commit(key=forger, advance=False))

    _expect_drop(net, fake, tap, acct, "bad-signature", bad=bad)


def test_commit_that_does_not_invert_to_prev_data_is_dropped(
    net: Net, fake: FakeHost, tap: Tap
) -> None:
    acct = _account(net, fake)

    def bad() -> None:
        result = acct.next_commit(advance=False)
        _send(fake, result, prevData=CID.compute(b"somewhere else"))

    _expect_drop(net, fake, tap, acct, "bad-inversion", bad=bad)


def test_rev_going_backwards_is_dropped(net: Net, fake: FakeHost, tap: Tap) -> None:
    acct = _account(net, fake)
    first = _valid(fake, tap, acct)
    _valid(fake, tap, acct)

    def bad() -> None:
        _send(fake, first)  # the same commit again, under a newer seq

    _expect_drop(net, fake, tap, acct, "rev-not-increasing", bad=bad)


def test_events_for_a_did_the_host_does_not_host_are_ignored(
    net: Net, fake: FakeHost, tap: Tap
) -> None:
    acct = _account(net, fake)
    elsewhere = FakeAccount(net.directory, net.pds[0]).register()

    def bad() -> None:
        _send(fake, elsewhere.next_commit())

    _expect_drop(net, fake, tap, acct, "not-account-host", bad=bad)
    r = net.xrpc("com.atproto.sync.getRepoStatus", did=elsewhere.did)
    assert r.status_code == 400 and r.json()["error"] == "RepoNotFound"


@pytest.mark.parametrize("kind", ["truncated", "garbage", "non-canonical", "header-only"])
def test_malformed_frames_are_dropped(net: Net, fake: FakeHost, tap: Tap, kind: str) -> None:
    acct = _account(net, fake)

    def bad() -> None:
        header = cbor.encode({"op": 1, "t": "#commit"})
        body = cbor.encode({**commit_body(acct.next_commit(advance=False)), "seq": fake.seq + 1})
        if kind == "truncated":
            raw = header + body[: len(body) // 2]
        elif kind == "garbage":
            raw = b"\xff\x00garbage"
        elif kind == "non-canonical":  # the header's keys out of order
            raw = b"\xa2\x62op\x01\x61t\x67#commit" + body
        else:
            raw = header
        fake.push_raw(raw)

    _expect_drop(net, fake, tap, acct, "malformed-frame", bad=bad)


def test_oversized_frame_is_dropped(net: Net, fake: FakeHost, tap: Tap) -> None:
    acct = _account(net, fake)

    def bad() -> None:
        body = commit_body(acct.next_commit(advance=False), blocks=b"\x00" * 70_000)
        fake.push("#commit", body)

    _expect_drop(net, fake, tap, acct, "oversized-frame", bad=bad)


def test_error_frames_and_unknown_kinds_are_counted(net: Net, fake: FakeHost, tap: Tap) -> None:
    acct = _account(net, fake)

    def error_frame() -> None:
        fake.push_raw(encode_error_frame("Broken", "the host is unwell"))

    _expect_drop(net, fake, tap, acct, "host-error", bad=error_frame)
    _expect_drop(
        net, fake, tap, acct, "unknown-kind", bad=lambda: fake.push("#mystery", {"did": acct.did})
    )


def test_a_flooding_host_is_throttled_not_dropped(net: Net, tap: Tap) -> None:
    flood = net.hosts[1]
    assert net.crawl(flood.url).status_code == 200
    acct = _account(net, flood)
    results = [acct.next_commit() for _ in range(120)]
    for result in results:
        _send(flood, result)
    tap.commit_of(acct.did, results[-1].rev)
    host = net.host_metrics(flood.url)
    assert host["throttled"] >= 1 and host["dropped"] == {}
    passed = [f.body["rev"] for f in tap.seen if f.kind == "#commit" and f.body["repo"] == acct.did]
    assert passed == [r.rev for r in results]
    _check_stream(tap)


def test_a_commit_that_skips_ahead_desynchronizes_and_resyncs(
    net: Net, fake: FakeHost, tap: Tap
) -> None:
    acct = _account(net, fake)
    _valid(fake, tap, acct)
    acct.next_commit()  # the host never sends this one
    skipped_ahead = acct.next_commit()
    requests = fake.repo_requests
    _send(fake, skipped_ahead)
    tap.until(
        lambda f: (
            f.kind == "#account"
            and f.body["did"] == acct.did
            and f.body.get("status") == "desynchronized"
        )
    )
    status = net.xrpc("com.atproto.sync.getRepoStatus", did=acct.did).json()
    assert status["active"] is False and status["status"] == "desynchronized"
    # the host first serves nothing, then a repository signed by someone else
    fake.wait_repo_requests(requests + 1)
    forger = FakeAccount(net.directory, fake.url, did=acct.did)
    forger.repo, forger.blocks = acct.repo, dict(acct.blocks)
    forger.next_commit(key=PrivateKey.generate(ES256K))
    fake.repos[acct.did] = forger.car()
    fake.wait_repo_requests(fake.repo_requests + 1)
    status = net.xrpc("com.atproto.sync.getRepoStatus", did=acct.did).json()
    assert status["status"] == "desynchronized"
    fake.repos[acct.did] = acct.car()
    sync = tap.until(lambda f: f.kind == "#sync" and f.body["did"] == acct.did)
    assert sync.body["rev"] == skipped_ahead.rev
    tap.until(lambda f: f.kind == "#account" and f.body["did"] == acct.did and f.body["active"])
    assert _head(net, acct.did) == {"cid": str(skipped_ahead.cid), "rev": skipped_ahead.rev}
    assert net.metrics()["resync_failures"] >= 2
    _valid(fake, tap, acct)  # the thread continues from the fetched head
    _check_stream(tap)


def test_identity_rotation_and_account_status(net: Net, fake: FakeHost, tap: Tap) -> None:
    acct = _account(net, fake)
    _valid(fake, tap, acct)
    # announced: #identity, then commits under the new key
    acct.update_identity(key=PrivateKey.generate(ES256K))
    fake.push("#identity", {"did": acct.did, "time": "2026-01-01T00:00:00.000Z"})
    out = tap.until(lambda f: f.kind == "#identity" and f.body["did"] == acct.did)
    assert out.body["handle"].endswith(".example.com")
    _valid(fake, tap, acct)
    # unannounced: the failed signature makes the relay read the document again
    acct.update_identity(key=PrivateKey.generate(ES256K))
    _valid(fake, tap, acct)
    # account status passes through and gates commits
    fake.push("#account", {"did": acct.did, "active": False, "status": "takendown"})
    tap.until(lambda f: f.kind == "#account" and f.body["did"] == acct.did)
    r = net.xrpc("com.atproto.sync.getLatestCommit", did=acct.did)
    assert r.status_code == 400 and r.json()["error"] == "RepoTakendown"
    status = net.xrpc("com.atproto.sync.getRepoStatus", did=acct.did).json()
    assert status["active"] is False and status["status"] == "takendown"
    before = _dropped(net, fake).get("account-inactive", 0)
    _send(fake, acct.next_commit(advance=False))
    fake.push("#account", {"did": acct.did, "active": True})
    tap.until(lambda f: f.kind == "#account" and f.body["did"] == acct.did and f.body["active"])
    assert _dropped(net, fake).get("account-inactive", 0) == before + 1
    _valid(fake, tap, acct)
    _check_stream(tap)


def test_sync_event_resets_the_account(net: Net, fake: FakeHost, tap: Tap) -> None:
    acct = _account(net, fake)
    _valid(fake, tap, acct)
    acct.next_commit()
    head = acct.next_commit()
    forged = FakeAccount(net.directory, fake.url, did=acct.did)
    forged.repo = acct.repo
    bad = forged.next_commit(key=PrivateKey.generate(ES256K), advance=False)
    before = _dropped(net, fake).get("bad-signature", 0)
    fake.push("#sync", {"did": acct.did, "rev": bad.rev, "blocks": sync_event_car(bad.commit)})
    fake.push("#sync", {"did": acct.did, "rev": head.rev, "blocks": sync_event_car(head.commit)})
    out = tap.until(lambda f: f.kind == "#sync" and f.body["did"] == acct.did)
    assert out.body["rev"] == head.rev
    assert _dropped(net, fake).get("bad-signature", 0) == before + 1
    assert _head(net, acct.did) == {"cid": str(head.cid), "rev": head.rev}
    _valid(fake, tap, acct)


def test_the_relay_follows_an_account_to_its_new_host(net: Net, fake: FakeHost, tap: Tap) -> None:
    new_host = net.hosts[1]
    assert net.crawl(new_host.url).status_code == 200
    acct = _account(net, fake)
    marker = _account(net, fake)
    _valid(fake, tap, acct)
    acct.update_identity(host=new_host.url)
    new_host.push("#identity", {"did": acct.did})
    tap.until(lambda f: f.kind == "#identity" and f.body["did"] == acct.did)
    _valid(new_host, tap, acct)
    before = _dropped(net, fake).get("not-account-host", 0)
    _send(fake, acct.next_commit(advance=False))  # the old host goes on as if
    _valid(fake, tap, marker)
    assert _dropped(net, fake).get("not-account-host", 0) == before + 1
    _valid(new_host, tap, acct)
    assert net.xrpc("com.atproto.sync.getRepoStatus", did=acct.did).json()["active"] is True
    hosts = {
        h["hostname"]: h
        for h in httpx.get(f"{net.relay}/xrpc/com.atproto.sync.listHosts").json()["hosts"]
    }
    assert hosts[new_host.url.removeprefix("http://")]["accountCount"] >= 1


def test_a_host_whose_stream_restarted_is_read_from_its_start(
    net: Net, fake: FakeHost, tap: Tap
) -> None:
    acct = _account(net, fake)
    _valid(fake, tap, acct)
    fake.push_raw(encode_error_frame("FutureCursor", "Cursor in the future."))
    result = acct.next_commit()
    frame = cbor.encode({"op": 1, "t": "#commit"}) + cbor.encode({**commit_body(result), "seq": 1})
    fake.push_raw(frame, seq=1)  # numbered from 1 again, as a host with a new store would
    tap.commit_of(acct.did, result.rev)
    assert net.host_metrics(fake.url)["cursor"] == 1
    _valid(fake, tap, acct)
