"""Sync v1.1: commit events verified by inverting their ops on the CAR slice."""

from __future__ import annotations

import contextlib
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plaza.atproto import datamodel
from plaza.atproto.car import read_car, write_car
from plaza.atproto.cid import CID
from plaza.atproto.commit import sign_commit
from plaza.atproto.crypto import PrivateKey
from plaza.atproto.errors import (
    BadSignatureError,
    CarRootError,
    CommitError,
    MissingBlockError,
)
from plaza.atproto.mst import MST, Op
from plaza.atproto.repo import Write, apply_writes
from plaza.atproto.sync import (
    LegacyOp,
    check_ops,
    encode_ops,
    invert_ops,
    parse_ops,
    sync_event_car,
    verify_commit_body,
    verify_commit_event,
)
from plaza.errors import PlazaError
from tests.atproto.repo_helpers import DID, POST, Host, post, tid
from tests.vectors import load_json, params, vector_path

PROOFS = load_json("atproto-interop", "firehose", "commit-proof-fixtures.json")
FIREHOSE = sorted(vector_path("indigo-testdata", "firehose-commit").glob("*.json"))


def _by_cid(action: str, path: str, cid: CID) -> Write:
    collection, _, rkey = path.partition("/")
    return Write(action, collection, rkey, cid=cid)  # type: ignore[arg-type]


@pytest.mark.parametrize("fx", params(PROOFS, lambda f: f["comment"]))
def test_commit_proof_fixtures_through_apply_writes(fx: dict[str, Any]) -> None:
    leaf = CID.decode(fx["leafValue"])
    key = PrivateKey.generate()
    blocks: dict[CID, bytes] = {}
    first = apply_writes(
        blocks, None, [_by_cid("create", k, leaf) for k in fx["keys"]], key, tid(1), did=DID
    )
    assert str(first.data) == fx["rootBeforeCommit"]
    blocks.update(first.new_blocks)
    writes = [_by_cid("create", k, leaf) for k in fx["adds"]]
    writes += [Write.delete(*k.split("/")) for k in fx["dels"]]
    result = apply_writes(blocks, first.cid, writes, key, tid(2))
    assert str(result.data) == fx["rootAfterCommit"]
    assert result.prev_data == first.data and result.since == first.rev
    assert result.prev_commit == first.cid and result.record_blocks == {}
    slice_blocks = read_car(result.car_slice).blocks
    assert {str(c) for c in slice_blocks} - {str(result.cid)} == set(fx["blocksInProof"])
    assert invert_ops(slice_blocks, result.data, result.ops) == first.data
    assert check_ops(slice_blocks, result.data, result.ops, first.data) is True
    # the fixture's record block is unknown, so the full event check stops there
    if fx["adds"]:
        with pytest.raises(MissingBlockError, match="record"):
            verify_commit_event(
                result.car_slice, result.ops, first.data, result.cid, key.public_key, DID
            )


_RKEYS = st.integers(0, 400).map(lambda i: f"3k{i:04d}")
_KEY = PrivateKey.generate()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    start=st.sets(_RKEYS, max_size=60),
    changes=st.dictionaries(_RKEYS, st.sampled_from(["put", "delete"]), max_size=12),
    text=st.text(max_size=20),
)
def test_apply_then_invert_returns_to_the_old_root(
    start: set[str], changes: dict[str, str], text: str
) -> None:
    blocks: dict[CID, bytes] = {}
    first = apply_writes(
        blocks,
        None,
        [Write.create(POST, r, post(i)) for i, r in enumerate(start)],
        _KEY,
        tid(1),
        did=DID,
    )
    blocks.update(first.new_blocks)
    writes: list[Write] = []
    for rkey, change in changes.items():
        value = {**post(0), "text": text + rkey}
        if change == "delete" and rkey in start:
            writes.append(Write.delete(POST, rkey))
        elif change == "put":
            action = Write.update if rkey in start else Write.create
            writes.append(action(POST, rkey, value))
    result = apply_writes(blocks, first.cid, writes, _KEY, tid(2), did=DID)
    assert result.prev_data == first.data and len(result.ops) == len(writes)
    slice_blocks = read_car(result.car_slice).blocks
    assert invert_ops(slice_blocks, result.data, result.ops) == first.data
    verified = verify_commit_event(
        result.car_slice, result.ops, result.prev_data, result.cid, _KEY.public_key, DID
    )
    assert verified.inverted and verified.data == result.data
    assert parse_ops(encode_ops(result.ops), v11=True) == result.ops
    assert all("prev" not in body for body in encode_ops(result.ops) if body["action"] == "create")
    # forward: the new root is the fresh build of the new record set
    blocks.update(result.new_blocks)
    expected = dict(MST.load(blocks, first.data).items())
    for op in result.ops:
        if op.cid is None:
            del expected[op.path]
        else:
            expected[op.path] = op.cid
    assert MST.build(expected.items()).root() == result.data == result.repo.data


def _event(result: Any) -> dict[str, Any]:
    return {
        "repo": DID,
        "commit": result.cid,
        "rev": result.rev,
        "since": result.since,
        "blocks": result.car_slice,
        "ops": [
            {"action": o.action, "path": o.path, "cid": o.cid, "prev": o.prev} for o in result.ops
        ],
        "prevData": result.prev_data,
    }


def test_host_commits_verify_by_inversion() -> None:
    host = Host()
    rng = random.Random(7)
    live: list[str] = []
    for step in range(60):
        writes: list[Write] = []
        for _ in range(rng.randint(1, 6)):
            choice = rng.random()
            if live and choice < 0.25:
                rkey = live.pop(rng.randrange(len(live)))
                writes.append(Write.delete(POST, rkey))
            elif live and choice < 0.4:
                rkey = rng.choice(live)
                if all(w.rkey != rkey for w in writes):
                    writes.append(Write.update(POST, rkey, post(-step)))
            else:
                rkey = f"3l{step:03d}{len(writes)}{rng.randrange(10**6)}"
                live.append(rkey)
                writes.append(Write.create(POST, rkey, post(step)))
        seen: set[str] = set()
        unique = [w for w in writes if not (w.rkey in seen or seen.add(w.rkey))]
        result = host.write(*unique)
        verified = verify_commit_body(_event(result), host.key.public_key)
        assert verified.inverted and verified.signature_checked
        assert verified.rev == result.rev and verified.data == result.data
        for op in verified.ops:
            if op.cid is not None:
                assert verified.record_block(op) == result.record_blocks[op.cid]


@pytest.fixture
def event() -> tuple[Host, Any]:
    host = Host()
    for i in range(30):
        host.write(Write.create(POST, f"3k{i:03d}", post(i)))
    result = host.write(
        Write.create(POST, "3k0105", post(105)),
        Write.update(POST, "3k007", post(1007)),
        Write.delete(POST, "3k020"),
    )
    return host, result


def test_tampered_events_are_refused(event: tuple[Host, Any]) -> None:
    host, result = event
    key = host.key.public_key
    good = (result.car_slice, result.ops, result.prev_data, result.cid, key, DID)
    assert verify_commit_event(*good).inverted

    wrong_prev = result.ops[0].cid  # any other CID
    with pytest.raises(CommitError, match="prevData"):
        verify_commit_event(result.car_slice, result.ops, wrong_prev, result.cid, key, DID)
    with pytest.raises(CommitError, match="prevData"):  # an op left out
        verify_commit_event(
            result.car_slice, result.ops[:2], result.prev_data, result.cid, key, DID
        )
    lying = (Op("create", result.ops[0].path, result.ops[1].cid), *result.ops[1:])
    with pytest.raises(CommitError):
        verify_commit_event(result.car_slice, lying, result.prev_data, result.cid, key, DID)
    with pytest.raises(BadSignatureError):
        verify_commit_event(
            result.car_slice,
            result.ops,
            result.prev_data,
            result.cid,
            PrivateKey.generate().public_key,
            DID,
        )
    with pytest.raises(CommitError, match="belongs"):
        verify_commit_event(
            result.car_slice, result.ops, result.prev_data, result.cid, key, "did:plc:x"
        )
    with pytest.raises(CarRootError):
        verify_commit_event(
            result.car_slice, result.ops, result.prev_data, result.prev_data, key, DID
        )
    with pytest.raises(CommitError, match="twice"):
        verify_commit_event(
            result.car_slice, (*result.ops, result.ops[0]), result.prev_data, result.cid, key, DID
        )

    blocks = read_car(result.car_slice).blocks
    node = next(c for c in result.node_blocks if c != result.data)
    thinner = write_car([result.cid], [(c, b) for c, b in blocks.items() if c != node])
    with pytest.raises(MissingBlockError):
        verify_commit_event(thinner, result.ops, result.prev_data, result.cid, key, DID)
    record = result.ops[0].cid
    no_record = write_car([result.cid], [(c, b) for c, b in blocks.items() if c != record])
    with pytest.raises(MissingBlockError, match="record"):
        verify_commit_event(no_record, result.ops, result.prev_data, result.cid, key, DID)


def test_body_shape_is_checked(event: tuple[Host, Any]) -> None:
    _host, result = event
    body = _event(result)
    assert verify_commit_body(body, None).signature_checked is False
    with pytest.raises(CommitError, match="prevData"):
        verify_commit_body({**body, "prevData": None}, None)
    with pytest.raises(CommitError):
        verify_commit_body({**body, "blocks": "text"}, None)
    with pytest.raises(CommitError):
        verify_commit_body({**body, "ops": [{"action": "explode", "path": "a/b"}]}, None)
    with pytest.raises(CommitError):
        verify_commit_body(
            {**body, "ops": [{"action": "create", "path": "no-slash", "cid": None, "prev": None}]},
            None,
        )
    with pytest.raises(CommitError, match="rev"):
        verify_commit_body({**body, "rev": tid(1)}, None)
    with pytest.raises(CommitError):
        verify_commit_body(
            {**body, "ops": [{"action": "update", "path": "a.b/c", "cid": None, "prev": None}]},
            None,
        )


def test_v11_creates_carry_no_prev_field(event: tuple[Host, Any]) -> None:
    _host, result = event
    body = _event(result)
    for op in body["ops"]:
        if op["action"] == "create":
            del op["prev"]  # the spec: a create's prev is absent, not null
    verified = verify_commit_body(body, None)
    assert verified.inverted
    assert not any(isinstance(op, LegacyOp) for op in verified.ops)


def test_too_many_ops() -> None:
    host = Host()
    cid = CID.compute(b"{}")
    ops = [Op("create", f"a.b/{i}", cid) for i in range(201)]
    signed = sign_commit(DID, host.repo.data, tid(99), host.key)
    car = write_car([signed.cid], [(signed.cid, signed.bytes)])
    with pytest.raises(CommitError, match="limit"):
        verify_commit_event(car, ops, host.repo.data, signed.cid, None, DID)


def test_sync_event_car_holds_only_the_commit() -> None:
    host = Host()
    car = read_car(sync_event_car(host.repo.commit))
    assert car.roots == [host.repo.cid] and list(car.blocks) == [host.repo.cid]


@pytest.mark.parametrize("path", params(FIREHOSE, lambda p: p.stem))
def test_pre_v11_firehose_commits_parse_and_check_forward(path: Path) -> None:
    body = datamodel.loads(path.read_text())
    car = read_car(body["blocks"])
    assert car.root == body["commit"]
    ops = parse_ops(body["ops"])
    assert all(isinstance(op, LegacyOp) for op in ops)
    verified = verify_commit_body(body, None, require_prev_data=False)
    assert verified.did == body["repo"] and verified.rev == body["rev"]
    assert not verified.inverted and len(verified.ops) == len(body["ops"])
    with pytest.raises(CommitError, match="prevData"):
        verify_commit_body(body, None)
    # legacy ops cannot be inverted, whatever prevData is claimed
    with pytest.raises(CommitError, match="inverted"):
        verify_commit_event(body["blocks"], ops, verified.data, body["commit"], None, body["repo"])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=400))
def test_malformed_slices_raise_plaza_errors(data: bytes) -> None:
    cid = CID.compute(b"x")
    with contextlib.suppress(PlazaError):
        verify_commit_event(data, [], cid, cid, None, DID)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pos=st.integers(0, 10**6), byte=st.integers(0, 255))
def test_corrupted_slices_raise_plaza_errors(pos: int, byte: int) -> None:
    body = datamodel.loads(FIREHOSE[2].read_text())
    data = bytearray(body["blocks"])
    data[pos % len(data)] = byte
    with contextlib.suppress(PlazaError):
        verify_commit_body({**body, "blocks": bytes(data)}, None, require_prev_data=False)
