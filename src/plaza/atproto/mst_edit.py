"""The edit algorithms behind :class:`plaza.atproto.mst.MST` (package-private).

Every function takes a :class:`Store` (the block source plus its node cache) and a
subtree reference with the layer it sits at and the open key range ``(lo, hi)`` its
parent allows; :func:`resolve` checks a stored node against both when it is read. The
functions never modify a node: they return new ones, or the very same reference when
nothing changed (callers rely on that identity to keep stored subtrees shared). They
take positional arguments on purpose: they are the recursive hot path of every write.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Sequence
from itertools import islice
from typing import Literal, Protocol

from plaza.atproto.cid import CID
from plaza.atproto.errors import BlockHashMismatchError, MissingBlockError, MstError
from plaza.atproto.mst_node import MAX_NODE_ENTRIES, Node, Ref, decode_node, encode_node, ref_cid


class BlockSource(Protocol):
    """Anything that returns a block's bytes by CID, or None; a ``dict`` works."""

    def get(self, cid: CID, /) -> bytes | None: ...


class NodeCache:
    """Decoded nodes by CID, bounded; may be shared by every tree over one source."""

    __slots__ = ("_max", "_nodes")

    def __init__(self, max_nodes: int = 50_000) -> None:
        self._max = max(16, max_nodes)
        self._nodes: dict[CID, Node] = {}

    def get(self, cid: CID) -> Node | None:
        return self._nodes.get(cid)

    def put(self, cid: CID, node: Node) -> None:
        nodes = self._nodes
        if len(nodes) >= self._max:
            for old in list(islice(nodes, self._max // 2)):
                del nodes[old]
        nodes[cid] = node

    def __len__(self) -> int:
        return len(self._nodes)


class Store:
    """A source plus its cache; optionally records the blocks it was asked for (by CID,
    with their bytes, which decoded nodes keep: recording reads no source)."""

    __slots__ = ("cache", "reads", "source")

    def __init__(
        self, source: BlockSource, cache: NodeCache | None, reads: dict[CID, bytes] | None = None
    ) -> None:
        self.source = source
        self.cache = cache if cache is not None else NodeCache()
        self.reads = reads

    def node(self, cid: CID) -> Node:
        node = self.cache.get(cid)
        if node is None:
            data = self.source.get(cid)
            if data is None:
                raise MissingBlockError(f"MST node {cid} is missing")
            if not cid.matches(data):
                raise BlockHashMismatchError(f"block {cid} does not match its hash")
            node = decode_node(cid, bytes(data))
            self.cache.put(cid, node)
        if self.reads is not None:
            assert node.data is not None
            self.reads[cid] = node.data
        return node


def resolve(store: Store, ref: CID | Node, layer: int, lo: str | None, hi: str | None) -> Node:
    if type(ref) is Node:
        return ref
    assert isinstance(ref, CID)
    node = store.node(ref)
    keys = node.keys
    if not keys:
        if layer <= 0 or node.subs[0] is None:
            raise MstError(f"MST node {ref} is empty below the root")
    elif node.height != layer:
        raise MstError(f"MST node {ref} holds height-{node.height} keys at layer {layer}")
    elif (lo is not None and keys[0] <= lo) or (hi is not None and keys[-1] >= hi):
        raise MstError(f"MST node {ref} has keys outside its parent's range")
    return node


def mk(keys: tuple[str, ...], vals: tuple[CID, ...], subs: tuple[Ref, ...], layer: int) -> Ref:
    if not keys:
        if subs[0] is None:
            return None
        return Node(keys, vals, subs, -1)
    if len(keys) > MAX_NODE_ENTRIES:
        raise MstError(f"an MST node would exceed {MAX_NODE_ENTRIES} entries")
    return Node(keys, vals, subs, layer)


def bounds(
    keys: tuple[str, ...], i: int, lo: str | None, hi: str | None
) -> tuple[str | None, str | None]:
    return (keys[i - 1] if i > 0 else lo), (keys[i] if i < len(keys) else hi)


def put(  # noqa: PLR0917
    store: Store,
    ref: Ref,
    layer: int,
    key: str,
    val: CID,
    kh: int,
    lo: str | None,
    hi: str | None,
) -> Ref:
    if ref is None:
        if kh == layer:
            return Node((key,), (val,), (None, None), layer)
        return Node((), (), (put(store, None, layer - 1, key, val, kh, lo, hi),), -1)
    node = ref if type(ref) is Node else resolve(store, ref, layer, lo, hi)
    keys = node.keys
    i = bisect_left(keys, key)
    n = len(keys)
    subs = node.subs
    if kh == layer:
        vals = node.vals
        if i < n and keys[i] == key:
            if vals[i] == val:
                return ref
            return Node(keys, (*vals[:i], val, *vals[i + 1 :]), subs, layer)
        left, right = split(
            store, subs[i], layer - 1, key, keys[i - 1] if i else lo, keys[i] if i < n else hi
        )
        if n >= MAX_NODE_ENTRIES:
            raise MstError(f"an MST node would exceed {MAX_NODE_ENTRIES} entries")
        return Node(
            (*keys[:i], key, *keys[i:]),
            (*vals[:i], val, *vals[i:]),
            (*subs[:i], left, right, *subs[i + 1 :]),
            layer,
        )
    child = subs[i]
    new_child = put(
        store, child, layer - 1, key, val, kh, keys[i - 1] if i else lo, keys[i] if i < n else hi
    )
    if new_child is child:
        return ref
    return Node(keys, node.vals, (*subs[:i], new_child, *subs[i + 1 :]), node.height)


def split(  # noqa: PLR0917
    store: Store,
    ref: Ref,
    layer: int,
    key: str,
    lo: str | None,
    hi: str | None,
) -> tuple[Ref, Ref]:
    """Split a subtree into the parts before and after ``key`` (which it does not hold)."""
    if ref is None:
        return None, None
    node = resolve(store, ref, layer, lo, hi)
    keys = node.keys
    i = bisect_left(keys, key)
    child = node.subs[i]
    clo, chi = bounds(keys, i, lo, hi)
    sl, sr = split(store, child, layer - 1, key, clo, chi)
    if i == len(keys) and sl is child:
        return ref, None
    if i == 0 and sr is child:
        return None, ref
    vals = node.vals
    subs = node.subs
    left = mk(keys[:i], vals[:i], (*subs[:i], sl), layer)
    right = mk(keys[i:], vals[i:], (sr, *subs[i + 1 :]), layer)
    return left, right


def delete(  # noqa: PLR0917
    store: Store,
    ref: Ref,
    layer: int,
    key: str,
    kh: int,
    lo: str | None,
    hi: str | None,
) -> Ref:
    if ref is None:
        return None
    node = resolve(store, ref, layer, lo, hi)
    keys = node.keys
    i = bisect_left(keys, key)
    subs = node.subs
    if kh == layer:
        if i == len(keys) or keys[i] != key:
            return ref
        merged = merge(
            store,
            subs[i],
            subs[i + 1],
            layer - 1,
            keys[i - 1] if i > 0 else lo,
            key,
            keys[i + 1] if i + 1 < len(keys) else hi,
        )
        vals = node.vals
        return mk(
            (*keys[:i], *keys[i + 1 :]),
            (*vals[:i], *vals[i + 1 :]),
            (*subs[:i], merged, *subs[i + 2 :]),
            layer,
        )
    child = subs[i]
    clo, chi = bounds(keys, i, lo, hi)
    new_child = delete(store, child, layer - 1, key, kh, clo, chi)
    if new_child is child:
        return ref
    return mk(keys, node.vals, (*subs[:i], new_child, *subs[i + 1 :]), layer)


def merge(  # noqa: PLR0917
    store: Store,
    a: Ref,
    b: Ref,
    layer: int,
    lo: str | None,
    mid: str,
    hi: str | None,
) -> Ref:
    """Join two adjacent subtrees of one layer (all of ``a`` sorts before all of ``b``)."""
    if a is None:
        return b
    if b is None:
        return a
    na = resolve(store, a, layer, lo, mid)
    nb = resolve(store, b, layer, mid, hi)
    inner = merge(
        store,
        na.subs[-1],
        nb.subs[0],
        layer - 1,
        na.keys[-1] if na.keys else lo,
        mid,
        nb.keys[0] if nb.keys else hi,
    )
    return mk(na.keys + nb.keys, na.vals + nb.vals, (*na.subs[:-1], inner, *nb.subs[1:]), layer)


def encode(ref: Ref) -> CID | None:
    if ref is None or type(ref) is CID:
        return ref
    assert isinstance(ref, Node)
    if ref.cid is None:
        links = [encode(s) for s in ref.subs]
        data = encode_node(ref.keys, ref.vals, links)
        ref.data = data
        ref.cid = CID.compute(data)
    return ref.cid


def build(  # noqa: PLR0917
    keys: Sequence[str],
    vals: Sequence[CID],
    heights: Sequence[int],
    start: int,
    stop: int,
    layer: int,
) -> Ref:
    if start == stop:
        return None
    at = [i for i in range(start, stop) if heights[i] == layer]
    if not at:
        return mk((), (), (build(keys, vals, heights, start, stop, layer - 1),), layer)
    subs: list[Ref] = []
    prev = start
    for i in at:
        subs.append(build(keys, vals, heights, prev, i, layer - 1))
        prev = i + 1
    subs.append(build(keys, vals, heights, prev, stop, layer - 1))
    return mk(tuple(keys[i] for i in at), tuple(vals[i] for i in at), tuple(subs), layer)


class Overlay:
    """Blocks from a dict first, then from another source."""

    __slots__ = ("_first", "_then")

    def __init__(self, first: dict[CID, bytes], then: BlockSource) -> None:
        self._first = first
        self._then = then

    def get(self, cid: CID, /) -> bytes | None:
        data = self._first.get(cid)
        return data if data is not None else self._then.get(cid)


# A diff cursor is a stack (top last) of leaves ``(key, cid)`` and unexpanded subtrees:
# the tree's in-order sequence with the parts not yet read folded up.
class _Sub:
    __slots__ = ("hi", "layer", "lo", "ref")

    def __init__(self, ref: CID | Node, layer: int, lo: str | None, hi: str | None) -> None:
        self.ref = ref
        self.layer = layer
        self.lo = lo
        self.hi = hi


_Item = tuple[str, CID] | _Sub


def _expand(store: Store, stack: list[_Item], item: _Sub) -> None:
    """Replace ``item`` (the top of ``stack``) by its node's subtrees and leaves."""
    stack.pop()
    lo = item.lo
    hi = item.hi
    layer = item.layer
    node = resolve(store, item.ref, layer, lo, hi)
    keys = node.keys
    subs = node.subs
    for i in range(len(keys), -1, -1):
        sub = subs[i]
        if sub is not None:
            clo, chi = bounds(keys, i, lo, hi)
            stack.append(_Sub(sub, layer - 1, clo, chi))
        if i > 0:
            stack.append((keys[i - 1], node.vals[i - 1]))


def _drain(store: Store, stack: list[_Item]) -> Iterator[tuple[str, CID]]:
    while stack:
        item = stack[-1]
        if isinstance(item, _Sub):
            _expand(store, stack, item)
        else:
            stack.pop()
            yield item


Change = tuple[Literal["create", "update", "delete"], str, CID | None, CID | None]


def diff_trees(a: tuple[Store, Ref, int], b: tuple[Store, Ref, int]) -> Iterator[Change]:
    """``(action, key, new_cid, old_cid)`` turning tree ``a`` into tree ``b``, in key order.

    Each tree is ``(store, root, layer)`` and must be encoded (every in-memory node has
    its CID). Equal subtrees are recognised by CID and skipped; the deeper side is
    expanded first so that subtrees of the same layer meet and can be compared.
    """
    a_store, a_root, a_layer = a
    b_store, b_root, b_layer = b
    sa: list[_Item] = [] if a_root is None else [_Sub(a_root, a_layer, None, None)]
    sb: list[_Item] = [] if b_root is None else [_Sub(b_root, b_layer, None, None)]
    while sa and sb:
        x = sa[-1]
        y = sb[-1]
        if isinstance(x, _Sub):
            if isinstance(y, _Sub):
                if ref_cid(x.ref) == ref_cid(y.ref):
                    sa.pop()
                    sb.pop()
                    continue
                if x.layer >= y.layer:
                    _expand(a_store, sa, x)
                if y.layer >= x.layer:
                    _expand(b_store, sb, y)
                continue
            _expand(a_store, sa, x)
            continue
        if isinstance(y, _Sub):
            _expand(b_store, sb, y)
            continue
        ka, va = x
        kb, vb = y
        if ka == kb:
            sa.pop()
            sb.pop()
            if va != vb:
                yield "update", kb, vb, va
        elif ka < kb:
            sa.pop()
            yield "delete", ka, None, va
        else:
            sb.pop()
            yield "create", kb, vb, None
    for ka, va in _drain(a_store, sa):
        yield "delete", ka, None, va
    for kb, vb in _drain(b_store, sb):
        yield "create", kb, vb, None
