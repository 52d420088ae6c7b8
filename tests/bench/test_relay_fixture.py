"""The simulated hosts' frames are what a real PDS would send: every one passes the
sync v1.1 verification (signature, slice, inversion to ``prevData``) with the key the
account's genesis operation lists, and the cache is reused only when it is big enough."""

from __future__ import annotations

import json
import time
from pathlib import Path

from plaza.atproto import cbor
from plaza.atproto.crypto import PublicKey
from plaza.atproto.plc import did_for_genesis, parse_operation
from plaza.atproto.sync import parse_ops, verify_commit_event
from plaza.atproto.tid import decode_tid
from plaza.bench.relay_fixture import FixtureSpec, build_host, ensure_fixture, load_host


def test_every_frame_verifies_against_the_genesis_key() -> None:
    spec = FixtureSpec(hosts=1, accounts=3, records=30, commits=12)
    host = build_host(spec, 0, time.time())
    assert len(host.frames) == 36
    last_rev: dict[str, str] = {}
    actions: set[str] = set()
    for k, frame in enumerate(host.frames):
        header, body = cbor.decode_multi(frame)
        assert header == {"op": 1, "t": "#commit"}
        account = host.accounts[host.owners[k]]
        genesis = parse_operation(account.genesis)
        assert did_for_genesis(genesis) == account.did == body["repo"]
        key = PublicKey.from_did_key(genesis.verification_methods["atproto"])
        ops = parse_ops(body["ops"], v11=True)
        verified = verify_commit_event(
            body["blocks"], ops, body["prevData"], body["commit"], key, body["repo"],
            rev=body["rev"],
        )  # fmt: skip
        assert verified.signature_checked and verified.inverted
        assert body["seq"] == k + 1 and body["rev"] == host.revs[k]
        assert body["rev"] > last_rev.get(account.did, "") and body["since"] is not None
        last_rev[account.did] = body["rev"]
        actions.update(op.action for op in ops)
    assert actions == {"create", "update", "delete"}
    # revs are TIDs in the past, so a relay's "not in the future" check passes
    assert max(decode_tid(r)[0] for r in host.revs) < time.time_ns() // 1000


def test_cache_is_reused_when_large_enough(tmp_path: Path) -> None:
    small = FixtureSpec(hosts=2, accounts=2, records=5, commits=3)
    directory = ensure_fixture(small, tmp_path, workers=1)
    built = json.loads((directory / "manifest.json").read_text())["built"]
    fewer = FixtureSpec(hosts=2, accounts=2, records=5, commits=2)
    assert ensure_fixture(fewer, tmp_path, workers=1) == directory
    assert json.loads((directory / "manifest.json").read_text())["built"] == built
    host = load_host(directory, 1, frames=3)
    assert len(host.frames) == len(host.revs) == 3 and len(host.cars) == 2
    more = FixtureSpec(hosts=2, accounts=2, records=5, commits=4)
    assert ensure_fixture(more, tmp_path, workers=1) == directory
    assert json.loads((directory / "manifest.json").read_text())["commits"] == 4
    assert len(load_host(directory, 0).frames) == 8
