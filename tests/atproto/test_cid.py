"""CIDv1 (sha2-256, dag-cbor or raw): fixtures, forms, refusals, libipld agreement."""

from __future__ import annotations

import base64
import hashlib
import pickle
from typing import Any

import libipld
import pytest
from hypothesis import given
from hypothesis import strategies as st

from plaza.atproto.cid import CID, CID_LENGTH, DAG_CBOR, RAW
from plaza.atproto.errors import InvalidCidError
from tests.atproto.strategies import CIDS
from tests.vectors import load_json, params

FIXTURES = load_json("atproto-interop", "data-model", "data-model-fixtures.json")


@pytest.mark.parametrize("item", params(FIXTURES, lambda i: i["cid"]))
def test_fixture_cids(item: dict[str, Any]) -> None:
    data = base64.b64decode(item["cbor_base64"] + "=" * (-len(item["cbor_base64"]) % 4))
    cid = CID.compute(data)
    assert str(cid) == item["cid"]
    assert CID.decode(item["cid"]) == cid
    assert cid.matches(data) and not cid.matches(data + b"\x00")
    assert cid.codec == DAG_CBOR and cid.digest == hashlib.sha256(data).digest()


def test_blob_cids_use_the_raw_codec() -> None:
    cid = CID.compute(b"\x89PNG...", RAW)
    assert cid.codec == RAW and str(cid).startswith("bafkrei")
    assert str(CID.compute(b"{}")).startswith("bafyrei")
    with pytest.raises(InvalidCidError):
        CID.compute(b"x", 0x70)  # dag-pb is not used by atproto


@given(CIDS)
def test_forms_round_trip(cid: CID) -> None:
    assert CID.decode(str(cid)) == cid
    assert CID.decode(cid.raw) == cid
    assert CID(cid.raw) == cid and hash(CID(cid.raw)) == hash(cid)
    assert len(cid.raw) == CID_LENGTH
    assert pickle.loads(pickle.dumps(cid)) == cid
    assert repr(cid) == f"CID({cid})"


@given(CIDS)
def test_agrees_with_libipld(cid: CID) -> None:
    assert libipld.encode_cid(cid.raw) == str(cid)
    info = libipld.decode_cid(str(cid))
    assert (info["version"], info["codec"]) == (1, cid.codec)
    assert (info["hash"]["code"], info["hash"]["digest"]) == (0x12, cid.digest)


def test_ordering_and_equality() -> None:
    a, b = CID.compute(b"a"), CID.compute(b"b")
    assert (a < b) == (a.raw < b.raw)
    assert a not in (b, a.raw) and a == CID(a.raw)
    assert len({a, CID(a.raw), b}) == 2


def test_immutable() -> None:
    cid = CID.compute(b"a")
    with pytest.raises(AttributeError):
        cid.raw = b""  # type: ignore[misc]


QM = "QmbWqxBEKC3P8tqsKc98xmWNzrzDtRLMiMPL8wBuTGsMnR"


@pytest.mark.parametrize(
    "value",
    [
        QM,  # CIDv0
        "zdj7WWeQ43G6JJvLWQWZpyHuAMq6uYWRjkBXFad11vE2LHhQ7",  # base58 CIDv1
        "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi",  # dag-pb
        str(CID.compute(b"a")).upper(),
        str(CID.compute(b"a"))[:-1],
        str(CID.compute(b"a")) + "a",
        "b" + "1" * 58,  # '1' is not base32
        "",
        b"\x12\x20" + bytes(32),  # a bare multihash
        b"\x01\x71\x13\x40" + bytes(64),  # sha2-512
        b"\x01\x71\x12\x20" + bytes(31),
        b"\x01\x71\x12\x20" + bytes(33),
    ],
    ids=repr,
)
def test_refused(value: str | bytes) -> None:
    with pytest.raises(InvalidCidError):
        CID.decode(value)


def test_non_canonical_padding_bits_are_refused() -> None:
    text = str(CID.compute(b"a"))
    alphabet = "abcdefghijklmnopqrstuvwxyz234567"
    # 36 bytes = 288 bits in 58 base32 digits (290 bits): the last 2 bits are padding.
    last = alphabet.index(text[-1])
    twin = text[:-1] + alphabet[last ^ 1]
    assert base64.b32decode(twin[1:].upper() + "======") == CID.decode(text).raw
    with pytest.raises(InvalidCidError, match="non-canonical"):
        CID.decode(twin)


@given(st.binary(max_size=80))
def test_fuzz_binary(data: bytes) -> None:
    try:
        cid = CID.decode(data)
    except InvalidCidError:
        return
    assert cid.raw == data


@given(
    st.text(max_size=70)
    | st.text(alphabet="abcdefghijklmnopqrstuvwxyz234567", min_size=58, max_size=58).map(
        lambda s: "b" + s
    )
)
def test_fuzz_text(text: str) -> None:
    try:
        cid = CID.decode(text)
    except InvalidCidError:
        return
    assert str(cid) == text


def test_refuses_other_types() -> None:
    with pytest.raises(InvalidCidError):
        CID.decode(12)  # type: ignore[arg-type]
