"""Reading and writing frames: the libipld fast paths agree with the strict codec on
every value, and anything they cannot vouch for is judged by the strict decoder."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from plaza.atproto import cbor
from plaza.atproto.cid import CID
from plaza.errors import InvalidInputError
from plaza.services.relay.frames import FrameError, decode_frame, encode_frame, encode_wire_frame
from plaza.services.relay.settings import host_url, hostname_of

_LINK = CID.compute(b"a record")

_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.text(max_size=20),
    st.binary(max_size=40),
    st.just(_LINK),
    st.just(_LINK.raw),  # bytes that parse as a CID: never to be written as a link
)
_values = st.recursive(
    _leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(body=st.dictionaries(st.text(max_size=10), _values, max_size=6))
def test_encode_frame_writes_what_the_strict_encoder_writes(body: dict[str, Any]) -> None:
    frame = encode_frame("#commit", body)
    assert frame == cbor.encode({"op": 1, "t": "#commit"}) + cbor.encode(body)


def _commit_body() -> dict[str, Any]:
    return {
        "repo": "did:plc:abcdefghijklmnopqrstuvwx",
        "commit": _LINK,
        "rev": "3kabcdefghijk",
        "since": None,
        "blocks": b":car bytes",
        "ops": [{"action": "create", "path": "app.bsky.feed.post/1", "cid": _LINK}],
        "blobs": [_LINK],
        "prevData": _LINK,
        "seq": 7,
    }


@pytest.mark.parametrize(
    "blocks",
    [b":car bytes", _LINK.raw, b"\x01short", b""],
    ids=["plain", "cid-like", "01-prefixed", "empty"],
)
def test_decode_frame_gives_links_as_cids_and_bytes_as_bytes(blocks: bytes) -> None:
    body = {**_commit_body(), "blocks": blocks}
    frame = decode_frame(encode_frame("#commit", body))
    assert frame.kind == "#commit" and frame.body == body
    assert type(frame.body["commit"]) is CID and type(frame.body["blocks"]) is bytes


def test_a_link_where_bytes_belong_stays_a_link() -> None:
    body = {**_commit_body(), "blocks": _LINK}
    assert decode_frame(encode_frame("#commit", body)).body["blocks"] == _LINK


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\xff",
        cbor.encode({"op": 1, "t": "#commit"}),  # no body
        cbor.encode({"op": 1, "t": "#commit"}) + cbor.encode({}) + b"\x00",  # trailing
        b"\xa2\x62op\x01\x61t\x67#commit" + cbor.encode({}),  # header keys out of order
        cbor.encode({"op": 2, "t": "#commit"}) + cbor.encode({}),
        cbor.encode([1]) + cbor.encode({}),
    ],
    ids=["empty", "junk", "no-body", "trailing", "unsorted", "bad-op", "not-a-map"],
)
def test_malformed_frames_are_refused(raw: bytes) -> None:
    with pytest.raises(FrameError):
        decode_frame(raw)


def test_error_frames_are_read() -> None:
    raw = cbor.encode({"op": -1}) + cbor.encode({"error": "FutureCursor", "message": "m"})
    frame = decode_frame(raw)
    assert frame.kind == "error" and frame.body["error"] == "FutureCursor"


@pytest.mark.parametrize(
    ("name", "url", "hostname"),
    [
        ("127.0.0.1:2583", "http://127.0.0.1:2583", "127.0.0.1:2583"),
        ("localhost:80", "http://localhost:80", "localhost"),
        ("pds.example.com", "https://pds.example.com", "pds.example.com"),
        ("https://pds.example.com:443/", "https://pds.example.com:443", "pds.example.com"),
        ("http://[::1]:9000", "http://[::1]:9000", "[::1]:9000"),
        ("PDS.Example.com", "https://pds.example.com", "pds.example.com"),
    ],
)
def test_hosts_are_named_and_reached(name: str, url: str, hostname: str) -> None:
    assert host_url(name) == url
    assert hostname_of(host_url(name)) == hostname


@pytest.mark.parametrize(
    "name",
    ["", "a b", "ftp://x", "http://x/path", "http://u:p@x", "http://x?q=1", "é.example", "x:99999"],
)
def test_what_is_not_a_host_is_refused(name: str) -> None:
    with pytest.raises(InvalidInputError):
        host_url(name)


@settings(max_examples=300, deadline=None)
@given(body=st.dictionaries(st.text(max_size=10), _values, max_size=6), seq=st.integers(0, 2**40))
def test_a_wire_body_with_new_plain_values_is_written_as_the_strict_encoder_writes(
    body: dict[str, Any], seq: int
) -> None:
    frame = decode_frame(encode_frame("#commit", body))
    assume(frame.wire is not None)
    assert frame.wire is not None
    kept = sorted(body)[::2]  # some of the host's fields, and new plain ones
    new = {"seq": seq, "rebase": False, "time": "2025-01-01T00:00:00.000Z", "since": None}
    out = {k: frame.wire[k] for k in kept} | new
    strict = {k: body[k] for k in kept} | new
    expected = cbor.encode({"op": 1, "t": "#commit"}) + cbor.encode(strict)
    assert encode_wire_frame("#commit", out) == expected


def test_a_commit_read_on_the_fast_path_keeps_its_wire_body() -> None:
    body = _commit_body()
    frame = decode_frame(encode_frame("#commit", body))
    assert frame.wire is not None and frame.body == body
    assert frame.wire["commit"] == _LINK.raw and frame.wire["ops"][0]["cid"] == _LINK.raw
    assert encode_wire_frame("#commit", frame.wire) == encode_frame("#commit", body)
