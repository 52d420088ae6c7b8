"""Strict DAG-CBOR: interop fixtures, canonical form, refusals, libipld agreement, fuzzing."""

from __future__ import annotations

import base64
import contextlib
from typing import Any

import libipld
import pytest
from hypothesis import given
from hypothesis import strategies as st

from plaza.atproto import cbor, datamodel
from plaza.atproto.cid import CID
from plaza.atproto.errors import DecodeError, EncodeError
from tests.atproto.strategies import CID_LOOKALIKE_BYTES, CIDS, objects, values
from tests.vectors import load_json, params

FIXTURES = load_json("atproto-interop", "data-model", "data-model-fixtures.json")


def _b64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def _fixture_id(item: dict[str, Any]) -> str:
    return str(item["cid"])


@pytest.mark.parametrize("item", params(FIXTURES, _fixture_id))
def test_json_to_cbor_is_byte_identical(item: dict[str, Any]) -> None:
    value = datamodel.from_json(item["json"])
    assert cbor.encode(value) == _b64(item["cbor_base64"])
    assert str(cbor.cid_of(value)) == item["cid"]
    cid, data = cbor.encode_with_cid(value)
    assert (str(cid), data) == (item["cid"], _b64(item["cbor_base64"]))


@pytest.mark.parametrize("item", params(FIXTURES, _fixture_id))
def test_cbor_to_json_is_equal(item: dict[str, Any]) -> None:
    value = cbor.decode(_b64(item["cbor_base64"]))
    assert value == datamodel.from_json(item["json"])
    assert datamodel.to_json(value) == item["json"]


# -- canonical form -------------------------------------------------------------------


def test_map_keys_sort_by_length_then_bytes() -> None:
    data = cbor.encode({"bb": 1, "a": 2, "aaa": 3, "b": 4, "é": 5})
    # 'a', 'b' (1 byte), then 'bb', 'é' (2 bytes, 0x62 < 0xc3), then 'aaa'.
    assert data == bytes.fromhex("a5 6161 02 6162 04 626262 01 62c3a9 05 63616161 03")


@given(objects())
def test_encoding_ignores_insertion_order(value: dict[str, Any]) -> None:
    reordered = dict(reversed(list(value.items())))
    assert cbor.encode(value) == cbor.encode(reordered)
    keys = list(cbor.decode(cbor.encode(value)))
    encoded = [k.encode() for k in keys]
    assert encoded == sorted(encoded, key=lambda k: (len(k), k))


@pytest.mark.parametrize(
    ("value", "hex_"),
    [
        (0, "00"),
        (23, "17"),
        (24, "1818"),
        (255, "18ff"),
        (256, "190100"),
        (65536, "1a00010000"),
        (2**32, "1b0000000100000000"),
        (2**64 - 1, "1bffffffffffffffff"),
        (-1, "20"),
        (-25, "3818"),
        (-(2**63), "3b7fffffffffffffff"),
        ("", "60"),
        (b"", "40"),
        ([], "80"),
        ({}, "a0"),
        (None, "f6"),
        (True, "f5"),
        (False, "f4"),
    ],
    ids=repr,
)
def test_shortest_forms(value: Any, hex_: str) -> None:
    assert cbor.encode(value).hex() == hex_
    assert cbor.decode(bytes.fromhex(hex_)) == value


# -- round trips ------------------------------------------------------------------------


@given(values())
def test_round_trip(value: Any) -> None:
    data = cbor.encode(value)
    assert cbor.decode(data) == value
    assert cbor.encode(cbor.decode(data)) == data


@given(CID_LOOKALIKE_BYTES)
def test_bytes_that_look_like_cids_stay_bytes(raw: bytes) -> None:
    data = cbor.encode({"sig": raw})
    decoded = cbor.decode(data)["sig"]
    assert type(decoded) is bytes and decoded == raw
    assert b"\xd8\x2a" not in data[:8]  # no tag 42 where a byte string belongs


def test_libipld_hazard_is_avoided() -> None:
    """libipld writes a CID-shaped byte string as a link; we write what we are given."""
    raw = CID.compute(b"x").raw
    assert libipld.encode_dag_cbor({"sig": raw}) != cbor.encode({"sig": raw})
    assert cbor.decode(cbor.encode({"sig": raw}))["sig"] == raw
    assert cbor.decode(cbor.encode({"link": CID(raw)}))["link"] == CID(raw)


def _for_libipld(value: Any) -> Any:
    """libipld takes CIDs as their binary form (its guessing is safe for real CIDs)."""
    if isinstance(value, CID):
        return value.raw
    if isinstance(value, dict):
        return {k: _for_libipld(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_for_libipld(v) for v in value]
    return value


@given(values(with_bytes=False))
def test_agrees_with_libipld_byte_for_byte(value: Any) -> None:
    ours = cbor.encode(value)
    assert libipld.encode_dag_cbor(_for_libipld(value)) == ours
    libipld.decode_dag_cbor(ours)  # and libipld reads ours


@given(st.lists(values(), min_size=1, max_size=4))
def test_decode_multi_reads_concatenations(items: list[Any]) -> None:
    data = b"".join(cbor.encode(v) for v in items)
    assert list(cbor.decode_multi(data)) == items
    first, end = cbor.decode_first(data)
    assert first == items[0] and end == len(cbor.encode(items[0]))


# -- refusals ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hex_", "reason"),
    [
        ("1817", "non-minimal"),  # 23 in two bytes
        ("190017", "non-minimal"),
        ("1a0000ffff", "non-minimal"),
        ("1b00000000ffffffff", "non-minimal"),
        ("5f4100ff", "indefinite"),
        ("9f01ff", "indefinite"),
        ("bf6161 01ff".replace(" ", ""), "indefinite"),
        ("f93c00", "floats"),
        ("fa3f800000", "floats"),
        ("fb3ff0000000000000", "floats"),
        ("f7", "simple value"),  # undefined
        ("c11a514b67b0", "tag 1"),  # epoch datetime
        ("d82a6161", "must wrap a byte string"),
        ("d82a5825" + "01" + "01711220" + "00" * 32, "0x00 multibase prefix"),
        ("d82a4400017112", "invalid CID link"),
        ("0000", "trailing bytes"),
        ("62ff", "unexpected end"),
        ("6280ff", "not valid UTF-8"),
        ("a201010202", "map keys must be text"),
        ("a2616201616102", "canonical order"),
        ("a2616101616102", "canonical order"),  # duplicate key
        ("a1", "longer than the data"),
        ("3bffffffffffffffff", "out of range"),  # below -2**63
        ("1c", "reserved"),
        ("9b0000000100000000", "array longer than the data"),
        ("", "unexpected end"),
    ],
)
def test_decoder_refuses(hex_: str, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        cbor.decode(bytes.fromhex(hex_))


def test_depth_limits() -> None:
    deep: Any = 1
    for _ in range(cbor.MAX_DEPTH + 2):
        deep = [deep]
    with pytest.raises(EncodeError, match="nested"):
        cbor.encode(deep)
    with pytest.raises(DecodeError, match="nested"):
        cbor.decode(b"\x81" * (cbor.MAX_DEPTH + 1) + b"\x01")
    assert cbor.decode(b"\x81" * cbor.MAX_DEPTH + b"\x01") is not None


@pytest.mark.parametrize(
    "value",
    [1.5, {"a": 1.0}, {1: "x"}, {b"k": 1}, {"s": {1, 2}}, 2**64, -(2**63) - 1, object()],
    ids=repr,
)
def test_encoder_refuses(value: Any) -> None:
    with pytest.raises(EncodeError):
        cbor.encode(value)


def test_decode_refuses_non_bytes() -> None:
    with pytest.raises(DecodeError):
        cbor.decode("a0")  # type: ignore[arg-type]


# -- fuzzing: malformed input only ever raises DecodeError ------------------------------


@given(st.binary(max_size=200))
def test_fuzz_decode(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        cbor.decode(data)


@given(st.binary(max_size=200))
def test_fuzz_decode_multi(data: bytes) -> None:
    try:
        for _ in cbor.decode_multi(data):
            pass
    except DecodeError:
        pass


@given(values(), st.data())
def test_fuzz_damaged_encodings(value: Any, data: st.DataObject) -> None:
    raw = bytearray(cbor.encode(value))
    for _ in range(data.draw(st.integers(1, 3))):
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(raw)))
    for candidate in (bytes(raw), bytes(raw[:cut])):
        try:
            decoded = cbor.decode(candidate)
        except DecodeError:
            continue
        # Whatever decodes is canonical: re-encoding reproduces the bytes exactly.
        assert cbor.encode(decoded) == candidate


@given(CIDS)
def test_links_encode_as_tag_42(cid: CID) -> None:
    assert cbor.encode(cid) == b"\xd8\x2a\x58\x25\x00" + cid.raw


# -- decode_fast: libipld where it is exact, the same answer as decode everywhere ---------


def _same_answer(data: bytes) -> None:
    """decode_fast gives decode's value (types included) or decode's error."""
    try:
        expected = cbor.decode(data)
    except DecodeError as exc:
        with pytest.raises(DecodeError) as got:
            cbor.decode_fast(data)
        assert got.value.message == exc.message
        return
    fast = cbor.decode_fast(data)
    assert fast == expected
    assert _types(fast) == _types(expected)
    assert cbor.encode(fast) == data


def _types(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _types(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_types(v) for v in value]
    return type(value)


@pytest.mark.parametrize("item", params(FIXTURES, _fixture_id))
def test_decode_fast_matches_decode_on_the_interop_fixtures(item: dict[str, Any]) -> None:
    data = _b64(item["cbor_base64"])
    _same_answer(data)
    assert cbor.decode_fast(data) == datamodel.from_json(item["json"])


@pytest.mark.parametrize(
    "hex_",
    [
        "1817",
        "5f4100ff",
        "f93c00",
        "fb3ff0000000000000",
        "f7",
        "c11a514b67b0",
        "d82a6161",
        "d82a5825" + "01" + "01711220" + "00" * 32,
        "d82a4400017112",
        "0000",
        "62ff",
        "6280ff",
        "a201010202",
        "a2616201616102",
        "a2616101616102",
        "a1",
        "3bffffffffffffffff",
        "1c",
        "",
        # a link to a CID atproto does not use (dag-pb), and a CIDv0-shaped byte string
        "d82a5825" + "00" + "01701220" + "11" * 32,
        "5822" + "1220" + "22" * 32,
        # floats and big integers libipld reads
        "a16161fb3ff8000000000000",
        "3b8000000000000000",
        "1bffffffffffffffff",
    ],
)
def test_decode_fast_refuses_what_decode_refuses(hex_: str) -> None:
    _same_answer(bytes.fromhex(hex_))


def test_decode_fast_tells_links_from_cid_shaped_bytes() -> None:
    cid = CID.compute(b"x")
    for value in ({"sig": cid.raw}, {"link": cid}, [cid, cid.raw, b"\x01\x02"], cid.raw):
        data = cbor.encode(value)
        _same_answer(data)
        assert cbor.decode_fast(data) == value


def test_decode_fast_depth_limit() -> None:
    _same_answer(b"\x81" * (cbor.MAX_DEPTH + 1) + b"\x01")
    _same_answer(b"\x81" * cbor.MAX_DEPTH + b"\x01")


@given(values())
def test_decode_fast_round_trip(value: Any) -> None:
    _same_answer(cbor.encode(value))


@given(CID_LOOKALIKE_BYTES)
def test_decode_fast_keeps_cid_lookalike_bytes(raw: bytes) -> None:
    _same_answer(cbor.encode({"sig": raw, "l": [raw]}))


@given(st.binary(max_size=200))
def test_fuzz_decode_fast(data: bytes) -> None:
    _same_answer(data)


@given(values(), st.data())
def test_fuzz_decode_fast_damaged(value: Any, data: st.DataObject) -> None:
    raw = bytearray(cbor.encode(value))
    for _ in range(data.draw(st.integers(1, 3))):
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(raw)))
    _same_answer(bytes(raw))
    _same_answer(bytes(raw[:cut]))


def test_decode_fast_takes_libipld_for_canonical_input(monkeypatch: pytest.MonkeyPatch) -> None:
    value = {"a": [1, -2, CID.compute(b"x"), "x", b"\x00\x01", None, True], "bb": {"c": b""}}
    data = cbor.encode(value)

    def strict_unused(_: bytes) -> Any:
        raise AssertionError("the strict decoder was needed")

    monkeypatch.setattr(cbor, "decode", strict_unused)
    assert cbor.decode_fast(data) == value
