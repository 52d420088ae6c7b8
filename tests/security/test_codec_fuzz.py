"""The sans-IO decoders under hostile bytes: DAG-CBOR, CAR (whole and streamed),
repository import, signed commits, firehose ``#commit`` frames and PLC operations.

The property for each: it returns a value or raises a :class:`~plaza.errors.PlazaError`
(which the services render as a 4xx) — never any other exception, which would be a 500.
Inputs start from real encodings (a repository of a few posts, the ``#commit`` event of
its last write, a signed genesis operation) and are mutated byte by byte or field by
field, so they get past the first checks.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from plaza.atproto import cbor
from plaza.atproto.car import CarDecoder, read_car, write_car
from plaza.atproto.commit import decode_commit
from plaza.atproto.crypto import ES256K, PrivateKey
from plaza.atproto.plc import create_genesis, parse_operation
from plaza.atproto.repo import Write
from plaza.atproto.repo_verify import import_car
from plaza.atproto.sync import verify_commit_body
from plaza.errors import PlazaError
from tests.atproto.repo_helpers import DID, POST, Host, post
from tests.atproto.strategies import values
from tests.security.conftest import fuzz_settings
from tests.security.strategies import (
    byte_mutations,
    cbor_bytes,
    cids,
    encode_json,
    json_values,
    mostly,
    mutated,
)

EXAMPLES = 150

_HOST = Host()
for _i in range(6):
    _LAST = _HOST.write(Write.create(POST, f"3k{_i:011d}", post(_i)))
_LAST = _HOST.write(
    Write.create(POST, "3k99999999999", post(99)), Write.delete(POST, "3k00000000002")
)
REPO_CAR = write_car([_LAST.cid], _HOST.blocks.items())
EVENT: dict[str, Any] = {
    "repo": DID,
    "commit": _LAST.cid,
    "rev": _LAST.rev,
    "since": _LAST.since,
    "blocks": _LAST.car_slice,
    "ops": [
        {"action": o.action, "path": o.path, "cid": o.cid, **({"prev": o.prev} if o.prev else {})}
        for o in _LAST.ops
    ],
    "prevData": _LAST.prev_data,
    "seq": 7,
    "time": "2026-01-01T00:00:00.000Z",
    "blobs": [],
    "tooBig": False,
    "rebase": False,
}
FRAME = cbor.encode({"op": 1, "t": "#commit"}) + cbor.encode(EVENT)
_PLC_KEY = PrivateKey.generate(ES256K)
_, GENESIS = create_genesis(
    key=_PLC_KEY,
    rotation_keys=[_PLC_KEY.did_key()],
    signing_key=_PLC_KEY.did_key(),
    handle="alice.test",
    pds_endpoint="https://pds.test",
)
GENESIS_JSON: dict[str, Any] = GENESIS.to_json()


def refused_or_fine(call: Any, *args: Any, **kwargs: Any) -> Any:
    """``call``'s result, or None when it raised a PlazaError (any other error fails)."""
    try:
        return call(*args, **kwargs)
    except PlazaError:
        return None


def test_the_starting_points_are_valid() -> None:
    """Unmutated, each input decodes and verifies: the mutations start from valid data."""
    assert import_car(REPO_CAR, did=DID, key=_HOST.key.public_key).commit_cid == _LAST.cid
    frames = list(cbor.decode_multi(FRAME))
    assert verify_commit_body(frames[1], _HOST.key.public_key).inverted
    assert parse_operation(GENESIS_JSON) == GENESIS


@fuzz_settings(EXAMPLES * 2)
@given(data=cbor_bytes(values().map(cbor.encode)))
def test_cbor_decode(data: bytes) -> None:
    value = refused_or_fine(cbor.decode, data)
    if value is not None:
        # the decoder is strict: what it accepts is the one canonical encoding
        assert cbor.encode(value) == data
    refused_or_fine(lambda: list(cbor.decode_multi(data)))


_CARS = mostly(st.just(REPO_CAR), byte_mutations(REPO_CAR), st.binary(max_size=200), share=1)


@fuzz_settings(EXAMPLES)
@given(data=_CARS, cuts=st.lists(st.integers(1, 400), max_size=6))
def test_car_whole_and_streamed_agree(data: bytes, cuts: list[int]) -> None:
    car = refused_or_fine(read_car, data)
    decoder = CarDecoder()
    streamed: list[Any] = []
    try:
        pos = 0
        for n in [*cuts, len(data)]:
            streamed += decoder.feed(data[pos : pos + n])
            pos += n
        decoder.close()
    except PlazaError:
        assert car is None, "the streamed reader refused what the whole reader read"
        return
    if car is not None:
        assert dict(streamed) == car.blocks


@fuzz_settings(EXAMPLES)
@given(data=_CARS)
def test_import_repo_car(data: bytes) -> None:
    refused_or_fine(import_car, data, did=DID, key=_HOST.key.public_key)


@fuzz_settings(EXAMPLES)
@given(data=cbor_bytes(st.just(_LAST.commit.bytes)))
def test_decode_commit(data: bytes) -> None:
    refused_or_fine(decode_commit, data)


def _mutated_event() -> st.SearchStrategy[dict[str, Any]]:
    wrong = st.one_of(values(), cids(), st.binary(max_size=64), byte_mutations(EVENT["blocks"]))
    op_fields = st.sampled_from(["action", "path", "cid", "prev"])

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        event = dict(EVENT)
        for _ in range(draw(st.integers(1, 3))):
            key = draw(st.sampled_from(sorted(event)))
            # an earlier round may have replaced ops with a wrong value: mutate only a list
            if key == "ops" and isinstance(event["ops"], list) and draw(st.booleans()):
                ops = [dict(o) if isinstance(o, dict) else o for o in event["ops"]]
                i = draw(st.integers(0, len(ops) - 1)) if ops else None
                if i is not None and isinstance(ops[i], dict):
                    ops[i][draw(op_fields)] = draw(wrong)
                event["ops"] = ops
            elif draw(st.booleans()):
                event[key] = draw(wrong)
            else:
                del event[key]
        return event

    return build()


@fuzz_settings(EXAMPLES)
@given(
    frame=st.one_of(
        byte_mutations(FRAME),
        _mutated_event().map(lambda e: cbor.encode({"op": 1, "t": "#commit"}) + cbor.encode(e)),
    )
)
def test_firehose_commit_frames(frame: bytes) -> None:
    """Decode a frame as a consumer does (header, then body), verify its ``#commit``."""
    parts = refused_or_fine(lambda: list(cbor.decode_multi(frame)))
    if not parts or len(parts) != 2 or not isinstance(parts[1], dict):
        return
    refused_or_fine(verify_commit_body, parts[1], _HOST.key.public_key)
    refused_or_fine(verify_commit_body, parts[1], None, require_prev_data=False)


@fuzz_settings(EXAMPLES)
@given(
    raw=st.one_of(
        mutated(st.just(GENESIS_JSON)).map(encode_json),
        mutated(st.just(GENESIS_JSON)).map(encode_json).flatmap(byte_mutations),
        json_values().map(encode_json),
    )
)
def test_plc_operation(raw: bytes) -> None:
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        return
    refused_or_fine(parse_operation, body)
