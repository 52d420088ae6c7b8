"""subscribeRepos over a real WebSocket: the SDK parses every commit, Plaza verifies it."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner
from websockets.sync.client import connect

from atproto import CAR, FirehoseSubscribeReposClient, firehose_models, models
from atproto import parse_subscribe_repos_message as parse_message
from plaza.atproto import cbor
from plaza.atproto.crypto import parse_did_key
from plaza.atproto.sync import verify_commit_body
from plaza.cli import app as cli
from tests.services.pds.conftest import Network
from tests.services.pds.firehose_reader import read_events


def _post(text: str) -> dict[str, Any]:
    return {"$type": "app.bsky.feed.post", "text": text, "createdAt": "2026-01-01T00:00:00.000Z"}


def _call(url: str, nsid: str, token: str, body: dict[str, Any]) -> dict[str, Any]:
    r = httpx.post(f"{url}/xrpc/{nsid}", json=body, headers={"authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    return r.json() if r.content else {}


def _raw_frames(url: str, cursor: int) -> list[bytes]:
    ws_url = url.replace("http://", "ws://") + "/xrpc/com.atproto.sync.subscribeRepos"
    frames: list[bytes] = []
    with connect(f"{ws_url}?cursor={cursor}") as ws:
        while True:
            try:
                frame = ws.recv(timeout=0.5)
            except TimeoutError:
                return frames
            assert isinstance(frame, bytes)
            frames.append(frame)


def test_sdk_firehose_parses_every_commit_and_each_slice_inverts(network: Network) -> None:
    url = network.pds[0]
    start = len(read_events(url, 0, quiet_s=0.3))
    received: list[Any] = []
    done = threading.Event()
    expected_commits = 7  # empty repo, 3 creates, 1 update, 1 delete, 1 applyWrites

    client = FirehoseSubscribeReposClient(
        {"cursor": start}, base_uri=url.replace("http://", "ws://") + "/xrpc"
    )

    def on_message(message: firehose_models.MessageFrame) -> None:
        parsed = parse_message(message)
        received.append(parsed)
        commits = [m for m in received if isinstance(m, models.ComAtprotoSyncSubscribeRepos.Commit)]
        if len(commits) >= expected_commits:
            done.set()
            client.stop()

    thread = threading.Thread(target=client.start, args=(on_message,), daemon=True)
    thread.start()

    acct = network.new_account(0, prefix="fh")
    did, token = acct["did"], acct["access"]
    uris = [
        _call(
            url,
            "com.atproto.repo.createRecord",
            token,
            {"repo": did, "collection": "app.bsky.feed.post", "record": _post(f"post {i}")},
        )["uri"]
        for i in range(3)
    ]
    rkey0 = uris[0].rsplit("/", 1)[1]
    _call(
        url,
        "com.atproto.repo.putRecord",
        token,
        {"repo": did, "collection": "app.bsky.feed.post", "rkey": rkey0, "record": _post("edited")},
    )
    _call(
        url,
        "com.atproto.repo.deleteRecord",
        token,
        {"repo": did, "collection": "app.bsky.feed.post", "rkey": uris[1].rsplit("/", 1)[1]},
    )
    _call(
        url,
        "com.atproto.repo.applyWrites",
        token,
        {
            "repo": did,
            "writes": [
                {
                    "$type": "com.atproto.repo.applyWrites#create",
                    "collection": "app.bsky.feed.post",
                    "value": _post("batched"),
                },
                {
                    "$type": "com.atproto.repo.applyWrites#delete",
                    "collection": "app.bsky.feed.post",
                    "rkey": uris[2].rsplit("/", 1)[1],
                },
                {
                    "$type": "com.atproto.repo.applyWrites#create",
                    "collection": "app.bsky.actor.profile",
                    "rkey": "self",
                    "value": {"$type": "app.bsky.actor.profile", "displayName": "FH"},
                },
            ],
        },
    )
    assert done.wait(20), f"got only {len(received)} messages"
    thread.join(5)

    mine = [
        m for m in received if getattr(m, "did", None) == did or getattr(m, "repo", None) == did
    ]
    kinds = [type(m).__name__ for m in mine]
    assert kinds == ["Identity", "Account", *["Commit"] * expected_commits], kinds
    commits = [m for m in mine if isinstance(m, models.ComAtprotoSyncSubscribeRepos.Commit)]
    for c in commits:
        assert c.rebase is False and c.too_big is False and c.blobs == []
        car = CAR.from_bytes(c.blocks)
        assert str(car.root) == str(c.commit)
    assert [len(c.ops) for c in commits] == [0, 1, 1, 1, 1, 1, 3]
    assert [op.action for op in commits[4].ops] == ["update"]
    assert commits[4].ops[0].prev is not None

    # Plaza's verifier: every slice (same events, raw frames) inverts to its prevData.
    key = parse_did_key(
        httpx.get(f"{network.directory}/{did}/data").json()["verificationMethods"]["atproto"]
    )
    verified = 0
    for frame in _raw_frames(url, start):
        header, body = cbor.decode_multi(frame)
        if header.get("t") != "#commit" or body["repo"] != did:
            continue
        if body.get("prevData") is None:  # the repository's very first commit
            assert body["ops"] == [] and body["since"] is None
            continue
        result = verify_commit_body(body, key)
        assert result.inverted and result.signature_checked
        verified += 1
    assert verified == expected_commits - 1


def test_cursor_rules(network: Network) -> None:
    url = network.pds[0]
    network.new_account(0, prefix="cur")
    ws_url = url.replace("http://", "ws://") + "/xrpc/com.atproto.sync.subscribeRepos"
    # A cursor from the future: an error frame, then the server closes.
    with connect(f"{ws_url}?cursor=999999999") as ws:
        header, body = cbor.decode_multi(ws.recv(timeout=5))
        assert header == {"op": -1}
        assert body["error"] == "FutureCursor"
    # Replay from 0 gives every retained event, in order, without gaps in what we saw.
    events = read_events(url, 0)
    seqs = [e.seq for e in events]
    assert seqs == sorted(seqs) and len(seqs) == len(set(seqs)) and seqs[0] == 1
    # After pruning, an old cursor gets #info OutdatedCursor before the replay.
    ctx = network.apps[0].state.pds
    ctx.store.prune_events(int(time.time()) + 10)
    with connect(f"{ws_url}?cursor=1") as ws:
        header, body = cbor.decode_multi(ws.recv(timeout=5))
        assert header == {"op": 1, "t": "#info"}
        assert body["name"] == "OutdatedCursor"
    # Live subscribers (no cursor) see only what happens after they connect.
    with connect(ws_url) as ws:
        with pytest.raises(TimeoutError):
            ws.recv(timeout=0.3)
        network.new_account(0, prefix="live")
        header, _ = cbor.decode_multi(ws.recv(timeout=5))
        assert header == {"op": 1, "t": "#identity"}


def test_get_repo_is_a_verifiable_car(network: Network, tmp_path: Path) -> None:
    import libipld

    from plaza.atproto.repo_verify import import_car

    url = network.pds[1]
    acct = network.new_account(1, prefix="car")
    for i in range(5):
        _call(
            url,
            "com.atproto.repo.createRecord",
            acct["access"],
            {"repo": acct["did"], "collection": "app.bsky.feed.post", "record": _post(str(i))},
        )
    car = httpx.get(f"{url}/xrpc/com.atproto.sync.getRepo", params={"did": acct["did"]}).content
    key = parse_did_key(
        httpx.get(f"{network.directory}/{acct['did']}/data").json()["verificationMethods"][
            "atproto"
        ]
    )
    repo = import_car(car, did=acct["did"], key=key)
    assert repo.signature_checked and len(repo.records) == 5
    assert repo.unreferenced_blocks == 0
    _, blocks = libipld.decode_car(car)
    assert len(blocks) == len(repo.blocks)
    car_file = tmp_path / "repo.car"
    car_file.write_bytes(car)
    verdict = CliRunner().invoke(
        cli,
        [
            "repo",
            "verify",
            str(car_file),
            "--did",
            acct["did"],
            "--directory",
            network.directory,
            "--json",
        ],
    )
    assert verdict.exit_code == 0, verdict.output
    summary = json.loads(verdict.output)
    assert summary["records"] == 5 and summary["signature"].startswith("verified against")
    # since=rev: only what came after
    rev = repo.rev
    _call(
        url,
        "com.atproto.repo.createRecord",
        acct["access"],
        {"repo": acct["did"], "collection": "app.bsky.feed.post", "record": _post("late")},
    )
    diff = httpx.get(
        f"{url}/xrpc/com.atproto.sync.getRepo", params={"did": acct["did"], "since": rev}
    ).content
    _, diff_blocks = libipld.decode_car(diff)
    assert 1 < len(diff_blocks) < len(blocks)
    posts = [b for b in diff_blocks.values() if isinstance(b, dict) and b.get("text") == "late"]
    assert len(posts) == 1


def test_subscribers_past_the_limit_are_refused(tmp_path: Path) -> None:
    """Two subscribers at most: a third gets TooManySubscribers and close code 1013 (try
    again later) while the first two stay served; once one leaves, a newcomer is served."""
    from websockets.exceptions import ConnectionClosed

    from plaza.services.directory import DirectorySettings
    from plaza.services.directory import create_app as create_directory
    from plaza.services.pds import PdsSettings, create_app
    from plaza.services.runner import ServedApp, ServerThread

    directory = ServedApp("directory", create_directory(DirectorySettings.for_data_dir(tmp_path)))
    with ServerThread([directory]) as (dir_url,):
        pds = create_app(
            PdsSettings(
                data_dir=tmp_path / "pds",
                public_url="http://127.0.0.1:1",
                directory_url=dir_url,
                max_firehose_subscribers=2,
            )
        )
        with ServerThread([ServedApp("pds", pds)]) as (url,):
            ws_url = url.replace("http://", "ws://") + "/xrpc/com.atproto.sync.subscribeRepos"

            def create_account(name: str) -> None:
                r = httpx.post(
                    f"{url}/xrpc/com.atproto.server.createAccount",
                    json={"handle": f"{name}.test", "password": "pw-12345678"},
                    timeout=30,
                )
                assert r.status_code == 200, r.text

            with connect(ws_url) as first, connect(f"{ws_url}?cursor=0") as second:
                for _ in range(3):  # refused every time while both stay
                    with connect(ws_url) as third:
                        header, body = cbor.decode_multi(third.recv(timeout=5))
                        assert header == {"op": -1}
                        assert body["error"] == "TooManySubscribers", body
                        with pytest.raises(ConnectionClosed) as closed:
                            third.recv(timeout=5)
                        assert closed.value.rcvd is not None
                        assert closed.value.rcvd.code == 1013
                # The two admitted subscribers are served: both see a new account.
                create_account("capped")
                for ws in (first, second):
                    header, _ = cbor.decode_multi(ws.recv(timeout=5))
                    assert header == {"op": 1, "t": "#identity"}
                second.close()
                # The slot frees once the server sees the close; a newcomer gets in and
                # its replay from 0 starts.
                deadline = time.monotonic() + 10
                while True:
                    with connect(f"{ws_url}?cursor=0") as newcomer:
                        header, _ = cbor.decode_multi(newcomer.recv(timeout=5))
                    if header != {"op": -1} or time.monotonic() > deadline:
                        break
                    time.sleep(0.05)
                assert header == {"op": 1, "t": "#identity"}, "the slot was never freed"
            metrics = httpx.get(f"{url}/metrics").text
            (refused,) = [
                ln
                for ln in metrics.splitlines()
                if ln.startswith("plaza_pds_firehose_refused_total")
            ]
            assert float(refused.split()[1]) >= 3  # and any newcomer that came too early


def test_get_repo_streams_a_large_repository(network: Network) -> None:
    """A repository of many pages of blocks arrives in chunks as it is read (no length
    known up front), byte for byte the CAR the store holds, and verifies."""
    from plaza.atproto.car import write_car
    from plaza.atproto.cid import CID
    from plaza.atproto.repo_verify import import_car
    from plaza.services.pds.store_repo import BLOCK_PAGE

    url = network.pds[0]
    acct = network.new_account(0, prefix="big")
    did = acct["did"]
    n = 1200
    for start in range(0, n, 200):
        writes = [
            {
                "$type": "com.atproto.repo.applyWrites#create",
                "collection": "app.bsky.feed.post",
                "value": _post(f"post {i} " + "x" * 200),
            }
            for i in range(start, start + 200)
        ]
        _call(url, "com.atproto.repo.applyWrites", acct["access"], {"repo": did, "writes": writes})
    chunks: list[bytes] = []
    with httpx.stream(
        "GET", f"{url}/xrpc/com.atproto.sync.getRepo", params={"did": did}, timeout=60
    ) as r:
        assert r.status_code == 200
        assert r.headers["content-type"] == "application/vnd.ipld.car"
        assert "content-length" not in r.headers  # streamed, not built first
        assert r.headers.get("transfer-encoding") == "chunked"
        chunks = list(r.iter_raw())
    car = b"".join(chunks)
    # What the store holds, assembled independently: the commit, then every other block
    # in CID order.
    ctx = network.apps[0].state.pds
    root = ctx.store.get_root(did)
    commit = ctx.store.get_block(did, root.commit_cid)
    rest = [(CID(c), d) for c, d in ctx.store.iter_blocks(did) if c != root.commit_cid]
    assert len(rest) > 2 * BLOCK_PAGE  # several pages
    assert car == write_car([CID(root.commit_cid)], [(CID(root.commit_cid), commit), *rest])
    key = parse_did_key(
        httpx.get(f"{network.directory}/{did}/data").json()["verificationMethods"]["atproto"]
    )
    repo = import_car(car, did=did, key=key)
    assert repo.signature_checked and len(repo.records) == n
    sdk = CAR.from_bytes(car)
    assert str(sdk.root) == str(CID(root.commit_cid)) and len(sdk.blocks) == len(rest) + 1
