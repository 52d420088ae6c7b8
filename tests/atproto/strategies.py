"""Hypothesis strategies for atproto data-model values, shared by the codec tests."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from plaza.atproto.cid import CID, DAG_CBOR, RAW

#: Byte strings that libipld's encoder would mistake for CID links: a binary CIDv1
#: (``01 71 12 20`` + 32 bytes) or a bare sha2-256 multihash (``12 20`` + 32 bytes).
CID_LOOKALIKE_BYTES = st.one_of(
    st.binary(min_size=32, max_size=32).map(lambda d: b"\x01\x71\x12\x20" + d),
    st.binary(min_size=32, max_size=32).map(lambda d: b"\x01\x55\x12\x20" + d),
    st.binary(min_size=32, max_size=32).map(lambda d: b"\x12\x20" + d),
    st.binary(min_size=0, max_size=63).map(lambda d: b"\x01" + d),
)
CIDS = st.builds(
    CID.compute,
    st.binary(max_size=16),
    st.sampled_from([DAG_CBOR, RAW]),
)
INTS = st.integers(min_value=-(2**63), max_value=2**64 - 1)
# Keys starting with "$" are reserved by the data model ($type, $link, $bytes).
KEYS = st.text(max_size=12).filter(lambda k: not k.startswith("$"))


def scalars(*, with_bytes: bool = True, with_cids: bool = True) -> st.SearchStrategy[Any]:
    options: list[st.SearchStrategy[Any]] = [
        st.none(),
        st.booleans(),
        INTS,
        st.text(max_size=24),
    ]
    if with_bytes:
        options += [st.binary(max_size=40), CID_LOOKALIKE_BYTES]
    if with_cids:
        options.append(CIDS)
    return st.one_of(options)


def values(*, with_bytes: bool = True, with_cids: bool = True) -> st.SearchStrategy[Any]:
    """Any data-model value: nested lists and string-keyed maps of scalars."""
    return st.recursive(
        scalars(with_bytes=with_bytes, with_cids=with_cids),
        lambda inner: st.lists(inner, max_size=5) | st.dictionaries(KEYS, inner, max_size=5),
        max_leaves=25,
    )


def objects(*, with_bytes: bool = True, with_cids: bool = True) -> st.SearchStrategy[Any]:
    """A data-model map at the top level (what records and JSON documents are)."""
    return st.dictionaries(KEYS, values(with_bytes=with_bytes, with_cids=with_cids), max_size=6)
