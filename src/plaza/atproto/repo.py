"""A repository as its host writes it: apply writes over a block source, sans-IO.

Theory of operation. One operation turns a repository's state and a batch of writes
into a signed commit: :func:`apply_writes` (given the current commit's CID in a
:class:`~plaza.atproto.mst.BlockSource`, or None for a new repository), and
:meth:`Repo.apply_writes` (the same on a head the host keeps loaded, so that its MST's
decoded nodes are reused). A :class:`Repo` is an immutable value: the account's DID,
its current signed commit and the MST the commit points to, read lazily from the
source. The signing key and the new ``rev`` (a TID from the host's clock) are passed
in. The operation checks the writes against the current tree, builds the new tree,
signs the commit and returns a :class:`CommitResult` holding everything the host must
do with it:

1. persist ``new_blocks`` (the commit, the new records and the new MST nodes) and point
   the account at ``cid``/``rev`` — in one transaction;
2. optionally drop ``removed_nodes``, the previous commit block (``prev_commit``) and
   the ``dropped_records`` that no other path still links;
3. emit a sync v1.1 ``#commit`` event from ``ops``, ``prev_data``, ``since`` and
   ``car_slice`` (:func:`plaza.atproto.sync.verify_commit_event` is its inverse: it
   undoes ``ops`` on the slice and must reach ``prev_data``);
4. continue from ``result.repo``, which already holds the new state.

Nothing is changed if a write is refused, and ``result.repo`` is only valid once step 1
has happened (its MST may re-read the new nodes from the source). The next state comes
back in the result, so a failed store leaves the caller's ``Repo`` as it was.

Write paths are checked with the repository's structural key rule (two segments of
``A-Za-z0-9._:~-``), as the MST checks them; that a collection is an NSID and a record
key is valid for its collection's Lexicon is the host's check, made where requests
arrive (:func:`record_path` makes it).

Diffs ``since`` a revision: the spec asks for every block created after that revision
that is still part of the repository. A host that records, for each stored block, the
rev that created it, and drops blocks when they leave the repository (step 2), can answer
with :func:`diff_car` over ``blocks where rev > since``; a host that keeps no such record
can use :func:`export_car` with an ``include`` filter, or send the whole repository,
which the spec allows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import libipld

from plaza.atproto import cbor, syntax
from plaza.atproto.car import car_chunks, write_car
from plaza.atproto.cid import CID
from plaza.atproto.commit import SignedCommit, check_did, check_rev, decode_commit, sign_commit
from plaza.atproto.crypto import PrivateKey
from plaza.atproto.errors import (
    CommitError,
    EncodeError,
    InvalidCidError,
    InvalidSyntaxError,
    MissingBlockError,
    MstError,
    RecordExistsError,
    RecordNotFoundError,
    RepoWriteError,
)
from plaza.atproto.mst import MST, BlockSource, NodeCache, Op, validate_key

MAX_WRITES: Final = 200
"""Most writes in one commit (the firehose's limit on ops per ``#commit``)."""
MAX_RECORD_BYTES: Final = 1_000_000
"""Largest encoded record (the firehose's per-record limit)."""


def record_path(collection: str, rkey: str) -> str:
    """``collection/rkey`` after checking that ``collection`` is an NSID and ``rkey`` a
    record key (:class:`RepoWriteError`)."""
    try:
        if type(collection) is not str or type(rkey) is not str:
            raise InvalidSyntaxError("collection and record key must be strings")
        syntax.validate_nsid(collection)
        syntax.validate_record_key(rkey)
    except InvalidSyntaxError as exc:
        raise RepoWriteError(f"invalid record path: {exc.message}") from exc
    return f"{collection}/{rkey}"


@dataclass(frozen=True)
class Write:
    """One requested change at ``collection/rkey``: create or update, or delete.

    A create or update gives the record either as a value (``record``, a map, which
    the commit encodes and stores) or as the CID of a block the caller already holds
    (``cid``; the block is then not among the result's blocks or in its slice).
    """

    action: Literal["create", "update", "delete"]
    collection: str
    rkey: str
    record: Any = None
    cid: CID | None = None

    @classmethod
    def create(
        cls, collection: str, rkey: str, record: Any = None, *, cid: CID | None = None
    ) -> Write:
        return cls("create", collection, rkey, record, cid)

    @classmethod
    def update(
        cls, collection: str, rkey: str, record: Any = None, *, cid: CID | None = None
    ) -> Write:
        return cls("update", collection, rkey, record, cid)

    @classmethod
    def delete(cls, collection: str, rkey: str) -> Write:
        return cls("delete", collection, rkey)

    @property
    def path(self) -> str:
        """``collection/rkey``, checked by the MST key rule (:class:`RepoWriteError`)."""
        if type(self.collection) is not str or type(self.rkey) is not str:
            raise RepoWriteError("collection and record key must be strings")
        path = f"{self.collection}/{self.rkey}"
        try:
            validate_key(path)
        except MstError as exc:
            raise RepoWriteError(f"invalid record path: {exc.message}") from exc
        return path


def encode_record(record: Any) -> tuple[CID, bytes]:
    """The CID and DAG-CBOR block of a record value (a map), size-checked."""
    if type(record) is not dict:
        raise RepoWriteError("a record must be a map (JSON object)")
    try:
        block = cbor.encode(record)
    except EncodeError as exc:
        raise RepoWriteError(f"record is not valid atproto data: {exc.message}") from exc
    if len(block) > MAX_RECORD_BYTES:
        raise RepoWriteError(f"record is {len(block)} bytes; the limit is {MAX_RECORD_BYTES}")
    return CID.compute(block), block


@dataclass(frozen=True)
class CommitResult:
    """Everything one commit produced; see the module docstring for what to do with it.

    ``ops`` are in the order of the writes, one per write. ``prev_data``, ``since``
    and ``prev_commit`` are None for the first commit of a repository.
    """

    repo: Repo = field(repr=False)
    commit: SignedCommit
    ops: tuple[Op, ...]
    prev_data: CID | None
    since: str | None
    prev_commit: CID | None
    record_blocks: dict[CID, bytes] = field(repr=False)
    node_blocks: dict[CID, bytes] = field(repr=False)
    removed_nodes: frozenset[CID] = field(repr=False)
    car_slice: bytes = field(repr=False)

    @property
    def cid(self) -> CID:
        return self.commit.cid

    @property
    def rev(self) -> str:
        return self.commit.rev

    @property
    def data(self) -> CID:
        return self.commit.commit.data

    @property
    def new_blocks(self) -> dict[CID, bytes]:
        """The commit block, the new record blocks and the new MST nodes."""
        return {self.commit.cid: self.commit.bytes, **self.record_blocks, **self.node_blocks}

    @property
    def dropped_records(self) -> frozenset[CID]:
        """Record CIDs the changed paths no longer link (each op's ``prev`` that no op
        writes). Records are content-addressed, so a path the commit left alone may still
        link one: a host checks its record index before deleting the block."""
        written = {op.cid for op in self.ops if op.cid is not None}
        return frozenset(op.prev for op in self.ops if op.prev is not None) - written


class Repo:
    """An account's repository as its host holds it (immutable; see the module docstring)."""

    __slots__ = ("_commit", "_mst", "did")

    def __init__(self, did: str, commit: SignedCommit, mst: MST) -> None:
        if commit.commit.did != did:
            raise CommitError(f"commit belongs to {commit.commit.did}, not {did}")
        self.did = did
        self._commit = commit
        self._mst = mst

    @classmethod
    def create(
        cls,
        did: str,
        key: PrivateKey,
        rev: str,
        source: BlockSource | None = None,
        *,
        writes: Iterable[Write] = (),
        cache: NodeCache | None = None,
    ) -> CommitResult:
        """The first commit of a new repository (empty, or holding ``writes``)."""
        check_did(did)
        empty = MST.empty(source if source is not None else {}, cache)
        return _commit(did, key, empty, list(writes), rev, prev=None)

    @classmethod
    def load(
        cls,
        source: BlockSource,
        commit_cid: CID,
        *,
        did: str | None = None,
        cache: NodeCache | None = None,
    ) -> Repo:
        """The repository whose current commit is ``commit_cid`` in ``source``.

        The stored commit is trusted (it is the host's own data) and not re-verified;
        ``did``, when given, must match it.
        """
        block = source.get(commit_cid)
        if block is None:
            raise MissingBlockError(f"commit block {commit_cid} is missing")
        if not commit_cid.matches(block):
            raise CommitError(f"commit block {commit_cid} does not match its hash")
        commit = decode_commit(bytes(block))
        if did is not None and commit.did != did:
            raise CommitError(f"commit belongs to {commit.did}, not {did}")
        if commit.rev is None:
            raise CommitError("cannot continue a version-2 commit without rev; re-sign it")
        signed = SignedCommit(commit, commit_cid, bytes(block))
        return cls(commit.did, signed, MST.load(source, commit.data, cache))

    # -- state ----------------------------------------------------------------------------

    @property
    def commit(self) -> SignedCommit:
        return self._commit

    @property
    def cid(self) -> CID:
        return self._commit.cid

    @property
    def rev(self) -> str:
        return self._commit.rev

    @property
    def data(self) -> CID:
        return self._commit.commit.data

    @property
    def mst(self) -> MST:
        return self._mst

    def get(self, collection: str, rkey: str) -> CID | None:
        """The CID of the record at ``collection/rkey``, or None."""
        return self._mst.get(record_path(collection, rkey))

    def list_records(
        self, collection: str, *, after: str | None = None
    ) -> Iterator[tuple[str, CID]]:
        """``(rkey, cid)`` in a collection, in rkey order, starting after ``after``."""
        prefix = record_path(collection, "x")[:-1]
        start = prefix + after + "\x00" if after is not None else prefix
        for key, cid in self._mst.items(start, prefix[:-1] + "0"):  # '0' follows '/'
            yield key[len(prefix) :], cid

    # -- writing ----------------------------------------------------------------------------

    def apply_writes(self, writes: Iterable[Write], key: PrivateKey, rev: str) -> CommitResult:
        """Apply ``writes`` atomically in a new commit at ``rev`` (must exceed ``self.rev``),
        signed with ``key``.

        A create must find no record at its path (:class:`RecordExistsError`), an update
        or delete must find one (:class:`RecordNotFoundError`); a path may appear once.
        An empty list makes a commit that changes no records (after a key rotation, say).
        """
        check_rev(rev)
        if rev <= self.rev:
            raise CommitError(f"rev {rev} does not follow the current rev {self.rev}")
        return _commit(self.did, key, self._mst, list(writes), rev, prev=self)


def apply_writes(
    source: BlockSource,
    head: CID | None,
    writes: Iterable[Write],
    key: PrivateKey,
    rev: str,
    *,
    did: str | None = None,
    cache: NodeCache | None = None,
) -> CommitResult:
    """Apply ``writes`` to the repository whose current commit is ``head`` in ``source``
    (None: a new repository of ``did``), in one commit at ``rev`` signed with ``key``.

    The one write operation of the module docstring: :meth:`Repo.load` then
    :meth:`Repo.apply_writes`, or :meth:`Repo.create`. ``did``, when given for an
    existing repository, must be the commit's.
    """
    if head is None:
        if did is None:
            raise CommitError("a new repository needs its DID")
        return Repo.create(did, key, rev, source, writes=writes, cache=cache)
    return Repo.load(source, head, did=did, cache=cache).apply_writes(writes, key, rev)


def _commit(
    did: str, key: PrivateKey, tree: MST, writes: list[Write], rev: str, *, prev: Repo | None
) -> CommitResult:
    if len(writes) > MAX_WRITES:
        raise RepoWriteError(f"{len(writes)} writes in one commit; the limit is {MAX_WRITES}")
    check_rev(rev)
    base = tree
    ops: list[Op] = []
    records: dict[CID, bytes] = {}
    seen: set[str] = set()
    for w in writes:
        if not isinstance(w, Write):
            raise RepoWriteError("each write must be a Write")
        path = w.path
        if path in seen:
            raise RepoWriteError(f"{path} is written twice in one commit")
        seen.add(path)
        current = tree.get(path)
        if w.action == "create" and current is not None:
            raise RecordExistsError(f"record {path} already exists")
        if w.action in ("update", "delete") and current is None:
            raise RecordNotFoundError(f"record {path} does not exist")
        if w.action == "delete":
            ops.append(Op("delete", path, None, current))
            tree = tree.delete(path)
        elif w.action in ("create", "update"):
            if w.cid is None:
                cid, block = encode_record(w.record)
                records[cid] = block
            elif type(w.cid) is CID and w.record is None:
                cid = w.cid
            else:
                raise RepoWriteError(f"write to {path} must give a record or a CID, not both")
            ops.append(Op(w.action, path, cid, current))
            tree = tree.put(path, cid)
        else:
            raise RepoWriteError(f"unknown write action {w.action!r}")
    data = tree.root()
    signed = sign_commit(did, data, rev, key)
    nodes = tree.new_blocks()
    removed = frozenset(tree.removed_nodes(base)) if prev is not None else frozenset()
    ops_t = tuple(ops)
    proof = tree.inversion_blocks(ops_t) if prev is not None else nodes
    slice_blocks: list[tuple[CID, bytes]] = [(signed.cid, signed.bytes)]
    slice_blocks += records.items()
    slice_blocks += [(c, b) for c, b in proof.items() if c not in records]
    return CommitResult(
        repo=Repo(did, signed, tree.committed()),
        commit=signed,
        ops=ops_t,
        prev_data=prev.data if prev is not None else None,
        since=prev.rev if prev is not None else None,
        prev_commit=prev.cid if prev is not None else None,
        record_blocks=records,
        node_blocks=nodes,
        removed_nodes=removed,
        car_slice=write_car([signed.cid], slice_blocks),
    )


# -- export -----------------------------------------------------------------------------------


def iter_export_car(
    source: BlockSource,
    commit_cid: CID,
    *,
    include: Callable[[CID], bool] | None = None,
) -> Iterator[bytes]:
    """A repository CAR as byte chunks: the commit first, then the MST in pre-order with
    each record right after the entry that links it (the spec's preferred order).

    ``include``, when given, filters the node and record blocks (the commit is always
    sent): pass "was this block created after rev X" to serve ``getRepo?since=X``.
    Raises :class:`MissingBlockError` if the source lacks a block.
    """
    block = source.get(commit_cid)
    if block is None:
        raise MissingBlockError(f"commit block {commit_cid} is missing")
    commit = decode_commit(bytes(block))

    def blocks() -> Iterator[tuple[CID, bytes]]:
        yield commit_cid, bytes(block)
        seen: set[CID] = set()
        for cid, data in _stored_preorder(source, commit.data):
            if cid in seen or (include is not None and not include(cid)):
                continue
            seen.add(cid)
            if data is None:
                data = source.get(cid)
                if data is None:
                    raise MissingBlockError(f"record block {cid} is missing")
            yield cid, bytes(data)

    return car_chunks([commit_cid], blocks())


def _stored_preorder(source: BlockSource, root: CID) -> Iterator[tuple[CID, bytes | None]]:
    """:meth:`MST.walk_preorder` for a tree in the host's own store, about 5x faster:
    nodes are only parsed for their links, not re-validated (whoever imports the export
    validates it). A stored node that cannot be parsed is an :class:`MstError`."""
    stack: list[tuple[CID, bytes | None]] = [(root, b"")]
    while stack:
        cid, marker = stack.pop()
        if marker is None:
            yield cid, None
            continue
        data = source.get(cid)
        if data is None:
            raise MissingBlockError(f"MST node {cid} is missing")
        try:
            node = libipld.decode_dag_cbor(data)
            later: list[tuple[CID, bytes | None]] = []
            if node["l"] is not None:
                later.append((CID(node["l"]), b""))
            for entry in node["e"]:
                later.append((CID(entry["v"]), None))
                if entry["t"] is not None:
                    later.append((CID(entry["t"]), b""))
        except (ValueError, KeyError, TypeError, RecursionError, InvalidCidError) as exc:
            raise MstError(f"stored MST node {cid} is malformed: {exc}") from exc
        yield cid, bytes(data)
        stack.extend(reversed(later))


def export_car(
    source: BlockSource,
    commit_cid: CID,
    *,
    include: Callable[[CID], bool] | None = None,
) -> bytes:
    """The whole repository (or the ``include``-filtered part) as one CAR."""
    return b"".join(iter_export_car(source, commit_cid, include=include))


def diff_car(commit: SignedCommit, blocks: Iterable[tuple[CID, bytes]]) -> bytes:
    """A diff CAR: the commit first, then ``blocks`` (those created after ``since``)."""

    def all_blocks() -> Iterator[tuple[CID, bytes]]:
        yield commit.cid, commit.bytes
        for cid, data in blocks:
            if cid != commit.cid:
                yield cid, data

    return write_car([commit.cid], all_blocks())
