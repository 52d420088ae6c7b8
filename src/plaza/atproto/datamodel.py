"""The atproto data model in JSON: ``$link``, ``$bytes`` and blob references.

In JSON a CID link is ``{"$link": "bafy…"}``, a byte string is ``{"$bytes": base64}``
(standard alphabet, no padding) and a blob is ``{"$type": "blob", "ref": link,
"mimeType": str, "size": int}``. Floats are not part of the data model, except that a
JSON number with an integral value (``123.0``) is the integer it names. ``$type``, when
present, is a non-empty string.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from plaza.atproto.cid import CID
from plaza.atproto.errors import DecodeError, InvalidCidError


def _b64decode(s: str) -> bytes:
    pad = "=" * (-len(s) % 4)
    try:
        return base64.b64decode(s + pad, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise DecodeError(f"invalid $bytes base64: {s[:40]!r}") from exc


def _b64encode(b: bytes) -> str:
    return base64.b64encode(b).decode("ascii").rstrip("=")


def _check_blob(obj: dict[str, Any]) -> None:
    ref = obj.get("ref")
    if not isinstance(ref, CID):
        raise DecodeError("blob must have a 'ref' CID link")
    if not isinstance(obj.get("mimeType"), str) or not obj["mimeType"]:
        raise DecodeError("blob must have a non-empty 'mimeType' string")
    size = obj.get("size")
    if type(size) is not int or size < 0:
        raise DecodeError("blob 'size' must be a non-negative integer")


def _from(value: Any, depth: int) -> Any:
    if depth > 128:
        raise DecodeError("JSON value nested too deeply")
    t = type(value)
    if t is dict:
        if "$link" in value:
            link = value["$link"]
            if len(value) != 1 or not isinstance(link, str):
                raise DecodeError("a $link object must have exactly one string field")
            try:
                return CID.decode(link)
            except InvalidCidError as exc:
                raise DecodeError(f"bad $link CID: {exc.message}") from exc
        if "$bytes" in value:
            raw = value["$bytes"]
            if len(value) != 1 or not isinstance(raw, str):
                raise DecodeError("a $bytes object must have exactly one string field")
            return _b64decode(raw)
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise DecodeError("object keys must be strings")
            out[k] = _from(v, depth + 1)
        if "$type" in out:
            typ = out["$type"]
            if not isinstance(typ, str) or not typ:
                raise DecodeError("$type must be a non-empty string")
            if typ == "blob":
                _check_blob(out)
        return out
    if t is list:
        return [_from(v, depth + 1) for v in value]
    if t is float:
        if value.is_integer():
            return int(value)
        raise DecodeError("floats are not allowed in the atproto data model")
    if value is None or t in (str, int, bool):
        return value
    raise DecodeError(f"not a JSON data-model value: {t.__name__}")


def from_json(value: Any) -> Any:
    """Convert parsed atproto JSON into data-model values; the top level must be an object."""
    if not isinstance(value, dict):
        raise DecodeError("the top level of a data-model document must be an object")
    return _from(value, 0)


def value_from_json(value: Any) -> Any:
    """Like :func:`from_json` but for any value, not only objects."""
    return _from(value, 0)


def loads(text: str | bytes) -> Any:
    """Parse atproto JSON text into data-model values."""
    try:
        parsed = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise DecodeError(f"invalid JSON: {exc}") from exc
    except RecursionError as exc:  # the stdlib parser recurses once per nesting level
        raise DecodeError("invalid JSON: nested too deeply") from exc
    return from_json(parsed)


def to_json(value: Any) -> Any:
    """Convert data-model values into JSON-compatible values (``$link``, ``$bytes``)."""
    t = type(value)
    if t is dict:
        return {k: to_json(v) for k, v in value.items()}
    if t is list or t is tuple:
        return [to_json(v) for v in value]
    if t is CID:
        return {"$link": str(value)}
    if t is bytes:
        return {"$bytes": _b64encode(value)}
    return value


def dumps(value: Any) -> str:
    """Serialize data-model values as compact atproto JSON."""
    return json.dumps(to_json(value), separators=(",", ":"), ensure_ascii=False)


def validate(value: Any) -> None:
    """Check data-model rules on a decoded value: ``$type`` strings and blob shapes."""
    if isinstance(value, dict):
        if "$type" in value:
            typ = value["$type"]
            if not isinstance(typ, str) or not typ:
                raise DecodeError("$type must be a non-empty string")
            if typ == "blob":
                _check_blob(value)
        for v in value.values():
            validate(v)
    elif isinstance(value, list):
        for v in value:
            validate(v)
    elif isinstance(value, float):
        raise DecodeError("floats are not allowed in the atproto data model")
