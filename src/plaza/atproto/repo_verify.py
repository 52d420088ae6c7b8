"""Verifying repositories from elsewhere: full CAR imports and single-record proofs.

:func:`import_car` is what a host runs on ``com.atproto.repo.importRepo`` and what a
relay or an auditor runs on ``getRepo`` output. It checks, in order, and stops at the
first failure with a specific error:

1. the CAR itself: every block re-hashed, strict framing (:mod:`plaza.atproto.car`);
2. the first root is present in the file (:class:`CarRootError`) and is a well-formed
   commit (:class:`CommitError`), for the expected DID;
3. the commit signature against the given key (:class:`BadSignatureError`) — or, with
   no key, the result says the signature was not checked;
4. the whole MST: every node present (:class:`MissingBlockError`), canonical, at the
   right layer, keys in order and in range (:class:`MstError`), every record present
   and a map in valid DAG-CBOR (:func:`check_record`);
5. the tree rebuilt from its keys alone has the commit's ``data`` root.

Only blocks reachable from the commit are kept; other blocks in the file are counted
and dropped, so a hostile file cannot smuggle data into the importer's store.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import libipld

from plaza.atproto import cbor
from plaza.atproto.car import MAX_CAR_BYTES, read_car, write_car
from plaza.atproto.cid import CID
from plaza.atproto.commit import Commit, decode_commit, verify_commit
from plaza.atproto.crypto import PublicKey
from plaza.atproto.errors import (
    CarRootError,
    CommitError,
    DecodeError,
    InvalidCidError,
    MissingBlockError,
    MstError,
)
from plaza.atproto.mst import MST, BlockSource, NodeCache
from plaza.atproto.repo import record_path


@dataclass(frozen=True)
class VerifiedRepo:
    """A repository that passed :func:`import_car`."""

    did: str
    rev: str | None
    commit_cid: CID
    commit: Commit
    records: dict[str, CID] = field(repr=False)
    blocks: dict[CID, bytes] = field(repr=False)
    signature_checked: bool
    unreferenced_blocks: int = 0

    @property
    def data(self) -> CID:
        """The MST root the commit signs."""
        return self.commit.data

    def record_bytes(self, path: str) -> bytes | None:
        cid = self.records.get(path)
        return None if cid is None else self.blocks[cid]

    def record(self, path: str) -> Any:
        """The decoded record at ``path`` (None if absent)."""
        data = self.record_bytes(path)
        return None if data is None else cbor.decode(data)

    def iter_records(self) -> Iterator[tuple[str, CID, Any]]:
        """``(path, cid, value)`` in path order."""
        for path, cid in self.records.items():
            yield path, cid, cbor.decode(self.blocks[cid])

    def mst(self, cache: NodeCache | None = None) -> MST:
        return MST.load(self.blocks, self.commit.data, cache)


_INT_MIN = -(2**63)
_INT_MAX = 2**64 - 1


def check_record(block: bytes) -> None:
    """Accept a record block exactly when the strict decoder accepts it as a map.

    Raises the :class:`DecodeError` that ``cbor.decode`` raises (or says the value is
    not a map). The fast path: libipld decodes the block and encodes the result again;
    identical bytes mean the block is canonical DAG-CBOR (minimal heads, definite
    lengths, sorted unique text keys, no trailing bytes). libipld's round trip is then
    checked for the little it admits and the data model does not (floats, integers
    below -2**63, nesting past ``cbor.MAX_DEPTH``, CID links Plaza refuses). A byte
    string that libipld takes for a CID would have come back as a link, so it never
    passes the comparison. Anything the fast path does not vouch for goes to the
    strict decoder, whose answer is final.
    """
    if _vouched(block):
        return
    if type(cbor.decode(block)) is not dict:
        raise DecodeError("the record is not a map")


def _vouched(block: bytes) -> bool:
    """The fast path of :func:`check_record`: True only for a map the strict decoder
    accepts (False says nothing)."""
    try:
        value = libipld.decode_dag_cbor(block)
    except ValueError:
        return False
    return (
        type(value) is dict and _in_data_model(value, 0) and libipld.encode_dag_cbor(value) == block
    )


def _in_data_model(value: Any, depth: int) -> bool:
    """True if a container libipld decoded is one the strict decoder decodes alike.

    Links come back from libipld as the CID's bytes; every byte string that could be
    one (CIDv1 starts with 0x01, CIDv0 with 0x12) must be a CID Plaza accepts, or the
    strict decoder decides.
    """
    if depth >= cbor.MAX_DEPTH:
        return False
    items: Iterable[Any] = value.values() if type(value) is dict else value
    for v in items:
        t = type(v)
        if t is str or t is bool or v is None:
            continue
        if t is dict or t is list:
            if not _in_data_model(v, depth + 1):
                return False
        elif t is int:
            if not _INT_MIN <= v <= _INT_MAX:
                return False
        elif t is bytes:
            if v[:1] in (b"\x01", b"\x12") and not _is_cid(v):
                return False
        else:  # floats, and anything else libipld may grow
            return False
    return True


def _is_cid(raw: bytes) -> bool:
    try:
        CID(raw)
    except InvalidCidError:
        return False
    return True


def _commit_from(blocks: dict[CID, bytes], root: CID, did: str | None) -> Commit:
    block = blocks.get(root)
    if block is None:
        raise CarRootError(f"the CAR's root {root} is not among its blocks")
    commit = decode_commit(block)
    if did is not None and commit.did != did:
        raise CommitError(f"repository belongs to {commit.did}, expected {did}")
    return commit


def import_car(
    data: bytes,
    *,
    did: str | None = None,
    key: PublicKey | None = None,
    check_records: bool = True,
    max_bytes: int = MAX_CAR_BYTES,
) -> VerifiedRepo:
    """Read and fully verify a repository CAR (see the module docstring).

    ``check_records`` checks that every record is a map in strict DAG-CBOR
    (:func:`check_record`); turn it off only for data already known to be valid.
    """
    car = read_car(data, max_total_bytes=max_bytes)
    root = car.root
    commit = _commit_from(car.blocks, root, did)
    if key is not None:
        verify_commit(commit, key)
    tree = MST.load(car.blocks, commit.data)
    records = dict(tree.items())  # walks and validates every node
    kept: dict[CID, bytes] = {root: car.blocks[root]}
    kept.update(tree.all_blocks())
    for path, cid in records.items():
        block = car.blocks.get(cid)
        if block is None:
            raise MissingBlockError(f"record {path} ({cid}) is missing")
        if check_records and cid not in kept:
            try:
                check_record(block)
            except DecodeError as exc:
                raise DecodeError(f"record {path} ({cid}): {exc.message}") from exc
        kept[cid] = block
    if MST.build(records.items()).root() != commit.data:
        raise MstError("the tree rebuilt from the repository's keys has a different root")
    return VerifiedRepo(
        did=commit.did,
        rev=commit.rev,
        commit_cid=root,
        commit=commit,
        records=records,
        blocks=kept,
        signature_checked=key is not None,
        unreferenced_blocks=len(car.blocks) - len(kept),
    )


# -- single-record proofs (com.atproto.sync.getRecord) ------------------------------------


def record_proof_car(source: BlockSource, commit_cid: CID, collection: str, rkey: str) -> bytes:
    """The CAR for ``sync.getRecord``: the commit, the MST nodes from the root to the
    record's key, and the record block when it exists (absent records are proven
    absent by the same nodes)."""
    path = record_path(collection, rkey)
    block = source.get(commit_cid)
    if block is None:
        raise MissingBlockError(f"commit block {commit_cid} is missing")
    commit = decode_commit(bytes(block))
    tree = MST.load(source, commit.data)
    blocks: list[tuple[CID, bytes]] = [(commit_cid, bytes(block))]
    blocks += tree.proof_blocks(path).items()
    cid = tree.get(path)
    if cid is not None:
        record = source.get(cid)
        if record is None:
            raise MissingBlockError(f"record block {cid} is missing")
        blocks.append((cid, bytes(record)))
    return write_car([commit_cid], blocks)


@dataclass(frozen=True)
class RecordProof:
    """A verified ``getRecord`` answer: ``cid``/``value`` are None if proven absent."""

    did: str
    rev: str | None
    commit_cid: CID
    path: str
    cid: CID | None
    value: Any
    signature_checked: bool


def verify_record_proof(
    data: bytes, collection: str, rkey: str, *, did: str | None = None, key: PublicKey | None = None
) -> RecordProof:
    """Verify a ``getRecord`` CAR: hashes, commit (and signature if ``key``), the path
    through the MST, and the record block."""
    path = record_path(collection, rkey)
    car = read_car(data)
    commit = _commit_from(car.blocks, car.root, did)
    if key is not None:
        verify_commit(commit, key)
    cid = MST.load(car.blocks, commit.data).get(path)
    value = None
    if cid is not None:
        block = car.blocks.get(cid)
        if block is None:
            raise MissingBlockError(f"record block {cid} for {path} is missing")
        value = cbor.decode(block)
    return RecordProof(commit.did, commit.rev, car.root, path, cid, value, key is not None)
