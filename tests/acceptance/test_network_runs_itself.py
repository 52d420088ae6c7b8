"""Issue 14's acceptance run: the network runs itself.

Everything is real and runs as the README says: ``plaza up`` (one OS process per
service, short timings), the atproto SDK as the members' client, ``plaza chaos kill``
for a host's death, nobody acting afterwards.

1. Nine people sign up at the entryway without choosing a host (the agents place them;
   each account lists the DAO's recovery key below the host's). Each posts; one follows
   another.
2. Once the archive holds every account's head, the PDS hosting most of them is killed
   with SIGKILL (``plaza chaos kill``).
3. With nobody acting, the agents' loop counts the host dead after ``--dead-after``
   seconds and restores each of its accounts from the archive to a live host: the DID
   document names a live host, which serves the same records (same CIDs). Well within
   300 s.
4. Through the entryway the members log in again with the same handle and password and
   post; the follower sees the new post in the timeline.
5. The ledger verifies, and the agents' log names every placement and move with its
   reason, and the purchase that replaces the dead host's capacity.

On the way, one member posts an obvious scam, and the app view shows the network
labeler's ``scam`` label on it.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from atproto import Client, models
from tests.acceptance.plaza_up import PLAZA, Up, until

RECOVERY_BOUND_S = 300.0
DEAD_AFTER_S = 10
MEMBERS = 9
SCAM = (
    "CONGRATULATIONS!!! You have WON a $1,000 Walmart gift card. Claim your prize now at "
    "http://free-prize.example/claim or call +1 (555) 201-7788"
)


@pytest.fixture
def network(tmp_path: Path) -> Iterator[Up]:
    timings = ["--epoch", "60", "--probe-interval", "5", "--dead-after", str(DEAD_AFTER_S)]
    up = Up(tmp_path / "plaza", timings)
    try:
        until("plaza up to start every service", up.ready)
        yield up
    finally:
        up.stop()


def _run(*args: str) -> str:
    done = subprocess.run([*PLAZA, *args], capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _host(directory: str, did: str) -> str:
    doc = httpx.get(f"{directory}/{did}/data").json()
    return str(doc["services"]["atproto_pds"]["endpoint"]).rstrip("/")


def _records(pds: str, did: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for collection in ("app.bsky.feed.post", "app.bsky.graph.follow"):
        resp = httpx.get(
            f"{pds}/xrpc/com.atproto.repo.listRecords",
            params={"repo": did, "collection": collection, "limit": 100},
        )
        resp.raise_for_status()
        out |= {r["uri"]: r["cid"] for r in resp.json()["records"]}
    return out


def _head(base: str, did: str) -> str | None:
    resp = httpx.get(f"{base}/xrpc/com.atproto.sync.getLatestCommit", params={"did": did})
    return str(resp.json()["cid"]) if resp.status_code == 200 else None


def _sign_up(net: dict[str, Any], people: list[dict[str, str]]) -> dict[str, str]:
    """Each person gets an account at the entryway without naming a host; returns handle
    -> DID."""
    dids = {}
    for p in people:
        made = Client(base_url=net["entryway"]).com.atproto.server.create_account(
            models.ComAtprotoServerCreateAccount.Data(
                handle=p["handle"], password=p["password"], email=p["email"]
            )
        )
        dids[p["handle"]] = made.did
    return dids


def _login(net: dict[str, Any], p: dict[str, str]) -> Client:
    """A session for ``p`` through the entryway (the SDK goes on at the member's host)."""
    client = Client(base_url=net["entryway"])
    client.login(p["handle"], p["password"])
    return client


def test_nine_members_survive_their_host_being_killed(network: Up) -> None:
    net = network.endpoints()
    directory = net["directory"]
    assert {
        "dao",
        "market",
        "relay",
        "archive",
        "appview",
        "entryway",
        "web",
        "labeler",
        "labeler_did",
        "ledger",
    } <= net.keys()
    assert len(net["pds"]) == 3 and "agents" in net["pids"]
    suffix = secrets.token_hex(3)
    people = [
        {"handle": f"m{i}-{suffix}.test", "email": f"m{i}-{suffix}@example.com",
         "password": f"password {i} {secrets.token_hex(6)}"}
        for i in range(MEMBERS)
    ]  # fmt: skip

    # 1. Sign-ups choosing no host; each member posts.
    dids = _sign_up(net, people)
    hosts = {h: _host(directory, did) for h, did in dids.items()}
    assert set(hosts.values()) <= {u.rstrip("/") for u in net["pds"]}
    clients = {}
    for p in people:
        client = _login(net, p)
        client.send_post(f"hello from {p['handle']}")
        clients[p["handle"]] = client
    scam = clients[people[0]["handle"]].send_post(SCAM)  # for the network's labeler
    # 2. The host with most of them; one member elsewhere follows one of them.
    counts = {url: sum(1 for h in hosts.values() if h == url) for url in set(hosts.values())}
    doomed = max(sorted(counts), key=lambda u: counts[u])
    victims = sorted(h for h, url in hosts.items() if url == doomed)
    others = sorted(h for h, url in hosts.items() if url != doomed)
    assert victims and others
    star, follower = victims[0], others[0]
    clients[follower].follow(dids[star])
    clients[star].send_post("my last post before my host dies")
    acked = time.monotonic()
    before = {h: _records(doomed, dids[h]) for h in victims}
    heads = {h: _head(doomed, dids[h]) for h in victims}
    for h in victims:
        at_head = lambda h=h: True if _head(net["archive"], dids[h]) == heads[h] else None  # noqa: E731
        until(f"the archive at {h}'s head", at_head)
    archive_lag_s = time.monotonic() - acked
    name = next(n for n, url in net["hosts"].items() if url.rstrip("/") == doomed)

    # 3. SIGKILL; nobody acts.
    killed = _run("chaos", "kill", name, "--data-dir", str(network.data_dir))
    assert f"killed {name}" in killed
    t0 = time.monotonic()
    live = [u.rstrip("/") for u in net["pds"] if u.rstrip("/") != doomed]

    def restored() -> bool | None:
        for h in victims:
            where = _host(directory, dids[h])
            if where not in live or _records(where, dids[h]) != before[h]:
                return None
        return True

    until("every account of the killed host restored", restored, RECOVERY_BOUND_S)
    recovery_s = time.monotonic() - t0
    print(
        f"\nrecovered {len(victims)} accounts of {name} in {recovery_s:.1f} s "
        f"(dead after {DEAD_AFTER_S} s); the archive held every acknowledged write "
        f"{archive_lag_s:.1f} s after it was acknowledged; records lost: 0"
    )
    assert recovery_s < RECOVERY_BOUND_S
    assert network.endpoints()["exited"][name]["status"] == "killed by SIGKILL"

    # 4. Through the entryway: the same handle and password, a new post, the follower
    # sees it.
    again = _login(net, next(p for p in people if p["handle"] == star))
    post = again.send_post("back on a live host")

    def seen() -> bool | None:
        feed = clients[follower].get_timeline().feed
        return True if any(item.post.uri == post.uri for item in feed) else None

    until("the follower's timeline to show the new post", seen)

    # The network's labeler (started by plaza up under the DID genesis made) labelled
    # the scam, and the app view shows its label.
    def labelled() -> bool | None:
        views = clients[follower].get_posts([scam.uri]).posts
        labels = [(x.src, x.val) for v in views for x in v.labels or []]
        return True if labels == [(net["labeler_did"], "scam")] else None

    until("the app view to show the labeler's scam label", labelled)

    # 5. The ledger verifies; the agents' log names every move with its reason.
    report = json.loads(_run("ledger", "verify", net["ledger"], "--json"))
    assert report["ok"], report
    log = [json.loads(line) for line in _run("agents", "log", "--db", net["ledger"], "--json")
           .splitlines()]  # fmt: skip
    placed = [e for e in log if e["kind"] == "placement.assign" and e["outcome"] == "executed"]
    assert placed and all(e["reason"] and e["verdict"] == "allow" for e in placed)
    moves = [e for e in log if e["kind"] == "migration.batch" and e["outcome"] == "executed"]
    assert moves, log
    moved = " ".join(e["detail"] for e in moves)
    for h in victims:
        assert dids[h] in moved
    for e in moves:
        assert e["rule"].startswith("migration.restore")
        assert "unreachable" in e["reason"] or "gone" in e["reason"]
        assert e["subject"].startswith("did:") and isinstance(e["seq"], int)
    replaced = [e for e in log if e["kind"] == "capacity.procure" and e["outcome"] == "executed"]
    assert any(e["rule"] == "capacity.replace-lost" for e in replaced), replaced
