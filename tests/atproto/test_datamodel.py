"""The atproto JSON data model: ``$link``, ``$bytes``, blobs, and the interop documents."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plaza.atproto import cbor, datamodel
from plaza.atproto.cid import CID, RAW
from plaza.atproto.errors import DecodeError
from tests.atproto.strategies import objects, values
from tests.vectors import load_json, params


def _note(item: dict[str, Any]) -> str:
    return str(item["note"])


@pytest.mark.parametrize(
    "item", params(load_json("atproto-interop", "data-model", "data-model-valid.json"), _note)
)
def test_valid_documents(item: dict[str, Any]) -> None:
    value = datamodel.from_json(item["json"])
    datamodel.validate(value)
    # Valid data survives DAG-CBOR and JSON round trips unchanged.
    assert cbor.decode(cbor.encode(value)) == value
    assert datamodel.loads(datamodel.dumps(value)) == value
    assert datamodel.loads(json.dumps(item["json"])) == value


@pytest.mark.parametrize(
    "item", params(load_json("atproto-interop", "data-model", "data-model-invalid.json"), _note)
)
def test_invalid_documents(item: dict[str, Any]) -> None:
    with pytest.raises(DecodeError):
        datamodel.from_json(item["json"])
    with pytest.raises(DecodeError):
        datamodel.loads(json.dumps(item["json"]))


def test_special_objects() -> None:
    cid = CID.compute(b"blob", RAW)
    doc = {
        "l": {"$link": str(cid)},
        "b": {"$bytes": "AAEC"},
        "blob": {"$type": "blob", "ref": {"$link": str(cid)}, "mimeType": "image/png", "size": 3},
    }
    value = datamodel.from_json(doc)
    assert value["l"] == cid and value["b"] == b"\x00\x01\x02"
    assert value["blob"]["ref"] == cid
    assert datamodel.to_json(value) == doc
    assert datamodel.dumps({"b": b"\xff"}) == '{"b":{"$bytes":"/w"}}'
    assert datamodel.from_json({"n": 5.0}) == {"n": 5}


@given(objects())
def test_json_round_trip(value: dict[str, Any]) -> None:
    text = datamodel.dumps(value)
    assert datamodel.loads(text) == value
    assert datamodel.loads(text.encode("utf-8")) == value
    datamodel.validate(value)


@given(values())
def test_value_round_trip(value: Any) -> None:
    assert datamodel.value_from_json(json.loads(json.dumps(datamodel.to_json(value)))) == value


@pytest.mark.parametrize(
    "value",
    [
        {"f": 1.5},
        {"t": {"$type": ""}},
        {"blob": {"$type": "blob", "ref": "x", "mimeType": "a/b", "size": 1}},
    ],
    ids=repr,
)
def test_validate_refuses(value: Any) -> None:
    with pytest.raises(DecodeError):
        datamodel.validate(value)


@pytest.mark.parametrize(
    "text",
    [
        "[]",
        "nope",
        '{"a": NaN}',
        '{"a": Infinity}',
        '{"a": 1e400}',
        '{"a": {"$bytes": "!!"}}',
        '{"a": {"$link": "bafy"}}',
        b'{"a": "\xff"}',
        "[" * 100_000 + "]" * 100_000,
        '{"a":' * 100_000 + "1" + "}" * 100_000,
        '{"a":' * 200 + "1" + "}" * 200,  # past the data model's depth limit
    ],
    ids=lambda t: repr(t[:24]),
)
def test_loads_refuses(text: str | bytes) -> None:
    with pytest.raises(DecodeError):
        datamodel.loads(text)


@given(st.text(max_size=80) | st.binary(max_size=80))
def test_fuzz_loads(text: str | bytes) -> None:
    with contextlib.suppress(DecodeError):
        datamodel.loads(text)


_JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(["$link", "$bytes", "$type", "ref", "size", "mimeType", "x"]),
            inner,
            max_size=4,
        )
    ),
    max_leaves=10,
)


@given(st.dictionaries(st.text(max_size=5), _JSONISH, max_size=4))
def test_fuzz_from_json(doc: dict[str, Any]) -> None:
    try:
        value = datamodel.from_json(doc)
    except DecodeError:
        return
    datamodel.validate(value)
