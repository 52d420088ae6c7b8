"""The record check of ``import_car``: its libipld fast path answers exactly as the
strict decoder does, on canonical blocks and on every kind of non-canonical one."""

from __future__ import annotations

import hashlib
import struct
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from plaza.atproto import cbor
from plaza.atproto.errors import DecodeError
from plaza.atproto.repo_verify import _vouched, check_record
from tests.atproto.strategies import CID_LOOKALIKE_BYTES, CIDS, objects


def strict(block: bytes) -> None:
    """The reference: what ``import_car`` did before the fast path."""
    if type(cbor.decode(block)) is not dict:
        raise DecodeError("the record is not a map")


def outcome(check: Any, block: bytes) -> tuple[str, ...]:
    try:
        check(block)
    except DecodeError as exc:
        return ("refused", exc.message)
    return ("accepted",)


def same_answer(block: bytes) -> None:
    expected = outcome(strict, block)
    assert outcome(check_record, block) == expected
    if _vouched(block):
        assert expected == ("accepted",), "the fast path vouched for a block strict refuses"


# -- raw CBOR, canonical or not ------------------------------------------------------------


def head(major: int, n: int, wide: int = 0) -> bytes:
    """A CBOR head; ``wide`` > 0 takes a longer (non-minimal) argument when one exists."""
    sizes = [nbytes for limit, nbytes in _WIDTHS if n < limit]  # the minimal size first
    nbytes = sizes[min(wide, len(sizes) - 1)]
    info = {0: n, 1: 24, 2: 25, 4: 26, 8: 27}[nbytes]
    return bytes(((major << 5) | info,)) + (n.to_bytes(nbytes, "big") if nbytes else b"")


_WIDTHS = [(24, 0), (0x100, 1), (0x10000, 2), (0x100000000, 4), (2**64, 8)]
WIDE = st.sampled_from([0, 0, 0, 0, 1, 2, 3])
V0_LINK = b"\x12\x20" + hashlib.sha256(b"v0").digest()
PB_LINK = b"\x01\x70\x12\x20" + hashlib.sha256(b"pb").digest()


def text_item(s: str, wide: int = 0) -> bytes:
    raw = s.encode()
    return head(3, len(raw), wide) + raw


def link_item(raw: bytes, prefix: bytes = b"\x00") -> bytes:
    body = prefix + raw
    return b"\xd8\x2a" + head(2, len(body)) + body


scalar_items = st.one_of(
    st.builds(head, st.just(0), st.integers(0, 2**64 - 1), WIDE),
    st.builds(head, st.just(1), st.integers(0, 2**64 - 1), WIDE),  # below -2**63 too
    st.builds(text_item, st.text(max_size=8), WIDE),
    st.binary(max_size=4).map(lambda b: head(3, len(b) + 1) + b"\xff" + b),  # bad UTF-8
    st.binary(max_size=40).map(lambda b: head(2, len(b)) + b),
    CID_LOOKALIKE_BYTES.map(lambda b: head(2, len(b)) + b),
    CIDS.map(lambda c: link_item(c.raw)),
    CIDS.map(lambda c: link_item(c.raw, b"")),  # no multibase prefix
    st.sampled_from([V0_LINK, PB_LINK]).map(link_item),
    st.floats(allow_nan=False).map(lambda x: b"\xfb" + struct.pack(">d", x)),
    st.floats(width=32, allow_nan=False).map(lambda x: b"\xfa" + struct.pack(">f", x)),
    st.sampled_from([b"\xf9\x3c\x00", b"\xf4", b"\xf5", b"\xf6", b"\xf7", b"\xf0", b"\xc1\x01"]),
)


def array_item(items: list[bytes], wide: int) -> bytes:
    return head(4, len(items), wide) + b"".join(items)


def map_item(pairs: list[tuple[str, bytes]], order: str, wide: int) -> bytes:
    encoded = [(text_item(k), v) for k, v in pairs]
    if order == "canonical":
        encoded.sort(key=lambda kv: (len(kv[0]), kv[0]))
    elif order == "reversed":
        encoded.sort(key=lambda kv: (len(kv[0]), kv[0]), reverse=True)
    return head(5, len(encoded), wide) + b"".join(k + v for k, v in encoded)


ORDER = st.sampled_from(["canonical", "canonical", "canonical", "reversed", "as given"])
KEYS = st.sampled_from(["a", "b", "$type", "text", "ref", "a"])  # duplicates possible

items = st.recursive(
    scalar_items,
    lambda inner: st.one_of(
        st.builds(array_item, st.lists(inner, max_size=4), WIDE),
        st.builds(map_item, st.lists(st.tuples(KEYS, inner), max_size=4), ORDER, WIDE),
    ),
    max_leaves=12,
)
records = st.one_of(
    st.builds(map_item, st.lists(st.tuples(KEYS, items), max_size=5), ORDER, WIDE),
    items,  # not a map at all
)


# -- the properties ------------------------------------------------------------------------


@settings(max_examples=600)
@given(records, st.sampled_from([b"", b"", b"", b"\x00", b"\xf6"]))
@example(map_item([("a", b"\xfb" + struct.pack(">d", 1.5))], "canonical", 0), b"")
@example(map_item([("a", head(1, 2**63))], "canonical", 0), b"")
@example(map_item([("a", link_item(V0_LINK))], "canonical", 0), b"")
@example(map_item([("a", link_item(PB_LINK))], "canonical", 0), b"")
@example(map_item([("a", head(0, 1, 1))], "canonical", 0), b"")
def test_fast_path_answers_as_the_strict_decoder(block: bytes, trailing: bytes) -> None:
    same_answer(block + trailing)


@settings(max_examples=150)
@given(objects())
def test_canonical_records_are_accepted(value: dict[str, Any]) -> None:
    block = cbor.encode(value)
    same_answer(block)
    assert outcome(check_record, block) == ("accepted",)


@settings(max_examples=150)
@given(objects(with_bytes=False))
def test_fast_path_vouches_for_records_without_cid_like_bytes(value: dict[str, Any]) -> None:
    assert _vouched(cbor.encode(value))


@given(CID_LOOKALIKE_BYTES)
def test_bytes_that_look_like_cids_leave_the_fast_path(raw: bytes) -> None:
    block = cbor.encode({"sig": raw})
    assert not _vouched(block)  # libipld would re-encode them as a link
    assert outcome(check_record, block) == ("accepted",)


@settings(max_examples=200)
@given(objects(), st.data())
def test_damaged_records_are_refused_alike(value: dict[str, Any], data: st.DataObject) -> None:
    block = bytearray(cbor.encode(value))
    i = data.draw(st.integers(0, len(block) - 1))
    how = data.draw(st.sampled_from(["flip", "drop", "insert"]))
    if how == "flip":
        block[i] ^= data.draw(st.integers(1, 255))
    elif how == "drop":
        del block[i]
    else:
        block.insert(i, data.draw(st.integers(0, 255)))
    same_answer(bytes(block))


@given(st.binary(max_size=64))
def test_random_bytes_are_answered_alike(block: bytes) -> None:
    same_answer(block)


@pytest.mark.parametrize("depth", [126, 127, 128, 129], ids=lambda d: f"depth-{d}")
def test_nesting_limit_is_the_strict_decoders(depth: int) -> None:
    block = b"\xa1\x61a" * depth + b"\x01"
    same_answer(block)
    assert (outcome(check_record, block) == ("accepted",)) == (depth <= cbor.MAX_DEPTH)
