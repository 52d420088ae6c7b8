"""Sync v1.1: verifying a ``#commit`` event by inverting its operations.

A ``#commit`` carries a CAR slice (the signed commit, the new records, and the MST nodes
the change touched plus their neighbours), the list of ops (each with the record's new
``cid`` and its ``prev`` CID) and ``prevData``, the MST root before the commit. A
consumer that knows nothing else about the repository can still check that the commit
is exactly "prevData plus these ops": it applies the ops in reverse on the partial tree
in the slice and must arrive at ``prevData``. Every block the inversion needs must be in
the slice (:class:`MissingBlockError` otherwise). Events from before v1.1 have no
``prevData``; for them only the forward check is possible (each op's record is where the
commit's tree says), and the result records that no inversion took place. Hence
``prev_data`` is ``CID | None`` in :func:`verify_commit_event`, which also takes the
event's ``rev`` (keyword) to compare with the commit's.

This module is the inverse of :func:`plaza.atproto.repo.apply_writes`: the host's
``CommitResult`` gives ``car_slice``, ``ops`` and ``prev_data``; :func:`invert_ops`
over the slice gives back ``prev_data``, and :func:`verify_commit_event` adds the
checks of the slice, the commit and its signature.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from plaza.atproto.car import read_car, write_car
from plaza.atproto.cid import CID
from plaza.atproto.commit import Commit, SignedCommit, decode_commit, verify_commit
from plaza.atproto.crypto import PublicKey
from plaza.atproto.errors import (
    CarRootError,
    CommitError,
    InversionError,
    MissingBlockError,
    MstError,
)
from plaza.atproto.mst import MST, BlockSource, Op, validate_key

MAX_OPS: Final = 200
MAX_SLICE_BYTES: Final = 2_000_000


@dataclass(frozen=True)
class VerifiedCommit:
    """A ``#commit`` that passed :func:`verify_commit_event`."""

    did: str
    rev: str | None
    commit_cid: CID
    commit: Commit
    ops: tuple[Op, ...]
    prev_data: CID | None
    blocks: dict[CID, bytes] = field(repr=False)
    signature_checked: bool
    inverted: bool

    @property
    def data(self) -> CID:
        return self.commit.data

    def record_block(self, op: Op) -> bytes | None:
        """The new record block of a create or update op."""
        return None if op.cid is None else self.blocks.get(op.cid)


def parse_ops(raw: Iterable[Mapping[str, Any]], *, v11: bool = False) -> tuple[Op, ...]:
    """Ops from a decoded ``#commit`` body (``{action, path, cid, prev?}`` with CID links).

    A pre-v1.1 op has no ``prev``; its create/update/delete shape is then checked on
    ``cid`` alone and ``prev`` stays None (such ops cannot be inverted). In a v1.1 event
    (``v11``: it carries ``prevData``) a create has no ``prev`` either — the spec says the
    field is absent — and is a regular, invertible op.
    """
    out: list[Op] = []
    for item in raw:
        if not isinstance(item, Mapping):
            raise CommitError("each op must be a map")
        action = item.get("action")
        path = item.get("path")
        cid = item.get("cid")
        prev = item.get("prev")
        if action not in ("create", "update", "delete") or type(path) is not str:
            raise CommitError(f"malformed op {dict(item)!r:.200}")
        if (cid is not None and type(cid) is not CID) or (
            prev is not None and type(prev) is not CID
        ):
            raise CommitError(f"op {path!r}: cid and prev must be CID links or null")
        try:
            validate_key(path)
        except MstError as exc:
            raise CommitError(f"op path: {exc.message}") from exc
        if "prev" in item or (v11 and action == "create"):
            try:
                out.append(Op(action, path, cid, prev))
            except MstError as exc:
                raise CommitError(exc.message) from exc
        else:
            if (action == "delete") != (cid is None):
                raise CommitError(f"{action} op for {path!r} has the wrong cid")
            out.append(LegacyOp(action, path, cid))
    return tuple(out)


def encode_ops(ops: Iterable[Op]) -> list[dict[str, Any]]:
    """The ``ops`` of a ``#commit`` body (the inverse of :func:`parse_ops`): ``prev`` is
    left out where it is None, as the spec has it for creates."""
    out: list[dict[str, Any]] = []
    for op in ops:
        body: dict[str, Any] = {"action": op.action, "path": op.path, "cid": op.cid}
        if op.prev is not None:
            body["prev"] = op.prev
        out.append(body)
    return out


class LegacyOp(Op):
    """A pre-v1.1 op: it has no ``prev``, so its shape is checked on ``cid`` alone (by
    :func:`parse_ops`) and it can be checked forward but never inverted."""

    def __post_init__(self) -> None:  # the prev-based shape rule does not apply
        return None


def invert_ops(blocks: BlockSource, data: CID, ops: Sequence[Op]) -> CID:
    """The MST root before ``ops``: undo them, last first, on the partial tree rooted at
    ``data`` in ``blocks``, each checking that it finds the state it left.

    The inverse of :func:`plaza.atproto.repo.apply_writes` over its ``car_slice``: for
    a commit's ``ops`` it returns the commit's ``prev_data``. Raises
    :class:`CommitError` when an op does not match the tree or has no ``prev``
    (:class:`LegacyOp`), :class:`MissingBlockError` when a node it needs is absent.
    """
    if not ops:
        return data  # nothing to undo, and the slice of such a commit holds no nodes
    return _undo(MST.load(blocks, data), ops)


def _undo(tree: MST, ops: Sequence[Op]) -> CID:
    if any(isinstance(op, LegacyOp) for op in ops):
        raise InversionError("ops without prev cannot be inverted")
    try:
        return tree.apply_ops(ops, invert=True).root()
    except MstError as exc:
        raise InversionError(f"the ops cannot be inverted: {exc.message}") from exc


def check_ops(blocks: BlockSource, data: CID, ops: Sequence[Op], prev_data: CID | None) -> bool:
    """Check ``ops`` against the partial tree rooted at ``data`` in ``blocks``.

    Each op's path must hold its ``cid`` (None for a delete). With ``prev_data``, the
    ops are then undone (:func:`invert_ops`) and the result must be ``prev_data``;
    returns whether that inversion ran. Raises :class:`CommitError`, or
    :class:`MissingBlockError` when a node the check needs is absent.
    """
    if not ops:
        if prev_data is not None and data != prev_data:
            raise CommitError("a commit without ops must keep prevData as its data")
        return prev_data is not None
    tree = MST.load(blocks, data)
    for op in ops:
        found = tree.get(op.path)
        if found != op.cid:
            raise CommitError(f"{op.action} {op.path}: the commit's tree holds {found}")
    if prev_data is None:
        return False
    before = _undo(tree, ops)
    if before != prev_data:
        raise InversionError(f"inverting the ops gives {before}, not prevData {prev_data}")
    return True


def verify_commit_event(  # noqa: PLR0917 - the agreed, event-shaped signature
    blocks_car: bytes,
    ops: Iterable[Op],
    prev_data: CID | None,
    commit_cid: CID,
    key: PublicKey | None,
    did: str,
    *,
    rev: str | None = None,
) -> VerifiedCommit:
    """Verify one ``#commit`` event (see the module docstring).

    Checks the slice (hashes, size, root = ``commit_cid``), the commit (shape, ``did``,
    ``rev`` if given, signature if ``key``), the ops (at most 200, one per path, record
    blocks of creates and updates present, each matching the commit's tree), and, when
    ``prev_data`` is given, that inverting the ops yields ``prev_data``
    (:class:`InversionError` when it does not).
    """
    if len(blocks_car) > MAX_SLICE_BYTES:
        raise CommitError(f"commit slice is larger than {MAX_SLICE_BYTES} bytes")
    car = read_car(blocks_car, max_total_bytes=MAX_SLICE_BYTES)
    if car.root != commit_cid:
        raise CarRootError(f"slice root {car.root} is not the event's commit {commit_cid}")
    block = car.blocks.get(commit_cid)
    if block is None:
        raise CarRootError(f"commit block {commit_cid} is not in the slice")
    commit = decode_commit(block)
    if commit.did != did:
        raise CommitError(f"commit belongs to {commit.did}, event is for {did}")
    if rev is not None and commit.rev != rev:
        raise CommitError(f"commit rev {commit.rev} differs from the event's rev {rev}")
    if key is not None:
        verify_commit(commit, key)
    op_list = tuple(ops)
    if len(op_list) > MAX_OPS:
        raise CommitError(f"{len(op_list)} ops; the limit is {MAX_OPS}")
    if len({op.path for op in op_list}) != len(op_list):
        raise CommitError("an op path appears twice")
    for op in op_list:
        if op.cid is not None and op.cid not in car.blocks:
            raise MissingBlockError(f"record block {op.cid} for {op.path} is not in the slice")
    inverted = check_ops(car.blocks, commit.data, op_list, prev_data)
    return VerifiedCommit(
        did=commit.did,
        rev=commit.rev,
        commit_cid=commit_cid,
        commit=commit,
        ops=op_list,
        prev_data=prev_data,
        blocks=car.blocks,
        signature_checked=key is not None,
        inverted=inverted,
    )


def verify_commit_body(
    body: Mapping[str, Any], key: PublicKey | None, *, require_prev_data: bool = True
) -> VerifiedCommit:
    """Verify a decoded ``#commit`` body (``repo``, ``commit``, ``rev``, ``blocks``,
    ``ops``, ``prevData``) — the shape a firehose consumer holds."""
    repo = body.get("repo")
    commit_cid = body.get("commit")
    blocks = body.get("blocks")
    prev_data = body.get("prevData")
    rev = body.get("rev")
    if type(repo) is not str or type(commit_cid) is not CID or type(blocks) is not bytes:
        raise CommitError("#commit needs repo (string), commit (link) and blocks (bytes)")
    if prev_data is not None and type(prev_data) is not CID:
        raise CommitError("#commit prevData must be a link")
    if prev_data is None and require_prev_data:
        raise CommitError("#commit has no prevData (pre-sync-1.1 event)")
    if rev is not None and type(rev) is not str:
        raise CommitError("#commit rev must be a string")
    raw_ops = body.get("ops")
    if type(raw_ops) is not list:
        raise CommitError("#commit ops must be a list")
    return verify_commit_event(
        blocks,
        parse_ops(raw_ops, v11=prev_data is not None),
        prev_data,
        commit_cid,
        key,
        repo,
        rev=rev,
    )


def sync_event_car(commit: SignedCommit) -> bytes:
    """The ``blocks`` of a ``#sync`` event: a CAR holding only the commit block."""
    return write_car([commit.cid], [(commit.cid, commit.bytes)])
