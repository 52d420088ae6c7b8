"""What one verified event changes in an archived repository, computed without I/O.

Theory of operation. The archive keeps, per DID, exactly the blocks of the current
repository: the signed commit, every MST node and every record (as a host does, so a
``getRepo`` from the archive is the host's repository, and a deleted record is gone
from it). A ``#commit`` that passed :func:`plaza.atproto.sync.verify_commit_body` and
whose ``prevData`` is the archived data root moves the repository from the archived
tree (``prev_data``) to the commit's tree. Because the ops inverted back to
``prev_data``, every node of the new tree is either a node of the archived tree (and
then so is its whole subtree) or a node of the event's slice, which the inversion read
and checked. So:

- the new nodes are found by walking down from the new root through the slice,
  stopping at the first node the archive holds (:func:`commit_change`);
- the removed nodes by walking down from the old root, stopping at the new tree's
  nodes and at the archived subtrees it links to;
- the records that change are exactly the ops; a record block leaves the store only
  when no path links it any more, which the store decides against its record index.

Each new record is checked to be strict DAG-CBOR (a map) and its blob references are
collected, so that the blob fetcher knows what to keep.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import libipld

from plaza.atproto import cbor
from plaza.atproto.cid import CID
from plaza.atproto.errors import DecodeError, InvalidCidError, MissingBlockError, MstError
from plaza.atproto.mst import Op
from plaza.atproto.repo_verify import VerifiedRepo, check_record
from plaza.atproto.sync import VerifiedCommit
from plaza.services.pds.repo_parts import find_blobs

Stored = Callable[[CID], bytes | None]
"""The archived block of this DID with that CID, or None."""
StoredAmong = Callable[[list[CID]], set[CID]]
"""Which of these CIDs the archive holds for this DID (one question for many)."""


@dataclass(frozen=True)
class CommitChange:
    """A verified ``#commit`` as the store applies it: blocks to add (with the commit's
    rev), MST nodes to drop, record paths to set or clear, and the blobs each written
    record links (an empty list for a deleted path)."""

    did: str
    commit_cid: CID
    rev: str
    data: CID
    new_blocks: dict[CID, bytes] = field(repr=False)
    removed_nodes: frozenset[CID] = field(repr=False)
    records: dict[str, CID | None] = field(repr=False)
    dropped_records: frozenset[CID] = field(repr=False)
    blob_refs: dict[str, list[CID]] = field(repr=False)


@dataclass(frozen=True)
class RepoBase:
    """A whole repository verified by :func:`plaza.atproto.repo_verify.import_car`, as the
    store makes it an archived DID's base."""

    did: str
    commit_cid: CID
    rev: str
    data: CID
    blocks: dict[CID, bytes] = field(repr=False)
    records: dict[str, CID] = field(repr=False)
    blob_refs: dict[str, list[CID]] = field(repr=False)


def _links(cid: CID, data: bytes) -> Iterator[CID]:
    """The subtree links of an MST node block."""
    try:
        node = libipld.decode_dag_cbor(data)
        if node["l"] is not None:
            yield CID(node["l"])
        for entry in node["e"]:
            if entry["t"] is not None:
                yield CID(entry["t"])
    except (ValueError, KeyError, TypeError, RecursionError, InvalidCidError) as exc:
        raise MstError(f"MST node {cid} is malformed: {exc}") from exc


def record_blobs(path: str, block: bytes) -> list[CID]:
    """Check a record block (strict DAG-CBOR, a map) and return the blob CIDs it links,
    each once, however deep."""
    try:
        check_record(block)
    except DecodeError as exc:
        raise DecodeError(f"record {path}: {exc.message}") from exc
    return list(dict.fromkeys(find_blobs(cbor.decode(block))))


def commit_change(
    verified: VerifiedCommit, prev_data: CID, stored: Stored, among: StoredAmong | None = None
) -> CommitChange:
    """The change ``verified`` makes to the archived tree rooted at ``prev_data`` (see the
    module docstring). ``verified`` must have inverted to ``prev_data``.

    ``stored`` reads an archived block; ``among``, if given, answers for all the
    slice's blocks at once whether they are archived (one query instead of one per node).
    Raises :class:`MissingBlockError` if a node of the new tree is neither archived nor
    in the slice, :class:`MstError` for a malformed node, :class:`DecodeError` for a
    record that is not strict DAG-CBOR.
    """
    if verified.prev_data != prev_data or verified.rev is None:
        raise MstError("the commit does not continue the archived tree")
    slice_blocks = verified.blocks
    # Whether each node of the slice is archived, asked at once when ``among`` can.
    held = None if among is None else among(list(slice_blocks))

    def archived(cid: CID) -> bool:
        if held is not None and cid in slice_blocks:
            return cid in held
        return stored(cid) is not None

    new_blocks: dict[CID, bytes] = {verified.commit_cid: slice_blocks[verified.commit_cid]}
    kept: set[CID] = set()  # archived subtrees the new tree links to (whole)
    todo = [verified.data]
    while todo:
        cid = todo.pop()
        if cid in new_blocks or cid in kept:
            continue
        if archived(cid):
            kept.add(cid)
            continue
        data = slice_blocks.get(cid)
        if data is None:
            raise MissingBlockError(f"MST node {cid} is neither archived nor in the slice")
        new_blocks[cid] = data
        todo.extend(_links(cid, data))
    removed: set[CID] = set()
    todo = [prev_data]
    while todo:
        cid = todo.pop()
        if cid in kept or cid in new_blocks or cid in removed:
            continue
        data = stored(cid)
        if data is None:
            raise MissingBlockError(f"archived MST node {cid} is missing")
        removed.add(cid)
        todo.extend(_links(cid, data))
    records: dict[str, CID | None] = {}
    refs: dict[str, list[CID]] = {}
    for op in verified.ops:
        records[op.path] = op.cid
        if op.cid is None:
            refs[op.path] = []
            continue
        block = slice_blocks[op.cid]
        refs[op.path] = record_blobs(op.path, block)
        new_blocks[op.cid] = block
    return CommitChange(
        did=verified.did,
        commit_cid=verified.commit_cid,
        rev=verified.rev,
        data=verified.data,
        new_blocks=new_blocks,
        removed_nodes=frozenset(removed),
        records=records,
        dropped_records=_dropped(verified.ops),
        blob_refs=refs,
    )


def _dropped(ops: Iterable[Op]) -> frozenset[CID]:
    ops = list(ops)
    written = {op.cid for op in ops if op.cid is not None}
    return frozenset(op.prev for op in ops if op.prev is not None) - written


def repo_base(repo: VerifiedRepo) -> RepoBase:
    """A verified repository as a base: its blocks, records and each record's blobs."""
    if repo.rev is None:
        raise MstError("a repository without a rev cannot be archived")
    refs: dict[str, list[CID]] = {}
    for path, cid in repo.records.items():
        found = record_blobs(path, repo.blocks[cid])
        if found:
            refs[path] = found
    return RepoBase(
        did=repo.did,
        commit_cid=repo.commit_cid,
        rev=repo.rev,
        data=repo.data,
        blocks=repo.blocks,
        records=repo.records,
        blob_refs=refs,
    )
