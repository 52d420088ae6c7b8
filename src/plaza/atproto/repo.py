"""A repository as its host (the PDS) writes it: signed commits over an MST, sans-IO.

Theory of operation. A :class:`Repo` is an immutable value: the account's DID, its
signing key, the current signed commit and the MST the commit points to, read lazily
from a :class:`~plaza.atproto.mst.BlockSource` the host provides. :meth:`Repo.apply_writes`
checks a batch of writes against the current tree, builds the new tree, signs a commit
and returns a :class:`CommitResult` holding everything the host must do with it:

1. persist ``new_blocks`` (the commit, the new records and the new MST nodes) and point
   the account at ``cid``/``rev`` — in one transaction;
2. optionally drop ``removed_nodes`` and the records in ``ops[*].prev`` no longer used;
3. emit a ``#commit`` event from ``ops``, ``prev_data``, ``since`` and ``car_slice``;
4. continue from ``result.repo``, which already holds the new state.

Nothing is changed if a write is refused, and ``result.repo`` is only valid once step 1
has happened (its MST may re-read the new nodes from the source). ``Repo`` is immutable
(the brief had ``apply_writes`` on a mutable holder): the next state comes back in the
result, so a failed store leaves the caller's ``Repo`` as it was.

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
from plaza.atproto.mst import MST, BlockSource, NodeCache, Op

MAX_WRITES: Final = 200
"""Most writes in one commit (the firehose's limit on ops per ``#commit``)."""
MAX_RECORD_BYTES: Final = 1_000_000
"""Largest encoded record (the firehose's per-record limit)."""


def record_path(collection: str, rkey: str) -> str:
    """``collection/rkey`` after checking both (:class:`RepoWriteError`)."""
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
    """One requested change: create or update ``record`` at ``collection/rkey``, or delete."""

    action: Literal["create", "update", "delete"]
    collection: str
    rkey: str
    record: Any = None

    @classmethod
    def create(cls, collection: str, rkey: str, record: Any) -> Write:
        return cls("create", collection, rkey, record)

    @classmethod
    def update(cls, collection: str, rkey: str, record: Any) -> Write:
        return cls("update", collection, rkey, record)

    @classmethod
    def delete(cls, collection: str, rkey: str) -> Write:
        return cls("delete", collection, rkey)

    @property
    def path(self) -> str:
        return record_path(self.collection, self.rkey)


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
    """Everything one commit produced; see the module docstring for what to do with it."""

    repo: Repo = field(repr=False)
    commit: SignedCommit
    ops: tuple[Op, ...]
    prev_data: CID | None
    since: str | None
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


class Repo:
    """An account's repository as its host holds it (immutable; see the module docstring)."""

    __slots__ = ("_commit", "_key", "_mst", "did")

    def __init__(self, did: str, key: PrivateKey, commit: SignedCommit, mst: MST) -> None:
        if commit.commit.did != did:
            raise CommitError(f"commit belongs to {commit.commit.did}, not {did}")
        self.did = did
        self._key = key
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
        key: PrivateKey,
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
        return cls(commit.did, key, signed, MST.load(source, commit.data, cache))

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

    @property
    def public_key(self) -> str:
        """The signing key as ``did:key`` (never the secret)."""
        return self._key.did_key()

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

    def apply_writes(self, writes: Iterable[Write], rev: str) -> CommitResult:
        """Apply ``writes`` atomically in a new commit at ``rev`` (must exceed ``self.rev``).

        A create must find no record at its path (:class:`RecordExistsError`), an update
        or delete must find one (:class:`RecordNotFoundError`); a path may appear once.
        An empty list makes a commit that changes no records (after a key rotation, say).
        """
        check_rev(rev)
        if rev <= self.rev:
            raise CommitError(f"rev {rev} does not follow the current rev {self.rev}")
        return _commit(self.did, self._key, self._mst, list(writes), rev, prev=self)

    def with_key(self, key: PrivateKey) -> Repo:
        """The same repository signed from now on with ``key`` (follow with a commit)."""
        return Repo(self.did, key, self._commit, self._mst)


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
            cid, block = encode_record(w.record)
            records[cid] = block
            ops.append(Op(w.action, path, cid, current))
            tree = tree.put(path, cid)
        else:
            raise RepoWriteError(f"unknown write action {w.action!r}")
    data = tree.root()
    signed = sign_commit(did, data, rev, key)
    nodes = tree.new_blocks()
    removed = frozenset(tree.removed_nodes(base)) if prev is not None else frozenset()
    ops_t = tuple(ops)
    proof = tree.inversion_blocks(ops_t) if prev is not None else dict(nodes)
    slice_blocks: list[tuple[CID, bytes]] = [(signed.cid, signed.bytes)]
    slice_blocks += list(records.items())
    slice_blocks += [(c, b) for c, b in proof.items() if c not in records]
    return CommitResult(
        repo=Repo(did, key, signed, tree.committed()),
        commit=signed,
        ops=ops_t,
        prev_data=prev.data if prev is not None else None,
        since=prev.rev if prev is not None else None,
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
