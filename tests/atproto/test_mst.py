"""The Merkle Search Tree against the interop vectors, fresh builds and hostile nodes."""

from __future__ import annotations

import contextlib
import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plaza.atproto import cbor
from plaza.atproto.cid import CID
from plaza.atproto.errors import (
    BlockHashMismatchError,
    MissingBlockError,
    MstError,
)
from plaza.atproto.mst import (
    EMPTY_ROOT,
    MST,
    NodeCache,
    Op,
    common_prefix_len,
    key_height,
    validate_key,
)
from plaza.atproto.mst_node import MAX_NODE_ENTRIES, decode_node, encode_node, ref_cid
from plaza.errors import PlazaError
from tests.vectors import load_json, load_lines, params

KEY_HEIGHTS = load_json("atproto-interop", "mst", "key_heights.json")
COMMON_PREFIX = load_json("atproto-interop", "mst", "common_prefix.json")
EXAMPLE_KEYS = load_lines("atproto-interop", "mst", "example_keys.txt")
PROOFS = load_json("atproto-interop", "firehose", "commit-proof-fixtures.json")


def cid_of(n: int) -> CID:
    return CID.compute(cbor.encode({"n": n}))


# -- vectors -----------------------------------------------------------------------------


@pytest.mark.parametrize("case", params(KEY_HEIGHTS, lambda c: c["key"] or "empty"))
def test_key_height_vector(case: dict[str, Any]) -> None:
    assert key_height(case["key"]) == case["height"]


@pytest.mark.parametrize("case", params(COMMON_PREFIX, lambda c: f"{c['left']!r}-{c['right']!r}"))
def test_common_prefix_vector(case: dict[str, Any]) -> None:
    left = case["left"].encode()
    right = case["right"].encode()
    assert common_prefix_len(left, right) == case["len"]


@pytest.mark.parametrize("key", params(EXAMPLE_KEYS))
def test_example_key_has_the_height_its_name_says(key: str) -> None:
    validate_key(key)
    assert key_height(key) == int(key[1])


def test_empty_tree_root() -> None:
    assert str(EMPTY_ROOT) == "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"
    assert MST.empty().root() == EMPTY_ROOT
    empty = MST.empty()
    assert MST.load(empty.new_blocks(), EMPTY_ROOT).root() == EMPTY_ROOT


@pytest.mark.parametrize("fx", params(PROOFS, lambda f: f["comment"]))
def test_commit_proof_fixture(fx: dict[str, Any]) -> None:
    leaf = CID.decode(fx["leafValue"])
    before = MST.empty()
    for key in fx["keys"]:
        before = before.put(key, leaf)
    assert str(before.root()) == fx["rootBeforeCommit"]
    assert MST.build([(k, leaf) for k in fx["keys"]]).root() == before.root()

    # apply the commit on a tree loaded from storage, as a host would
    stored = dict(before.new_blocks())
    after = MST.load(stored, before.root())
    for key in fx["adds"]:
        after = after.put(key, leaf)
    for key in fx["dels"]:
        after = after.delete(key)
    assert str(after.root()) == fx["rootAfterCommit"]

    ops = before.diff(after)
    assert {o.path for o in ops if o.action == "create"} == set(fx["adds"])
    assert {o.path for o in ops if o.action == "delete"} == set(fx["dels"])
    proof = after.inversion_blocks(ops)
    assert {str(c) for c in proof} == set(fx["blocksInProof"])

    # a consumer holding only the proof blocks inverts the ops back to the old root
    partial = MST.load(proof, after.root())
    assert partial.apply_ops(ops, invert=True).root() == before.root()


# -- keys --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "",
        "nslash",
        "a/b/c",
        "/rkey",
        "coll/",
        "coll/ space",
        "coll/with\u00e9",
        "coll/..",
        "./rkey",
        "coll/" + "a" * 1100,
        "coll/a#b",
    ],
)
def test_invalid_keys_are_refused(key: str) -> None:
    with pytest.raises(MstError):
        validate_key(key)
    with pytest.raises(MstError):
        MST.empty().put(key, cid_of(1))


def test_valid_key_characters() -> None:
    validate_key("app.bsky.feed.post/3k2a-b_c:d~e.f")


# -- operations ---------------------------------------------------------------------------

KEY = st.builds(
    lambda c, r: f"com.example.{c}/{r}",
    st.sampled_from(["a", "b", "c"]),
    st.text(alphabet="abcdefghij0123456789", min_size=1, max_size=6),
)
ITEMS = st.dictionaries(KEY, st.integers(0, 50).map(cid_of), max_size=40)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(items=ITEMS, seed=st.integers(0, 2**32))
def test_root_is_independent_of_insertion_order(items: dict[str, CID], seed: int) -> None:
    order = list(items.items())
    random.Random(seed).shuffle(order)
    tree = MST.empty()
    for k, v in order:
        tree = tree.put(k, v)
    assert tree.root() == MST.build(items.items()).root()
    assert list(tree.items()) == sorted(items.items())
    for k, v in items.items():
        assert tree.get(k) == v


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(old=ITEMS, new=ITEMS)
def test_diff_applied_to_old_gives_new(old: dict[str, CID], new: dict[str, CID]) -> None:
    a = MST.build(old.items())
    b = MST.build(new.items())
    ops = a.diff(b)
    assert a.apply_ops(ops).root() == b.root()
    assert b.apply_ops(ops, invert=True).root() == a.root()
    assert [o.path for o in ops] == sorted(o.path for o in ops)
    expected = {k for k in old.keys() | new.keys() if old.get(k) != new.get(k)}
    assert {o.path for o in ops} == expected


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(items=ITEMS, data=st.data())
def test_incremental_delete_matches_fresh_build(items: dict[str, CID], data: Any) -> None:
    start = MST.build(items.items())
    stored = start.new_blocks()
    tree = MST.load(stored, start.root())
    doomed = data.draw(
        st.lists(st.sampled_from(sorted(items)), unique=True) if items else st.just([])
    )
    for k in doomed:
        tree = tree.delete(k)
    rest = {k: v for k, v in items.items() if k not in doomed}
    assert tree.root() == MST.build(rest.items()).root()
    # removed nodes are exactly the stored nodes the new tree no longer reaches
    full_new = set(MST.load({**stored, **tree.new_blocks()}, tree.root()).all_blocks())
    assert tree.removed_nodes(MST.load(stored, start.root())) == set(stored) - full_new


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(old=ITEMS, extra=ITEMS, data=st.data())
def test_inversion_needs_only_the_proof_blocks(
    old: dict[str, CID], extra: dict[str, CID], data: Any
) -> None:
    before = MST.build(old.items())
    stored = before.new_blocks()
    after = MST.load(stored, before.root())
    for k, v in extra.items():
        after = after.put(k, v)
    doomed = data.draw(st.lists(st.sampled_from(sorted(old)), unique=True) if old else st.just([]))
    for k in doomed:
        after = after.delete(k)
    ops = before.diff(after)
    if not ops:
        return
    proof = after.inversion_blocks(ops)
    partial = MST.load(proof, after.root())
    assert partial.apply_ops(ops, invert=True).root() == before.root()


def test_get_items_range_and_prefix() -> None:
    items = {f"app.bsky.feed.{c}/{i:04d}": cid_of(i) for c in ("like", "post") for i in range(300)}
    tree = MST.build(items.items())
    assert tree.get("app.bsky.feed.like/0007") == cid_of(7)
    assert tree.get("app.bsky.feed.like/9999") is None
    assert "app.bsky.feed.post/0299" in tree
    likes = list(tree.prefix("app.bsky.feed.like/"))
    assert [k for k, _ in likes] == sorted(k for k in items if k.startswith("app.bsky.feed.like/"))
    window = list(tree.items("app.bsky.feed.like/0100", "app.bsky.feed.like/0110"))
    assert [k for k, _ in window] == [f"app.bsky.feed.like/{i:04d}" for i in range(100, 110)]
    assert tree.count() == 600


def test_put_same_value_is_a_no_op_and_update_changes_root() -> None:
    tree = MST.build([("a.b/c", cid_of(1)), ("a.b/d", cid_of(2))])
    assert tree.put("a.b/c", cid_of(1)) is tree
    changed = tree.put("a.b/c", cid_of(3))
    assert changed.root() != tree.root()
    assert changed.get("a.b/c") == cid_of(3)
    assert tree.get("a.b/c") == cid_of(1)  # persistent: the old tree is untouched
    assert tree.delete("a.b/zzz") is tree


def test_delete_everything_gives_the_empty_root() -> None:
    keys = [f"com.example.x/{i}" for i in range(200)]
    tree = MST.build([(k, cid_of(i)) for i, k in enumerate(keys)])
    stored = tree.new_blocks()
    loaded = MST.load(stored, tree.root())
    for k in reversed(keys):
        loaded = loaded.delete(k)
    assert loaded.root() == EMPTY_ROOT
    assert loaded.layer == 0


def test_writes_touch_only_the_path() -> None:
    keys = [f"com.example.x/{i:05d}" for i in range(3000)]
    tree = MST.build([(k, cid_of(i)) for i, k in enumerate(keys)])
    stored = tree.new_blocks()
    total = len(stored)
    reads: list[CID] = []

    class Counting(dict[CID, bytes]):
        def get(self, cid: CID, default: Any = None) -> Any:
            reads.append(cid)
            return super().get(cid, default)

    loaded = MST.load(Counting(stored), tree.root())
    changed = loaded.put("com.example.x/01500a", cid_of(1))
    changed.root()
    assert len(reads) <= 3 * (tree.layer + 1)
    assert len(changed.new_blocks()) <= 2 * (tree.layer + 1)
    assert total > 500
    # and committing then writing again reports only the second write's nodes
    again = changed.committed().put("com.example.x/02500a", cid_of(2))
    assert not set(again.new_blocks()) & set(changed.new_blocks())


def test_walk_preorder_order_and_blocks() -> None:
    items = {f"com.example.x/{i:03d}": cid_of(i) for i in range(100)}
    tree = MST.build(items.items())
    walked = list(tree.walk_preorder())
    records = [c for c, data in walked if data is None]
    assert records == [items[k] for k in sorted(items)]
    nodes = [c for c, data in walked if data is not None]
    assert nodes[0] == tree.root()
    assert set(nodes) == set(tree.new_blocks()) == set(tree.all_blocks())


def test_proof_blocks_prove_presence_and_absence() -> None:
    items = {f"com.example.x/{i:03d}": cid_of(i) for i in range(200)}
    tree = MST.build(items.items())
    for key in ("com.example.x/042", "com.example.x/042a"):
        proof = tree.proof_blocks(key)
        assert tree.root() in proof
        assert MST.load(proof, tree.root()).get(key) == items.get(key)


def test_node_cache_is_bounded() -> None:
    cache = NodeCache(max_nodes=16)
    tree = MST.build([(f"com.example.x/{i:04d}", cid_of(i)) for i in range(2000)])
    loaded = MST.load(tree.new_blocks(), tree.root(), cache)
    assert loaded.count() == 2000
    assert len(cache) <= 16


def test_op_shape_is_checked() -> None:
    with pytest.raises(MstError):
        Op("create", "a.b/c", None, None)
    with pytest.raises(MstError):
        Op("delete", "a.b/c", cid_of(1), cid_of(2))
    tree = MST.build([("a.b/c", cid_of(1))])
    with pytest.raises(MstError):
        tree.apply_ops([Op("create", "a.b/c", cid_of(2))])


# -- node codec and hostile nodes ----------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(items=ITEMS, left=st.booleans(), rights=st.data())
def test_node_encoder_matches_the_generic_encoder(
    items: dict[str, CID], left: bool, rights: Any
) -> None:
    keys = tuple(sorted(items))
    vals = tuple(items[k] for k in keys)
    links: list[CID | None] = [cid_of(-1) if left else None]
    links += [rights.draw(st.sampled_from([None, cid_of(-2)])) for _ in keys]
    entries = []
    prev = b""
    for i, k in enumerate(keys):
        kb = k.encode()
        p = common_prefix_len(prev, kb)
        entries.append({"p": p, "k": kb[p:], "v": vals[i], "t": links[i + 1]})
        prev = kb
    assert encode_node(keys, vals, links) == cbor.encode({"l": links[0], "e": entries})


@pytest.mark.parametrize(
    "keys",
    [
        ("\x01\x71\x12\x20" + "a" * 32,),  # a whole key that parses as a CID
        ("a/b", "a/\x01\x71\x12\x20" + "b" * 32),  # a suffix that does
        ("\x12\x20" + "c" * 32,),  # CIDv0's shape
        ("a/\u00e9t\u00e9",),  # UTF-8 beyond the key characters
        ("",),
    ],
    ids=["cid-key", "cid-suffix", "cidv0-key", "utf8", "empty"],
)
def test_node_encoder_writes_keys_that_look_like_links_as_bytes(keys: tuple[str, ...]) -> None:
    vals = tuple(cid_of(i) for i in range(len(keys)))
    links: list[CID | None] = [None] * (len(keys) + 1)
    entries = []
    prev = b""
    for i, k in enumerate(keys):
        kb = k.encode()
        p = common_prefix_len(prev, kb)
        entries.append({"p": p, "k": kb[p:], "v": vals[i], "t": None})
        prev = kb
    assert encode_node(keys, vals, links) == cbor.encode({"l": None, "e": entries})


def _node(entries: list[dict[str, Any]], left: CID | None = None) -> tuple[CID, bytes]:
    data = cbor.encode({"l": left, "e": entries})
    return CID.compute(data), data


def _entry(key: str, val: CID, p: int = 0, t: CID | None = None) -> dict[str, Any]:
    return {"p": p, "k": key.encode()[p:], "v": val, "t": t}


def _height0_keys(n: int) -> list[str]:
    out = []
    i = 0
    while len(out) < n:
        k = f"com.example.x/{i}"
        if key_height(k) == 0:
            out.append(k)
        i += 1
    return sorted(out)


def _hostile() -> dict[str, bytes]:
    v = cid_of(1)
    k0, k1 = _height0_keys(2)
    cases: dict[str, bytes] = {}
    cases["not-a-map"] = cbor.encode([1, 2])
    cases["extra-field"] = cbor.encode({"l": None, "e": [], "x": 1})
    cases["missing-l"] = cbor.encode({"e": []})
    cases["unsorted-keys"] = _node([_entry(k1, v), _entry(k0, v)])[1]
    cases["duplicate-keys"] = _node([_entry(k0, v), _entry(k0, v, p=len(k0))])[1]
    cases["nonzero-first-prefix"] = cbor.encode(
        {"l": None, "e": [{"p": 1, "k": k0.encode()[1:], "v": v, "t": None}]}
    )
    cases["non-maximal-prefix"] = _node([_entry(k0, v), _entry(k1, v, p=0)])[1]
    cases["key-as-link"] = cbor.encode({"l": None, "e": [{"p": 0, "k": v, "v": v, "t": None}]})
    cases["value-as-bytes"] = cbor.encode(
        {"l": None, "e": [{"p": 0, "k": k0.encode(), "v": v.raw, "t": None}]}
    )
    cases["bad-key-chars"] = cbor.encode(
        {"l": None, "e": [{"p": 0, "k": b"a b/c", "v": v, "t": None}]}
    )
    cases["subtree-under-height-0"] = _node([_entry(k0, v, t=cid_of(9))])[1]
    cases["garbage"] = b"\xff\x00\x01"
    cases["float"] = b"\xfb\x3f\xf0\x00\x00\x00\x00\x00\x00"
    cases["deep"] = b"\x81" * 5000 + b"\x01"
    h1 = next(k for k in (f"com.example.x/h{i}" for i in range(400)) if key_height(k) == 1)
    a, b = sorted([k0, h1])
    p = common_prefix_len(a.encode(), b.encode())
    cases["mixed-heights"] = _node([_entry(a, v), _entry(b, v, p=p)])[1]
    return cases


@pytest.mark.parametrize("name", sorted(_hostile()))
def test_hostile_nodes_are_refused(name: str) -> None:
    data = _hostile()[name]
    cid = CID.compute(data)
    with pytest.raises(MstError):
        decode_node(cid, data)
    with pytest.raises(MstError):
        MST.load({cid: data}, cid).count()


def test_too_many_entries_is_refused() -> None:
    keys = _height0_keys(MAX_NODE_ENTRIES + 1)
    v = cid_of(1)
    entries = []
    prev = b""
    for k in keys:
        p = common_prefix_len(prev, k.encode())
        entries.append(_entry(k, v, p=p))
        prev = k.encode()
    cid, data = _node(entries)
    with pytest.raises(MstError, match="entries"):
        decode_node(cid, data)


def test_structure_errors_on_load() -> None:
    v = cid_of(1)
    (k0,) = _height0_keys(1)
    leaf_cid, leaf = _node([_entry(k0, v)])
    # an empty root over a subtree was not pruned
    top_cid, top = _node([], left=leaf_cid)
    with pytest.raises(MstError, match="pruned"):
        MST.load({top_cid: top, leaf_cid: leaf}, top_cid)
    # a height-1 key whose left subtree holds a key that sorts after it
    hi_key = next(k for k in (f"com.example.a/{i}" for i in range(500)) if key_height(k) == 1)
    assert k0 > hi_key
    root_cid, root = _node([_entry(hi_key, v)], left=leaf_cid)
    with pytest.raises(MstError, match="range"):
        MST.load({root_cid: root, leaf_cid: leaf}, root_cid).count()
    # links that skip a level: a height-2 key pointing straight at a height-0 node
    h2 = next(k for k in (f"com.example.b/{i}" for i in range(5000)) if key_height(k) == 2)
    r2_cid, r2 = _node([_entry(h2, v)], left=leaf_cid)
    with pytest.raises(MstError, match="layer"):
        MST.load({r2_cid: r2, leaf_cid: leaf}, r2_cid).count()


def test_missing_and_tampered_blocks() -> None:
    tree = MST.build([(f"com.example.x/{i:03d}", cid_of(i)) for i in range(100)])
    blocks = dict(tree.new_blocks())
    child = next(c for c in blocks if c != tree.root())
    del blocks[child]
    with pytest.raises(MissingBlockError):
        MST.load(blocks, tree.root()).count()
    blocks = dict(tree.new_blocks())
    blocks[child] = blocks[child][:-1] + bytes([blocks[child][-1] ^ 1])
    with pytest.raises(BlockHashMismatchError):
        MST.load(blocks, tree.root()).count()


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=300))
def test_malformed_node_bytes_raise_plaza_errors(data: bytes) -> None:
    cid = CID.compute(data)
    with contextlib.suppress(PlazaError):
        MST.load({cid: data}, cid).count()


@settings(max_examples=200, deadline=None)
@given(items=ITEMS.filter(bool), pos=st.integers(0, 10_000), bit=st.integers(0, 7))
def test_flipped_bits_in_nodes_raise_plaza_errors(
    items: dict[str, CID], pos: int, bit: int
) -> None:
    tree = MST.build(items.items())
    blocks = tree.new_blocks()
    cid = sorted(blocks)[pos % len(blocks)]
    data = bytearray(blocks[cid])
    data[pos % len(data)] ^= 1 << bit
    forged = bytes(data)
    forged_cid = CID.compute(forged)
    try:
        node = decode_node(forged_cid, forged)
    except PlazaError:
        return
    # a flip that still decodes can only be another canonical node (say, a changed CID)
    links = [ref_cid(s) for s in node.subs]
    assert encode_node(node.keys, node.vals, links) == forged
