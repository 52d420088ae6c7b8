"""The PDS's repository building blocks: they lean on plaza.atproto, never beside it, and
find every blob a record references."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

import plaza.services.pds
from plaza.atproto import cbor
from plaza.atproto.cid import CID, RAW
from plaza.services.pds.repo_parts import find_blobs

PDS = Path(plaza.services.pds.__file__).parent


def test_cids_have_one_text_form_the_atproto_layers() -> None:
    """CID text comes from ``str(cid)`` (plaza.atproto, itself on libipld): the PDS
    keeps no second encoder of its own to drift from it, so no PDS module imports the
    codec library directly."""
    offenders = []
    for path in sorted(PDS.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(n == "libipld" or n.startswith("libipld.") for n in names):
                offenders.append(str(path.relative_to(PDS)))
    assert offenders == []


def _blob(data: bytes) -> dict[str, Any]:
    return {"$type": "blob", "ref": CID.compute(data, RAW), "mimeType": "image/png", "size": 1}


def _nested(value: Any, depth: int) -> Any:
    """``value`` under ``depth`` levels of maps and lists, alternating."""
    for level in range(depth):
        value = {"a": value} if level % 2 else [value]
    return value


@pytest.mark.parametrize("depth", [0, 1, 33, 40, cbor.MAX_DEPTH - 1])
def test_find_blobs_reaches_every_depth_the_data_model_admits(depth: int) -> None:
    blob = _blob(b"deep")
    record = {"$type": "x.y.z", "deep": _nested(blob, depth)}
    assert find_blobs(record) == [blob["ref"]]
    cbor.encode(record)  # a value the data model admits


def test_find_blobs_lists_references_in_document_order() -> None:
    one, two, three = _blob(b"1"), _blob(b"2"), _blob(b"3")
    record = {
        "a": [one, {"b": _nested(two, 50)}],
        "c": {"d": three, "e": "text", "f": [1, None, True]},
        "again": one,
    }
    assert find_blobs(record) == [one["ref"], two["ref"], three["ref"], one["ref"]]


def test_find_blobs_ignores_what_is_not_a_blob_reference() -> None:
    ref = CID.compute(b"x", RAW)
    assert find_blobs({"$type": "blob", "ref": str(ref)}) == []  # a string, not a link
    assert find_blobs({"$type": "image", "ref": ref}) == []
    assert find_blobs([ref, "blob", {"$link": str(ref)}]) == []
    # Nothing inside a blob reference is a second one.
    assert find_blobs({"$type": "blob", "ref": ref, "x": _blob(b"y")}) == [ref]
