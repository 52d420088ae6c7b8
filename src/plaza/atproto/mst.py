"""The repository's Merkle Search Tree (fanout 4), persistent and lazily loaded.

Theory of operation. An :class:`MST` is an immutable value: ``put`` and ``delete`` return
a new tree that shares every untouched subtree with the old one. A subtree is referenced
either by the CID of a node stored in a :class:`BlockSource` (read and decoded only when
an operation walks into it, then kept in a :class:`NodeCache`) or by a :class:`Node`
built in memory by an earlier operation. A write therefore reads and rebuilds only the
nodes on its key's path (plus, for the split or merge a height change forces, the spine
of the neighbouring subtree). :meth:`MST.root` encodes the in-memory nodes once, bottom
up, and remembers their CIDs; :meth:`MST.new_blocks` lists exactly those nodes, which is
what a commit has to store.

Every node read from a source is hash-checked and validated (see
:mod:`plaza.atproto.mst_node`), and on the way down each is checked against the layer
and the key range its parent gives it, so links never skip a level and no key sits in
the wrong subtree. The shape produced by ``put``/``delete`` is the canonical one: keys at
height *h* live at layer *h*; empty nodes are pruned at the top and bottom but kept in
between. So the root depends only on the key/value set (tested against fresh builds).

Beyond reading and writing keys: :meth:`MST.build` (bulk, from items),
:meth:`MST.committed` (treat the in-memory nodes as stored, after the caller persisted
:meth:`MST.new_blocks`), :meth:`MST.removed_nodes` (nodes of an older tree that this one
no longer references, for garbage collection), :meth:`MST.inversion_blocks` (the nodes
a sync v1.1 consumer needs to invert a commit's ops) and :meth:`MST.apply_ops`.
``walk_preorder`` yields ``(cid, bytes)`` for nodes and ``(cid, None)`` for records.
There is no ``__len__``: counting needs a full walk, so it is the explicit
:meth:`MST.count`. ``a.diff(b)`` gives the ops that turn ``a`` into ``b``.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from plaza.atproto import mst_edit as _e
from plaza.atproto.cid import CID
from plaza.atproto.errors import MstError
from plaza.atproto.mst_edit import BlockSource, NodeCache
from plaza.atproto.mst_node import (
    MAX_KEY_LENGTH,
    MAX_NODE_ENTRIES,
    Node,
    Ref,
    common_prefix_len,
    encode_node,
    key_height,
    ref_cid,
    validate_key,
)

__all__ = [
    "EMPTY_ROOT",
    "MAX_KEY_LENGTH",
    "MAX_NODE_ENTRIES",
    "MST",
    "BlockSource",
    "NodeCache",
    "Op",
    "common_prefix_len",
    "key_height",
    "validate_key",
]

EMPTY_NODE: Final = encode_node((), (), [None])
EMPTY_ROOT: Final = CID.compute(EMPTY_NODE)

Action = Literal["create", "update", "delete"]


@dataclass(frozen=True, slots=True)
class Op:
    """One record change: ``create`` (cid set, prev None), ``update`` (both set) or
    ``delete`` (cid None, prev set). ``prev`` is the record's CID before the change."""

    action: Action
    path: str
    cid: CID | None
    prev: CID | None = None

    def __post_init__(self) -> None:
        ok = {
            "create": self.cid is not None and self.prev is None,
            "update": self.cid is not None and self.prev is not None,
            "delete": self.cid is None and self.prev is not None,
        }.get(self.action)
        if not ok:
            raise MstError(f"inconsistent {self.action!r} op for {self.path!r}")


class MST:
    """An immutable Merkle Search Tree over a :class:`BlockSource`.

    Keys are repository paths (see :func:`validate_key`), values are record CIDs. Build
    one with :meth:`empty`, :meth:`load` or :meth:`build`; every modifying method
    returns a new tree.
    """

    __slots__ = ("_fresh", "_layer", "_root", "_settled", "_store")

    def __init__(self, store: _e.Store, root: Ref, layer: int) -> None:
        self._store = store
        self._root = root
        self._layer = layer
        self._settled: MST | None = None  # what committed() returned, made once
        self._fresh: dict[CID, bytes] | None = None  # what new_blocks() found, found once

    # -- construction -----------------------------------------------------------------

    @classmethod
    def empty(cls, source: BlockSource | None = None, cache: NodeCache | None = None) -> MST:
        """An empty tree (its root is :data:`EMPTY_ROOT`)."""
        return cls(_e.Store(source if source is not None else {}, cache), None, 0)

    @classmethod
    def load(cls, source: BlockSource, root: CID, cache: NodeCache | None = None) -> MST:
        """The tree whose root node is ``root`` in ``source``; nodes load lazily.

        The root node is read and checked now (:class:`MissingBlockError`,
        :class:`MstError`); the rest when an operation reaches them.
        """
        store = _e.Store(source, cache)
        node = store.node(root)
        if not node.keys:
            if node.subs[0] is not None:
                raise MstError(f"MST root {root} is an empty node over a subtree (not pruned)")
            return cls(store, None, 0)
        return cls(store, root, node.height)

    @classmethod
    def build(
        cls,
        items: Iterable[tuple[str, CID]],
        source: BlockSource | None = None,
        cache: NodeCache | None = None,
    ) -> MST:
        """A tree holding ``items`` (any order; duplicate keys are an error), built in bulk."""
        pairs = sorted(items, key=lambda kv: kv[0])
        keys = [k for k, _ in pairs]
        vals = [v for _, v in pairs]
        for i, k in enumerate(keys):
            validate_key(k)
            if i and keys[i - 1] == k:
                raise MstError(f"duplicate MST key {k!r}")
            if type(vals[i]) is not CID:
                raise MstError(f"value for {k!r} is not a CID")
        store = _e.Store(source if source is not None else {}, cache)
        if not keys:
            return cls(store, None, 0)
        heights = [key_height(k) for k in keys]
        top = max(heights)
        return cls(store, _e.build(keys, vals, heights, 0, len(keys), top), top)

    # -- reading ----------------------------------------------------------------------

    @property
    def layer(self) -> int:
        """Height of the root node (0 for an empty tree)."""
        return self._layer

    def get(self, key: str) -> CID | None:
        """The record CID stored under ``key``, or None."""
        validate_key(key)
        kh = key_height(key)
        ref = self._root
        layer = self._layer
        lo: str | None = None
        hi: str | None = None
        while ref is not None and layer >= kh:
            node = _e.resolve(self._store, ref, layer, lo, hi)
            keys = node.keys
            i = bisect_left(keys, key)
            if i < len(keys) and keys[i] == key:
                return node.vals[i]
            lo, hi = _e.bounds(keys, i, lo, hi)
            ref = node.subs[i]
            layer -= 1
        return None

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key) is not None

    def items(self, start: str | None = None, end: str | None = None) -> Iterator[tuple[str, CID]]:
        """``(key, cid)`` in key order with ``start <= key < end`` (either bound optional).

        Walking the whole tree validates every node it reaches.
        """
        if self._root is None:
            return iter(())
        return self._iter(self._root, self._layer, None, None, start, end)

    def _iter(  # noqa: PLR0917
        self,
        ref: CID | Node,
        layer: int,
        lo: str | None,
        hi: str | None,
        start: str | None,
        end: str | None,
    ) -> Iterator[tuple[str, CID]]:
        node = _e.resolve(self._store, ref, layer, lo, hi)
        keys = node.keys
        subs = node.subs
        n = len(keys)
        first = bisect_left(keys, start) if start is not None else 0
        for i in range(first, n + 1):
            sub = subs[i]
            if sub is not None:
                clo, chi = _e.bounds(keys, i, lo, hi)
                yield from self._iter(sub, layer - 1, clo, chi, start, end)
            if i < n:
                key = keys[i]
                if end is not None and key >= end:
                    return
                yield key, node.vals[i]

    def prefix(self, prefix: str) -> Iterator[tuple[str, CID]]:
        """Entries whose key starts with ``prefix`` (keys are ASCII below ``\\x7f``)."""
        return self.items(prefix, prefix + "\x7f") if prefix else self.items()

    def keys(self) -> list[str]:
        """Every key, in order (walks the whole tree)."""
        return [k for k, _ in self.items()]

    def count(self) -> int:
        """Number of entries (walks the whole tree: O(n))."""
        return sum(1 for _ in self.items())

    # -- writing ----------------------------------------------------------------------

    def put(self, key: str, value: CID) -> MST:
        """A tree with ``key`` set to ``value`` (created or replaced)."""
        validate_key(key)
        if type(value) is not CID:
            raise MstError(f"MST value for {key!r} must be a CID")
        kh = key_height(key)
        store = self._store
        root = self._root
        if root is None:
            return MST(store, Node((key,), (value,), (None, None), kh), kh)
        layer = self._layer
        while layer < kh:  # the key belongs above the current root: lift it first
            root = Node((), (), (root,), -1)
            layer += 1
        new = _e.put(store, root, layer, key, value, kh, None, None)
        if new is root and layer == self._layer:
            return self
        return MST(store, new, layer)

    def delete(self, key: str) -> MST:
        """A tree without ``key`` (unchanged if it was absent)."""
        validate_key(key)
        kh = key_height(key)
        if self._root is None or kh > self._layer:
            return self
        layer = self._layer
        new = _e.delete(self._store, self._root, layer, key, kh, None, None)
        if new is self._root:
            return self
        while new is not None:  # prune empty nodes from the top
            node = _e.resolve(self._store, new, layer, None, None)
            if node.keys:
                break
            new = node.subs[0]
            layer -= 1
        if new is None:
            return MST(self._store, None, 0)
        return MST(self._store, new, layer)

    def apply_ops(self, ops: Iterable[Op], *, invert: bool = False) -> MST:
        """Apply ``ops`` (or undo them, in reverse order, when ``invert``), checking that
        each one finds the state it expects: a create finds no record (or, inverted, its
        own ``cid``), an update or delete finds ``prev``, and so on. A mismatch is an
        :class:`MstError`."""
        tree = self
        seq = list(ops)
        for op in reversed(seq) if invert else seq:
            current = tree.get(op.path)
            expect, target = (op.cid, op.prev) if invert else (op.prev, op.cid)
            if current != expect:
                raise MstError(
                    f"{op.action} of {op.path!r} expected {expect} but the tree holds {current}"
                )
            tree = tree.delete(op.path) if target is None else tree.put(op.path, target)
        return tree

    # -- encoding ---------------------------------------------------------------------

    def root(self) -> CID:
        """The root CID; encodes (once) any node built in memory."""
        if self._root is None:
            return EMPTY_ROOT
        cid = _e.encode(self._root)
        assert cid is not None
        return cid

    def new_blocks(self) -> dict[CID, bytes]:
        """Node blocks built in memory since the tree was loaded (what a commit stores).

        An empty tree always reports its (tiny) empty root node.
        """
        if self._fresh is None:
            self.root()
            out: dict[CID, bytes] = {}
            if self._root is None:
                out[EMPTY_ROOT] = EMPTY_NODE
            else:
                stack: list[Ref] = [self._root]
                while stack:
                    ref = stack.pop()
                    if type(ref) is Node:
                        assert ref.cid is not None and ref.data is not None
                        out[ref.cid] = ref.data
                        stack.extend(ref.subs)
            self._fresh = out
        return dict(self._fresh)

    def committed(self) -> MST:
        """This tree with its in-memory nodes treated as stored in the source.

        Call it after persisting :meth:`new_blocks`; later ``new_blocks`` then report only
        what changed since. The nodes stay cached, and if evicted are re-read from the
        source, so the source must really hold them.
        """
        if self._settled is not None:
            return self._settled
        self.root()
        if self._root is None or type(self._root) is CID:
            return self
        cache = self._store.cache

        def settle(ref: Ref) -> CID | None:
            if type(ref) is not Node:
                return ref  # type: ignore[return-value]
            subs = tuple(settle(s) for s in ref.subs)
            assert ref.cid is not None
            cache.put(ref.cid, Node(ref.keys, ref.vals, subs, ref.height, ref.cid, ref.data))
            return ref.cid

        settled = MST(self._store, settle(self._root), self._layer)
        self._settled = settled
        return settled

    def walk_preorder(self) -> Iterator[tuple[CID, bytes | None]]:
        """Node blocks in pre-order with record CIDs interleaved in key order.

        Yields ``(node_cid, node_bytes)`` for nodes and ``(record_cid, None)`` for records:
        a node, its left subtree, then for each entry the record and the subtree to its
        right. This is the block order the repository spec prefers for CAR export.
        """
        root = self.root()
        if self._root is None:
            yield root, EMPTY_NODE
            return
        yield from self._walk(self._root, self._layer, None, None)

    def _walk(
        self, ref: CID | Node, layer: int, lo: str | None, hi: str | None
    ) -> Iterator[tuple[CID, bytes | None]]:
        node = _e.resolve(self._store, ref, layer, lo, hi)
        assert node.cid is not None and node.data is not None
        yield node.cid, node.data
        keys = node.keys
        subs = node.subs
        for i in range(len(keys) + 1):
            sub = subs[i]
            if sub is not None:
                clo, chi = _e.bounds(keys, i, lo, hi)
                yield from self._walk(sub, layer - 1, clo, chi)
            if i < len(keys):
                yield node.vals[i], None

    def all_blocks(self) -> dict[CID, bytes]:
        """Every node block of the tree (loading all of them), for export."""
        return {cid: data for cid, data in self.walk_preorder() if data is not None}

    def proof_blocks(self, key: str) -> dict[CID, bytes]:
        """The nodes from the root down to ``key`` (or to where it would be): together
        with the commit they prove the key's presence or absence."""
        validate_key(key)
        self.root()
        if self._root is None:
            return {EMPTY_ROOT: EMPTY_NODE}
        out: dict[CID, bytes] = {}
        ref: Ref = self._root
        layer = self._layer
        lo: str | None = None
        hi: str | None = None
        while ref is not None:
            node = _e.resolve(self._store, ref, layer, lo, hi)
            assert node.cid is not None and node.data is not None
            out[node.cid] = node.data
            i = bisect_left(node.keys, key)
            if i < len(node.keys) and node.keys[i] == key:
                break
            lo, hi = _e.bounds(node.keys, i, lo, hi)
            ref = node.subs[i]
            layer -= 1
        return out

    # -- comparing --------------------------------------------------------------------

    def diff(self, other: MST) -> list[Op]:
        """The ops that turn this tree into ``other``, in key order.

        Subtrees with equal CIDs on both sides are skipped without being read.
        """
        self.root()
        other.root()
        return [
            Op(action, path, cid, prev)
            for action, path, cid, prev in _e.diff_trees(
                (self._store, self._root, self._layer), (other._store, other._root, other._layer)
            )
        ]

    def removed_nodes(self, older: MST) -> set[CID]:
        """CIDs of ``older``'s nodes that this tree no longer references.

        Meant for a tree derived from ``older`` by writes: only the rewritten paths are
        visited. For unrelated trees it is correct but walks all of ``older``.
        """
        keep = set(self.new_blocks())
        stack: list[Ref] = [self._root]
        while stack:  # the stored subtrees this tree links to are shared, not removed
            ref = stack.pop()
            if type(ref) is Node:
                stack.extend(ref.subs)
            elif ref is not None:
                keep.add(ref)  # type: ignore[arg-type]
        older_root = older.root()
        removed: set[CID] = set()
        if older._root is None:
            if older_root not in keep:
                removed.add(older_root)
            return removed
        todo: list[tuple[CID | Node, int]] = [(older._root, older._layer)]
        while todo:
            ref, layer = todo.pop()
            cid = ref_cid(ref)
            assert cid is not None
            if cid in keep:
                continue
            removed.add(cid)
            node = _e.resolve(older._store, ref, layer, None, None)
            todo.extend((s, layer - 1) for s in node.subs if s is not None)
        return removed

    def inversion_blocks(self, ops: Sequence[Op]) -> dict[CID, bytes]:
        """The node blocks a consumer needs to undo ``ops`` on this tree (sync v1.1).

        ``ops`` are the changes that produced this tree. They are undone on a copy that
        records every node it reads; the result is those nodes plus the nodes built in
        memory. Raises :class:`MstError` if the ops do not match this tree.

        For each created key the edge spines of its two neighbouring subtrees are added
        too: a consumer that, like the reference implementations, learns a subtree's key
        range by reading it (rather than from the parent's keys, as this one does) needs
        them to place the key. The interop ``blocksInProof`` fixtures include them.
        """
        fresh = self.new_blocks()
        settled = self.committed()  # puts the in-memory nodes in the cache, decoded
        source = _e.Overlay(fresh, self._store.source)
        reads: dict[CID, bytes] = {}
        copy = MST(_e.Store(source, self._store.cache, reads), settled._root, self._layer)
        for op in ops:
            if op.action == "create":
                copy._touch_neighbours(op.path)
        copy.apply_ops(ops, invert=True)
        return {**fresh, **reads}

    def _touch_neighbours(self, key: str) -> None:
        """Read the right spine of the subtree left of ``key`` and the left spine of the
        subtree right of it (in the node that holds ``key``)."""
        kh = key_height(key)
        ref = self._root
        layer = self._layer
        lo: str | None = None
        hi: str | None = None
        while ref is not None and layer >= kh:
            node = _e.resolve(self._store, ref, layer, lo, hi)
            keys = node.keys
            i = bisect_left(keys, key)
            if i < len(keys) and keys[i] == key:
                for side, sub in ((-1, node.subs[i]), (0, node.subs[i + 1])):
                    slo, shi = _e.bounds(keys, i + 1 + side, lo, hi)
                    slayer = layer - 1
                    while sub is not None:
                        snode = _e.resolve(self._store, sub, slayer, slo, shi)
                        if side:
                            slo = snode.keys[-1] if snode.keys else slo
                        else:
                            shi = snode.keys[0] if snode.keys else shi
                        sub = snode.subs[side]
                        slayer -= 1
                return
            lo, hi = _e.bounds(keys, i, lo, hi)
            ref = node.subs[i]
            layer -= 1

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MST) and other.root() == self.root()

    def __hash__(self) -> int:
        return hash(self.root())

    def __repr__(self) -> str:
        return f"MST(root={self.root()}, layer={self._layer})"
