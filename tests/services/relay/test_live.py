"""The relay against real PDSs: their commits come out of its firehose verified and
renumbered, readable by the atproto SDK, and its XRPC methods describe what it saw."""

from __future__ import annotations

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from atproto import firehose_models, models, parse_subscribe_repos_message
from plaza.services.relay.frames import decode_frame
from tests.services.relay.conftest import Net, Tap, firehose


def _latest(url: str, did: str) -> dict[str, str]:
    r = httpx.get(f"{url}/xrpc/com.atproto.sync.getLatestCommit", params={"did": did})
    assert r.status_code == 200, r.text
    body: dict[str, str] = r.json()
    return body


def test_commits_of_a_real_pds_arrive_verified_and_renumbered(net: Net) -> None:
    acct = net.new_account(0)
    revs = [net.post(acct, f"post {i}")["commit"]["rev"] for i in range(3)]
    tap = Tap(net.relay, 0)
    try:
        tap.commit_of(acct["did"], revs[-1])
    finally:
        tap.close()
    # the SDK reads the relay's frames as it reads a PDS's
    with firehose(net.relay, 0) as ws:
        messages = []
        while len(messages) < len(tap.seen):
            frame = firehose_models.Frame.from_bytes(ws.recv(timeout=10))
            assert isinstance(frame, firehose_models.MessageFrame)
            messages.append(parse_subscribe_repos_message(frame))
    seqs = [m.seq for m in messages]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # no gap, no duplicate
    commits = [
        m
        for m in messages
        if isinstance(m, models.ComAtprotoSyncSubscribeRepos.Commit) and m.repo == acct["did"]
    ]
    assert [c.rev for c in commits][-3:] == revs
    assert all(c.prev_data is not None for c in commits[-3:])
    head = _latest(net.pds[0], acct["did"])
    assert _latest(net.relay, acct["did"]) == head
    status = net.xrpc("com.atproto.sync.getRepoStatus", did=acct["did"]).json()
    assert status == {"did": acct["did"], "active": True, "rev": head["rev"]}
    repos = net.xrpc("com.atproto.sync.listRepos", limit=1000).json()["repos"]
    assert {"did": acct["did"], "head": head["cid"], "rev": head["rev"], "active": True} in repos
    host = net.host_metrics(net.pds[0])
    assert host["dropped"] == {} and host["status"] == "active"
    assert net.metrics()["verified"] >= 3
    verifier = net.parts.relay.verifier
    assert not verifier.parallel or getattr(verifier, "batches", 0) > 0


def test_request_crawl_follows_a_checked_host(net: Net) -> None:
    pds2 = net.pds[1].removeprefix("http://")
    assert net.crawl(pds2).status_code == 200
    assert net.crawl(pds2).status_code == 200  # asking again changes nothing
    acct = net.new_account(1)
    rev = net.post(acct, "on the second host", 1)["commit"]["rev"]
    tap = Tap(net.relay, None)
    try:
        if net.xrpc("com.atproto.sync.getLatestCommit", did=acct["did"]).status_code != 200:
            tap.commit_of(acct["did"], rev)
    finally:
        tap.close()
    assert _latest(net.relay, acct["did"]) == _latest(net.pds[1], acct["did"])
    status = net.xrpc("com.atproto.sync.getHostStatus", hostname=pds2).json()
    assert status["hostname"] == pds2 and status["status"] == "active"
    assert status["accountCount"] >= 1 and status["seq"] >= 1
    hosts = net.xrpc("com.atproto.sync.listHosts").json()["hosts"]
    assert pds2 in [h["hostname"] for h in hosts]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"hostname": "127.0.0.1:1"}, "HostUnreachable"),
        ({"hostname": "http://127.0.0.1:1/some/path"}, "InvalidRequest"),
        ({"hostname": "ftp://127.0.0.1:21"}, "InvalidRequest"),
        ({"hostname": 5}, "InvalidRequest"),
        ({}, "InvalidRequest"),
    ],
)
def test_request_crawl_refuses_what_is_not_a_host(net: Net, body: object, code: str) -> None:
    before = net.xrpc("com.atproto.sync.listHosts").json()
    r = httpx.post(f"{net.relay}/xrpc/com.atproto.sync.requestCrawl", json=body)
    assert r.status_code == 400 and r.json()["error"] == code, r.text
    assert net.xrpc("com.atproto.sync.listHosts").json() == before


def test_cursor_rules(net: Net) -> None:
    acct = net.new_account(0)
    rev = net.post(acct, "cursor")["commit"]["rev"]
    tap = Tap(net.relay, 0)
    newest = tap.commit_of(acct["did"], rev).body["seq"]
    tap.close()
    seqs = [f.body["seq"] for f in tap.seen]
    assert seqs == list(range(1, newest + 1))
    with firehose(net.relay, newest + 100) as ws:
        frame = decode_frame(ws.recv(timeout=10))
        assert frame.kind == "error" and frame.body["error"] == "FutureCursor"
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=10)
    with firehose(net.relay, None) as ws:  # no cursor: only what comes next
        rev2 = net.post(acct, "live")["commit"]["rev"]
        frame = decode_frame(ws.recv(timeout=10))
        assert frame.body["seq"] > newest and frame.body.get("rev") == rev2
    ws_url = net.relay.replace("http", "ws") + "/xrpc/com.atproto.sync.subscribeRepos"
    for bad in ("-1", "x", "1" * 17):
        with connect(f"{ws_url}?cursor={bad}") as ws:
            frame = decode_frame(ws.recv(timeout=10))
            assert frame.kind == "error" and frame.body["error"] == "InvalidRequest"


@pytest.mark.parametrize(
    ("nsid", "params", "status", "code"),
    [
        (
            "com.atproto.sync.getRepoStatus",
            {"did": "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"},
            400,
            "RepoNotFound",
        ),
        ("com.atproto.sync.getRepoStatus", {"did": "not-a-did"}, 400, "InvalidRequest"),
        ("com.atproto.sync.getRepoStatus", {}, 400, "InvalidRequest"),
        (
            "com.atproto.sync.getLatestCommit",
            {"did": "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"},
            400,
            "RepoNotFound",
        ),
        (
            "com.atproto.sync.getHostStatus",
            {"hostname": "nowhere.example.com"},
            400,
            "HostNotFound",
        ),
        ("com.atproto.sync.getHostStatus", {"hostname": "a b"}, 400, "InvalidRequest"),
        ("com.atproto.sync.listRepos", {"limit": "0"}, 400, "InvalidRequest"),
        ("com.atproto.sync.listHosts", {"limit": "x"}, 400, "InvalidRequest"),
        ("com.atproto.sync.requestCrawl", {}, 400, "InvalidRequest"),
        ("com.atproto.sync.getRepo", {}, 501, "MethodNotImplemented"),
    ],
)
def test_xrpc_errors_are_named(
    net: Net, nsid: str, params: dict[str, str], status: int, code: str
) -> None:
    r = net.xrpc(nsid, **params)
    assert r.status_code == status and r.json()["error"] == code, r.text
    assert r.json()["message"]


def test_list_repos_pages(net: Net) -> None:
    tap = Tap(net.relay, None)
    try:
        for _ in range(2):
            acct = net.new_account(0)
            tap.commit_of(acct["did"], net.post(acct, "page")["commit"]["rev"])
    finally:
        tap.close()
    everything = net.xrpc("com.atproto.sync.listRepos", limit=1000).json()["repos"]
    page = net.xrpc("com.atproto.sync.listRepos", limit=1).json()
    assert page["repos"] == everything[:1] and page["cursor"] == everything[0]["did"]
    rest = net.xrpc("com.atproto.sync.listRepos", limit=1000, cursor=page["cursor"]).json()
    assert rest["repos"] == everything[1:]
    assert [r["did"] for r in everything] == sorted(r["did"] for r in everything)


def test_health(net: Net) -> None:
    for path in ("/_health", "/xrpc/_health"):
        body = httpx.get(net.relay + path).json()
        assert body["status"] == "ok" and body["hosts"] >= 1
