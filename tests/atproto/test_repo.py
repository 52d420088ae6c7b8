"""Repositories: commits, writes, export/import with full verification, record proofs."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plaza.atproto import cbor
from plaza.atproto.car import read_car, write_car
from plaza.atproto.cid import CID
from plaza.atproto.commit import (
    Commit,
    decode_commit,
    sign_commit,
    verify_commit,
)
from plaza.atproto.crypto import ES256, ES256K, PrivateKey
from plaza.atproto.errors import (
    BadSignatureError,
    BlockHashMismatchError,
    CarRootError,
    CommitError,
    MissingBlockError,
    MstError,
    RecordExistsError,
    RecordNotFoundError,
    RepoWriteError,
)
from plaza.atproto.mst import EMPTY_ROOT, MST
from plaza.atproto.repo import (
    Repo,
    Write,
    apply_writes,
    diff_car,
    export_car,
    iter_export_car,
)
from plaza.atproto.repo_verify import import_car, record_proof_car, verify_record_proof
from plaza.errors import PlazaError
from tests.atproto.repo_helpers import DID, LIKE, POST, Host, post, tid
from tests.vectors import params, vector_path

FULL_CARS = [
    "greenground.repo.car",
    "bafyreieovfuizojpw3zresz7sx3nk4trm2by23pt5rxbey3jme4uo5ogiu.car",
    "fakermaker.repo.car",
    "paul_staging.repo.car",
]


@pytest.fixture
def host() -> Host:
    h = Host()
    for i in range(40):
        h.write(Write.create(POST, f"3k{i:03d}", post(i)))
    return h


# -- commits -----------------------------------------------------------------------------


@pytest.mark.parametrize("alg", [ES256, ES256K])
def test_sign_and_verify_commit(alg: str) -> None:
    key = PrivateKey.generate(alg)  # type: ignore[arg-type]
    signed = sign_commit(DID, EMPTY_ROOT, tid(1), key)
    commit = decode_commit(signed.bytes)
    assert commit == signed.commit
    assert CID.compute(signed.bytes) == signed.cid
    assert commit.version == 3 and commit.prev is None and len(commit.sig) == 64
    assert "prev" in cbor.decode(signed.bytes)  # the field is present, as null
    verify_commit(commit, key.public_key)
    with pytest.raises(BadSignatureError):
        verify_commit(commit, PrivateKey.generate(alg).public_key)  # type: ignore[arg-type]
    forged = Commit(commit.did, 3, commit.data, tid(2), None, commit.sig)
    with pytest.raises(BadSignatureError):
        verify_commit(forged, key.public_key)


def _commit_value(**changes: Any) -> bytes:
    value: dict[str, Any] = {
        "did": DID,
        "version": 3,
        "data": EMPTY_ROOT,
        "rev": tid(1),
        "prev": None,
        "sig": b"\x01" * 64,
    }
    value.update(changes)
    return cbor.encode({k: v for k, v in value.items() if v is not _DROP})


_DROP = object()


@pytest.mark.parametrize(
    ("name", "changes"),
    [
        ("no-prev", {"prev": _DROP}),
        ("no-rev-v3", {"rev": _DROP}),
        ("bad-rev", {"rev": "not-a-tid"}),
        ("version-4", {"version": 4}),
        ("did-not-did", {"did": "alice"}),
        ("data-not-link", {"data": "bafy"}),
        ("sig-text", {"sig": "abc"}),
        ("extra-field", {"extra": 1}),
        ("prev-bytes", {"prev": b"\x01" * 36}),
        ("sig-link", {"sig": EMPTY_ROOT}),
        ("data-bytes-of-a-cid", {"data": EMPTY_ROOT.raw}),
        ("prev-bytes-of-a-cid", {"prev": EMPTY_ROOT.raw}),
    ],
)
def test_malformed_commits_are_refused(name: str, changes: dict[str, Any]) -> None:
    with pytest.raises(CommitError):
        decode_commit(_commit_value(**changes))


def test_non_canonical_commit_blocks_are_refused() -> None:
    block = _commit_value(sig=b"\x00" * 64)
    assert decode_commit(block).version == 3
    for bad in (
        block.replace(b"gversion\x03", b"gversion\x18\x03"),  # a long form of 3
        block + b"\x00",  # trailing bytes
    ):
        with pytest.raises(CommitError):
            decode_commit(bad)


def test_v2_commit_without_rev_is_readable() -> None:
    block = _commit_value(version=2, rev=_DROP)
    commit = decode_commit(block)
    assert commit.rev is None and commit.version == 2
    assert commit.encode() == block
    with pytest.raises(CommitError):
        decode_commit(b"\xff")


# -- writes ------------------------------------------------------------------------------


def test_create_update_delete_and_the_commit_result(host: Host) -> None:
    before = host.repo
    result = host.write(
        Write.create(LIKE, "3kzzz", {"$type": LIKE, "subject": "x"}),
        Write.update(POST, "3k001", post(1001)),
        Write.delete(POST, "3k002"),
    )
    assert [(o.action, o.path) for o in result.ops] == [
        ("create", f"{LIKE}/3kzzz"),
        ("update", f"{POST}/3k001"),
        ("delete", f"{POST}/3k002"),
    ]
    assert result.ops[1].prev == before.get(POST, "3k001")
    assert result.ops[2].prev == before.get(POST, "3k002") and result.ops[2].cid is None
    assert result.prev_data == before.data and result.since == before.rev
    assert result.rev > before.rev
    assert result.commit.commit.data == result.repo.data == result.repo.mst.root()
    assert set(result.record_blocks) == {result.ops[0].cid, result.ops[1].cid}
    assert result.cid in result.new_blocks
    assert host.repo.get(POST, "3k002") is None
    assert cbor.decode(host.blocks[host.repo.get(POST, "3k001")])["text"] == "post number 1001"
    verify_commit(decode_commit(result.commit.bytes), host.key.public_key)
    # the previous state is untouched
    assert before.get(POST, "3k002") is not None
    # the slice: commit first, then records, then the nodes inversion needs
    car = read_car(result.car_slice)
    assert car.roots == [result.cid]
    assert next(iter(car.blocks)) == result.cid
    assert set(result.record_blocks) <= set(car.blocks)
    assert set(result.node_blocks) <= set(car.blocks)


def test_only_the_changed_nodes_are_new_and_removed_nodes_are_gone(host: Host) -> None:
    before_nodes = set(MST.load(host.blocks, host.repo.data).all_blocks())
    result = host.write(Write.delete(POST, "3k010"), Write.create(POST, "3k999", post(999)))
    after_nodes = set(MST.load(host.blocks, host.repo.data).all_blocks())
    assert set(result.node_blocks) == after_nodes - before_nodes
    assert result.removed_nodes == before_nodes - after_nodes


@pytest.mark.parametrize(
    ("writes", "error"),
    [
        ([Write.create(POST, "3k001", post(1))], RecordExistsError),
        ([Write.update(POST, "nope", post(1))], RecordNotFoundError),
        ([Write.delete(POST, "nope")], RecordNotFoundError),
        ([Write.create(POST, "a", post(1)), Write.delete(POST, "a")], RepoWriteError),
        ([Write.create("not an nsid", "a", post(1))], RepoWriteError),
        ([Write.create(POST, "..", post(1))], RepoWriteError),
        ([Write.create(POST, "a/b", post(1))], RepoWriteError),
        ([Write.create(POST, "a", ["not", "a", "map"])], RepoWriteError),
        ([Write.create(POST, "a", {"f": 1.5})], RepoWriteError),
        ([Write.create(POST, "a", {"big": "x" * 1_000_001})], RepoWriteError),
        ([Write.create(POST, f"k{i}", post(i)) for i in range(201)], RepoWriteError),
        ([Write.create(POST, "a", post(1), cid=CID.compute(b"x"))], RepoWriteError),
    ],
    ids=[
        "create-existing",
        "update-missing",
        "delete-missing",
        "same-path-twice",
        "bad-collection",
        "dot-dot-rkey",
        "slash-in-rkey",
        "record-not-map",
        "float",
        "too-big",
        "too-many-writes",
        "record-and-cid",
    ],
)
def test_refused_writes_change_nothing(
    host: Host, writes: list[Write], error: type[Exception]
) -> None:
    head = host.repo
    stored = dict(host.blocks)
    with pytest.raises(error):
        host.write(*writes)
    assert host.repo is head and host.blocks == stored


def test_apply_writes_over_a_block_source(host: Host) -> None:
    same = post(1)  # 3k001 holds it; 3k002 now links the same block
    result = apply_writes(
        host.blocks,
        host.repo.cid,
        [
            Write.update(POST, "3k002", same),
            Write.delete(POST, "3k001"),
            Write.delete(POST, "3k003"),
        ],
        host.key,
        tid(10_000),
        did=DID,
    )
    assert result.prev_commit == host.repo.cid and result.since == host.repo.rev
    assert set(result.record_blocks) == {host.repo.get(POST, "3k001")}
    # 3k001's record block is still linked (by 3k002), so it is not dropped
    assert result.dropped_records == {host.repo.get(POST, "3k002"), host.repo.get(POST, "3k003")}
    with pytest.raises(CommitError, match="DID"):
        apply_writes({}, None, [], host.key, tid(1))
    with pytest.raises(CommitError, match="belongs"):
        apply_writes(host.blocks, host.repo.cid, [], host.key, tid(10_001), did="did:plc:x")
    new = apply_writes({}, None, [Write.create(POST, "a", post(1))], host.key, tid(1), did=DID)
    assert new.prev_data is None and new.since is None and new.prev_commit is None
    assert new.removed_nodes == frozenset() and new.dropped_records == frozenset()


def test_rev_must_increase(host: Host) -> None:
    with pytest.raises(CommitError, match="rev"):
        host.repo.apply_writes([], host.key, host.repo.rev)
    with pytest.raises(CommitError):
        host.repo.apply_writes([], host.key, "bad")


def test_empty_commit_and_key_rotation(host: Host) -> None:
    new_key = PrivateKey.generate(ES256)
    host.key = new_key
    result = host.write()
    assert result.ops == () and result.data == result.prev_data
    verify_commit(result.commit.commit, new_key.public_key)
    assert list(read_car(result.car_slice).blocks) == [result.cid]


def test_load_and_list(host: Host) -> None:
    repo = Repo.load(host.blocks, host.repo.cid, did=DID)
    assert repo.rev == host.repo.rev and repo.data == host.repo.data
    rkeys = [r for r, _ in repo.list_records(POST)]
    assert rkeys == sorted(f"3k{i:03d}" for i in range(40))
    assert [r for r, _ in repo.list_records(POST, after="3k037")] == ["3k038", "3k039"]
    assert list(repo.list_records(LIKE)) == []
    with pytest.raises(CommitError):
        Repo.load(host.blocks, host.repo.cid, did="did:plc:someoneelse")
    with pytest.raises(MissingBlockError):
        Repo.load({}, host.repo.cid)


def test_persistent_writes_match_a_fresh_build() -> None:
    h = Host()
    for batch in range(10):
        h.write(*(Write.create(POST, f"r{batch}x{i}", post(i)) for i in range(15)))
        h.write(Write.delete(POST, f"r{batch}x3"), Write.update(POST, f"r{batch}x4", post(-1)))
    items = list(MST.load(h.blocks, h.repo.data).items())
    assert len(items) == 140
    assert MST.build(items).root() == h.repo.data


# -- export and import --------------------------------------------------------------------


def test_export_import_round_trip(host: Host) -> None:
    car = export_car(host.blocks, host.repo.cid)
    assert b"".join(iter_export_car(host.blocks, host.repo.cid)) == car
    repo = import_car(car, did=DID, key=host.key.public_key)
    assert repo.signature_checked and repo.rev == host.repo.rev
    assert repo.commit_cid == host.repo.cid and repo.data == host.repo.data
    assert len(repo.records) == 40
    assert repo.record(f"{POST}/3k005") == post(5)
    assert repo.unreferenced_blocks == 0
    # block order: commit, then the root node, records interleaved in key order
    order = list(read_car(car).blocks)
    assert order[0] == host.repo.cid and order[1] == host.repo.data
    record_positions = [order.index(c) for c in repo.records.values()]
    assert record_positions == sorted(record_positions)
    walked = [c for c, _ in MST.load(host.blocks, host.repo.data).walk_preorder()]
    assert order[1:] == list(dict.fromkeys(walked))  # the spec's preferred order exactly
    # the import keeps only reachable blocks
    stray = cbor.encode({"stray": True})
    padded = write_car(
        [host.repo.cid], [*read_car(car).blocks.items(), (CID.compute(stray), stray)]
    )
    again = import_car(padded)
    assert again.unreferenced_blocks == 1 and CID.compute(stray) not in again.blocks


def test_export_of_a_damaged_store_fails_cleanly(host: Host) -> None:
    blocks = dict(host.blocks)
    blocks[host.repo.data] = cbor.encode({"not": "a node"})
    with pytest.raises(MstError):
        export_car(blocks, host.repo.cid)
    del blocks[host.repo.data]
    with pytest.raises(MissingBlockError):
        export_car(blocks, host.repo.cid)


def test_since_exports(host: Host) -> None:
    old_rev = host.repo.rev
    stored_before = set(host.blocks)  # a host would compare each block's rev instead
    result = host.write(Write.create(POST, "3kzzz", post(5000)))
    fresh = set(result.record_blocks) | set(result.node_blocks)
    since = export_car(host.blocks, host.repo.cid, include=lambda c: c not in stored_before)
    car = read_car(since)
    assert car.roots == [host.repo.cid]
    assert set(car.blocks) == {host.repo.cid} | fresh
    direct = read_car(diff_car(host.repo.commit, [(c, host.blocks[c]) for c in fresh]))
    assert set(direct.blocks) == set(car.blocks)
    assert old_rev < host.repo.rev


@pytest.mark.parametrize("name", FULL_CARS)
def test_real_repositories_import_and_rebuild(name: str) -> None:
    data = vector_path("indigo-testdata", "repo-car", name).read_bytes()
    repo = import_car(data)
    assert not repo.signature_checked
    assert MST.build(repo.records.items()).root() == repo.data
    assert repo.did.startswith("did:plc:")
    for path, _cid, value in repo.iter_records():
        assert isinstance(value, dict), path
    # and our export of it reads back to the same repository
    again = import_car(export_car(repo.blocks, repo.commit_cid))
    assert again.records == repo.records


def test_partial_slice_reports_missing_blocks() -> None:
    data = vector_path("indigo-testdata", "repo-car", "repo_slice.car").read_bytes()
    assert len(read_car(data).blocks) == 5
    with pytest.raises(MissingBlockError):
        import_car(data)


def _damaged(tmp_path: Path, car: bytes, how: str) -> bytes:
    parsed = read_car(car)
    commit = decode_commit(parsed.blocks[parsed.root])
    blocks = dict(parsed.blocks)
    tree = MST.load(blocks, commit.data)
    records = dict(tree.items())
    record_cid = next(iter(records.values()))
    node_cid = commit.data
    if how == "drop-record":
        del blocks[record_cid]
    elif how == "drop-node":
        child = next(c for c in tree.all_blocks() if c != commit.data)
        del blocks[child]
    elif how == "wrong-root":
        return write_car([record_cid], blocks.items())
    elif how == "root-absent":
        del blocks[parsed.root]
        return write_car([parsed.root], blocks.items())
    out = bytearray(write_car(parsed.roots, blocks.items()))
    target = {"flip-record": record_cid, "flip-node": node_cid, "flip-sig": parsed.root}.get(how)
    if target is not None:
        block = parsed.blocks[target]
        at = bytes(out).index(target.raw + block) + len(target.raw)
        offset = len(block) - 5 if how == "flip-sig" else len(block) // 2
        out[at + offset] ^= 0x01
    path = tmp_path / f"{how}.car"
    path.write_bytes(bytes(out))
    return path.read_bytes()


@pytest.mark.parametrize(
    ("how", "error"),
    [
        ("flip-record", BlockHashMismatchError),
        ("flip-node", BlockHashMismatchError),
        ("flip-sig", BlockHashMismatchError),
        ("drop-record", MissingBlockError),
        ("drop-node", MissingBlockError),
        ("wrong-root", CommitError),
        ("root-absent", CarRootError),
    ],
)
def test_damaged_repositories_are_refused(
    tmp_path: Path, host: Host, how: str, error: type[Exception]
) -> None:
    car = export_car(host.blocks, host.repo.cid)
    with pytest.raises(error):
        import_car(_damaged(tmp_path, car, how), key=host.key.public_key)


def test_resigned_commit_with_wrong_key_or_did(host: Host) -> None:
    car = export_car(host.blocks, host.repo.cid)
    with pytest.raises(BadSignatureError):
        import_car(car, key=PrivateKey.generate().public_key)
    with pytest.raises(CommitError, match="belongs"):
        import_car(car, did="did:plc:other")


def test_commit_pointing_at_a_non_canonical_tree_is_refused(host: Host) -> None:
    # a signed commit over a tree whose root node is an unpruned empty wrapper
    real = host.repo.data
    wrapper = cbor.encode({"l": real, "e": []})
    wrapper_cid = CID.compute(wrapper)
    signed = sign_commit(DID, wrapper_cid, tid(10_000), host.key)
    blocks = dict(read_car(export_car(host.blocks, host.repo.cid)).blocks)
    blocks[wrapper_cid] = wrapper
    car = write_car([signed.cid], [(signed.cid, signed.bytes), *blocks.items()])
    with pytest.raises(MstError):
        import_car(car, key=host.key.public_key)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=500))
def test_malformed_bytes_into_import_raise_plaza_errors(data: bytes) -> None:
    with contextlib.suppress(PlazaError):
        import_car(data)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pos=st.integers(0, 10**6), byte=st.integers(0, 255))
def test_corrupted_real_repo_raises_plaza_errors(pos: int, byte: int) -> None:
    data = bytearray(vector_path("indigo-testdata", "repo-car", FULL_CARS[1]).read_bytes())
    data[pos % len(data)] = byte
    with contextlib.suppress(PlazaError):
        import_car(bytes(data))


# -- record proofs ------------------------------------------------------------------------


def test_record_proofs(host: Host) -> None:
    proof = record_proof_car(host.blocks, host.repo.cid, POST, "3k007")
    got = verify_record_proof(proof, POST, "3k007", did=DID, key=host.key.public_key)
    assert got.value == post(7) and got.cid == host.repo.get(POST, "3k007")
    assert got.signature_checked
    absent = record_proof_car(host.blocks, host.repo.cid, POST, "3k007x")
    got = verify_record_proof(absent, POST, "3k007x", key=host.key.public_key)
    assert got.cid is None and got.value is None
    # a proof for one path does not prove another far away
    with pytest.raises(MissingBlockError):
        verify_record_proof(proof, POST, "3k039")
    with pytest.raises(BadSignatureError):
        verify_record_proof(proof, POST, "3k007", key=PrivateKey.generate().public_key)


@pytest.mark.parametrize("name", params(FULL_CARS))
def test_record_proofs_on_real_repositories(name: str) -> None:
    repo = import_car(vector_path("indigo-testdata", "repo-car", name).read_bytes())
    path = sorted(repo.records)[len(repo.records) // 2]
    collection, rkey = path.split("/")
    proof = record_proof_car(repo.blocks, repo.commit_cid, collection, rkey)
    assert verify_record_proof(proof, collection, rkey).cid == repo.records[path]
