"""Hypothesis strategies for hostile inputs: XRPC bodies and parameters generated from the
Lexicons, then mutated; bytes for the CBOR, CAR and firehose decoders.

A body starts valid-shaped (every required field, the right types, string formats and
lengths, known DIDs and collections from :class:`Hints` so calls reach past the first
check) and is then, half of the time, broken in one or more ways: a required field
dropped, a field of the wrong type, an extra field, an over-long string, deep nesting,
a huge or non-integral number, a body that is not an object, bytes that are not JSON.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from plaza.atproto.cid import CID, DAG_CBOR, RAW
from plaza.atproto.errors import LexiconError
from plaza.atproto.lexicon import LexiconRegistry
from plaza.atproto.lexicon.compiler import resolve_ref, type_name

# Lone UTF-16 surrogates ("\ud800") in JSON strings: every JSON edge refuses them with 400
# (plaza.asgi.has_lone_surrogate), so generated strings include them.
ALLOW_LONE_SURROGATES = True

_DEPTH = 4  # how deep references are followed when building valid-shaped values
_NESTING = (40, 300, 2_000, 100_000)  # levels of [[[...]]] in deep-nesting mutations
_HUGE_NUMBERS: tuple[Any, ...] = (
    2**53 + 1,
    2**63,
    -(2**63) - 1,
    2**64,
    10**40,
    -(10**40),
    1.5,
    -0.0,
    1e308,
    float("inf"),
    float("nan"),
)
_TID_CHARS = "234567abcdefghijklmnopqrstuvwxyz"


def characters() -> st.SearchStrategy[str]:
    """Any code point except, unless :data:`ALLOW_LONE_SURROGATES`, the surrogates."""
    if ALLOW_LONE_SURROGATES:
        return mostly(st.characters(), st.characters(categories=["Cs"]), share=9)
    return st.characters(exclude_categories=["Cs"])


def text(min_size: int = 0, max_size: int = 40) -> st.SearchStrategy[str]:
    return st.text(characters(), min_size=min_size, max_size=max_size)


@dataclass
class Hints:
    """Real values of the network under test, by Lexicon string format, so generated
    calls name existing accounts, collections and records and get past lookups."""

    by_format: dict[str, list[str]] = field(default_factory=dict)
    by_name: dict[str, list[str]] = field(default_factory=dict)  # string fields by name
    collections: list[str] = field(default_factory=lambda: ["app.bsky.feed.post"])

    def add(self, fmt: str, *values: str) -> None:
        self.by_format.setdefault(fmt, []).extend(values)


def _format_value(fmt: str) -> st.SearchStrategy[str]:
    """A freshly generated string in Lexicon string format ``fmt`` (mostly well-formed)."""
    label = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=12)
    if fmt == "did":
        return st.one_of(
            st.text("abcdefghijklmnopqrstuvwxyz234567", min_size=24, max_size=24).map(
                lambda s: "did:plc:" + s
            ),
            label.map(lambda s: f"did:web:{s}.test"),
        )
    if fmt == "handle":
        return label.map(lambda s: f"f{s}.test")
    if fmt == "at-identifier":
        return st.one_of(_format_value("did"), _format_value("handle"))
    if fmt == "nsid":
        return label.map(lambda s: f"app.bsky.feed.{s}")
    if fmt in ("tid", "record-key"):
        return st.text(_TID_CHARS, min_size=13, max_size=13).filter(
            lambda s: s[0] in "234567abcdefghij"
        )
    if fmt == "cid":
        return st.binary(max_size=8).map(lambda b: str(CID.compute(b, DAG_CBOR)))
    if fmt == "datetime":
        return st.datetimes().map(lambda d: d.isoformat(timespec="milliseconds") + "Z")
    if fmt == "at-uri":
        return st.tuples(_format_value("did"), label).map(
            lambda t: f"at://{t[0]}/app.bsky.feed.post/{t[1]}"
        )
    if fmt == "uri":
        return label.map(lambda s: f"https://{s}.test/x")
    if fmt == "language":
        return st.sampled_from(["en", "pt-BR", "ja", "x-none", "zz"])
    return text()


class Bodies:
    """Valid-shaped values for the definitions of ``registry``, with :class:`Hints`."""

    def __init__(self, registry: LexiconRegistry, hints: Hints) -> None:
        self.registry = registry
        self.hints = hints

    def string(self, schema: Mapping[str, Any]) -> st.SearchStrategy[str]:
        if "const" in schema:
            return st.just(schema["const"])
        if schema.get("enum"):
            return st.sampled_from(schema["enum"])
        fmt = schema.get("format")
        if fmt is not None:
            known = self.hints.by_format.get(fmt)
            fresh = _format_value(fmt)
            return mostly(st.sampled_from(known), fresh, share=3) if known else fresh
        if schema.get("knownValues"):
            return st.sampled_from(schema["knownValues"])
        lo = min(schema.get("minLength", 0), 64)
        hi = max(lo, min(schema.get("maxLength", 64), 64))
        return text(lo, hi)

    def field(self, schema: Mapping[str, Any], nsid: str, depth: int = 0) -> st.SearchStrategy[Any]:
        t = schema.get("type")
        if t == "boolean":
            return st.just(schema["const"]) if "const" in schema else st.booleans()
        if t == "integer":
            if schema.get("enum"):
                return st.sampled_from(schema["enum"])
            lo = schema.get("minimum", -(2**31))
            hi = schema.get("maximum", 2**31)
            return st.integers(lo, hi)
        if t == "string":
            return self.string(schema)
        if t == "bytes":
            return st.binary(max_size=32).map(lambda b: {"$bytes": base64.b64encode(b).decode()})
        if t == "cid-link":
            return _format_value("cid").map(lambda c: {"$link": c})
        if t == "blob":
            return st.builds(
                lambda c, m, n: {"$type": "blob", "ref": {"$link": c}, "mimeType": m, "size": n},
                _format_value("cid"),
                st.sampled_from(["image/png", "image/jpeg", "text/plain"]),
                st.integers(0, 10**6),
            )
        if t == "array":
            items = schema.get("items", {"type": "unknown"})
            lo = min(schema.get("minLength", 0), 3)
            hi = max(lo, min(schema.get("maxLength", 3), 3))
            if depth > _DEPTH:
                return st.just([])
            return st.lists(self.field(items, nsid, depth + 1), min_size=lo, max_size=hi)
        if t in ("object", "params", "record"):
            return self.object(schema.get("record", schema), nsid, depth)
        if t == "ref":
            return self.ref(schema["ref"], nsid, depth, typed=False)
        if t == "union":
            refs = schema.get("refs", [])
            if not refs or depth > _DEPTH:
                return st.just({"$type": "app.bsky.feed.defs#notAThing"})
            return st.one_of([self.ref(r, nsid, depth, typed=True) for r in refs])
        if t == "token":
            return st.just(nsid)
        if t == "unknown":
            return self.unknown(depth)
        return json_values()

    def object(self, schema: Mapping[str, Any], nsid: str, depth: int) -> st.SearchStrategy[Any]:
        props: Mapping[str, Any] = schema.get("properties", {})
        required = set(schema.get("required", ()))
        if depth > _DEPTH:
            props = {k: v for k, v in props.items() if k in required}

        def prop(name: str, schema: Mapping[str, Any]) -> st.SearchStrategy[Any]:
            known = self.hints.by_name.get(name)
            generated = self.field(schema, nsid, depth + 1)
            if known and schema.get("type") == "string":
                return mostly(st.sampled_from(known), generated, share=3)
            return generated

        return st.fixed_dictionaries(
            {k: prop(k, v) for k, v in props.items() if k in required},
            optional={k: prop(k, v) for k, v in props.items() if k not in required},
        )

    def ref(self, ref: str, nsid: str, depth: int, *, typed: bool) -> st.SearchStrategy[Any]:
        key = resolve_ref(ref, nsid)
        target = key.partition("#")[0]
        try:
            schema = self.registry.get_def(key)
        except LexiconError:  # a dangling reference: anything at all
            return json_values()
        inner = self.field(schema, target, depth + 1)
        if typed and schema.get("type") in ("object", "record"):
            name = type_name(key)
            return inner.map(lambda v: {**v, "$type": name} if isinstance(v, dict) else v)
        return inner

    def record(self, depth: int = 0) -> st.SearchStrategy[Any]:
        """A record of one of the hinted collections, ``$type`` set."""
        return st.one_of(
            [
                self.ref(c, c, depth, typed=True)
                for c in self.hints.collections
                if c in self.registry
            ]
            or [json_objects()]
        )

    def unknown(self, depth: int) -> st.SearchStrategy[Any]:
        if depth > _DEPTH:
            return json_values()
        return st.one_of(self.record(depth + 1), json_objects())

    def input_body(self, nsid: str) -> st.SearchStrategy[Any]:
        """A valid-shaped JSON input body of procedure ``nsid`` (``{}`` without a schema)."""
        main = self.registry.get_def(nsid)
        schema = (main.get("input") or {}).get("schema")
        if schema is None:
            return st.just({})
        return self.field(schema, nsid)

    def params(self, nsid: str) -> st.SearchStrategy[dict[str, list[str]]]:
        """Valid-shaped query parameters of ``nsid`` as HTTP strings (lists for repeats)."""
        main = self.registry.get_def(nsid)
        schema = main.get("parameters") or {"properties": {}}
        props: Mapping[str, Any] = schema.get("properties", {})
        required = set(schema.get("required", ()))

        def one(prop: Mapping[str, Any]) -> st.SearchStrategy[str]:
            t = prop.get("type")
            if t == "integer":
                lo, hi = prop.get("minimum", 0), prop.get("maximum", 1000)
                return st.integers(lo, hi).map(str)
            if t == "boolean":
                return st.sampled_from(["true", "false"])
            return self.string(prop)

        def values(prop: Mapping[str, Any]) -> st.SearchStrategy[list[str]]:
            if prop.get("type") == "array":
                return st.lists(one(prop.get("items", {})), min_size=1, max_size=3)
            return one(prop).map(lambda v: [v])

        return st.fixed_dictionaries(
            {k: values(v) for k, v in props.items() if k in required},
            optional={k: values(v) for k, v in props.items() if k not in required},
        )


def mostly(
    usual: st.SearchStrategy[Any], *rare: st.SearchStrategy[Any], share: int = 6
) -> st.SearchStrategy[Any]:
    """``usual`` ``share`` times out of ``share + len(rare)``, else one of ``rare`` (an
    explicit weight: hypothesis's own choice among ``one_of`` branches is not uniform)."""
    options = [usual, *rare]
    return st.integers(0, share + len(rare) - 1).flatmap(lambda i: options[max(0, i - share + 1)])


# -- generic JSON ------------------------------------------------------------------------


def json_scalars() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**64), 2**64),
        st.floats(allow_nan=False, allow_infinity=False),
        text(),
    )


def json_values() -> st.SearchStrategy[Any]:
    return st.recursive(
        json_scalars(),
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(text(max_size=8), inner, max_size=4)
        ),
        max_leaves=12,
    )


def json_objects() -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(text(max_size=10), json_values(), max_size=5)


@dataclass(frozen=True)
class Deep:
    """``levels`` nested arrays around ``leaf``: written out by :func:`encode_json`
    without recursion, since Python's own encoder recurses once per level."""

    levels: int
    leaf: Any = 1


# -- mutations ---------------------------------------------------------------------------


def _wrong_values() -> st.SearchStrategy[Any]:
    return st.one_of(
        json_values(),
        st.sampled_from(_HUGE_NUMBERS),
        st.integers(1_000, 300_000).map(lambda n: "x" * n),
        st.integers(1, 400).map(lambda n: "é" * n + "\u200d" * n),
        st.sampled_from(_NESTING).map(Deep),
        st.just({"$link": "not-a-cid"}),
        st.just({"$bytes": "%%%"}),
        st.just({"$type": "blob", "ref": {"$link": "bafy"}, "mimeType": 5, "size": -1}),
    )


@st.composite
def mutated(draw: st.DrawFn, body: st.SearchStrategy[Any]) -> Any:
    """A value of ``body``, then a few top-level (or one-level-down) mutations."""
    value = draw(body)
    for _ in range(draw(st.integers(0, 3))):
        if not isinstance(value, dict):
            break
        value = dict(value)
        keys = sorted(value)
        action = draw(st.sampled_from(["drop", "wrong", "extra", "deep", "inner"]))
        if action == "drop" and keys:
            del value[draw(st.sampled_from(keys))]
        elif action == "wrong" and keys:
            value[draw(st.sampled_from(keys))] = draw(_wrong_values())
        elif action == "extra":
            value[draw(text(max_size=12))] = draw(_wrong_values())
        elif action == "deep" and keys:
            key = draw(st.sampled_from(keys))
            value[key] = Deep(draw(st.sampled_from(_NESTING)), value[key])
        elif action == "inner" and keys:
            key = draw(st.sampled_from(keys))
            inner = value[key]
            if isinstance(inner, dict) and inner:
                inner = dict(inner)
                inner[draw(st.sampled_from(sorted(inner)))] = draw(_wrong_values())
                value[key] = inner
    if draw(st.integers(0, 19)) == 0:
        value = draw(st.one_of(json_values(), st.just([value])))
    return value


def encode_json(value: Any) -> bytes:
    """JSON text of ``value``, :class:`Deep` values spelled out (NaN and infinities as
    Python writes them: ``NaN``)."""
    deep: list[Deep] = []

    def mark(obj: object) -> str:
        if not isinstance(obj, Deep):
            raise TypeError(type(obj).__name__)
        deep.append(obj)
        return f"\ue000{len(deep) - 1}\ue000"

    out = json.dumps(value, ensure_ascii=False, default=mark)
    for i, d in enumerate(deep):
        inner = encode_json(d.leaf).decode()
        out = out.replace(f'"\ue000{i}\ue000"', "[" * d.levels + inner + "]" * d.levels, 1)
    # A lone surrogate has no UTF-8 form; "\ud800" is its JSON escape (it only occurs
    # inside strings).
    return out.encode("utf-8", "backslashreplace")


def byte_mutations(raw: bytes) -> st.SearchStrategy[bytes]:
    """``raw`` truncated, with bytes flipped, inserted or removed, or doubled."""

    @st.composite
    def build(draw: st.DrawFn) -> bytes:
        out = bytearray(raw)
        for _ in range(draw(st.integers(1, 4))):
            action = draw(st.sampled_from(["cut", "flip", "insert", "delete", "double"]))
            pos = draw(st.integers(0, max(len(out) - 1, 0)))
            if action == "cut":
                del out[pos:]
            elif action == "flip" and out:
                out[pos] ^= 1 << draw(st.integers(0, 7))
            elif action == "insert":
                out[pos:pos] = draw(st.binary(min_size=1, max_size=9))
            elif action == "delete":
                del out[pos : pos + draw(st.integers(1, 9))]
            else:
                out.extend(bytes(out))
        return bytes(out)

    return build()


def json_bodies(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[bytes]:
    """Request bodies: valid-shaped, mutated, or bytes that are barely (or not) JSON."""
    broken = st.one_of(
        mutated(valid).map(encode_json).flatmap(byte_mutations),
        st.sampled_from([b"", b"null", b"[]", b'"x"', b"{", b"\xff\xfe", b'{"a":1,"a":2}']),
        st.just(b'{"a":"' + b"x" * 1_100_000 + b'"}'),  # past the PDS's 1 MB JSON limit
    )
    return mostly(valid.map(encode_json), mutated(valid).map(encode_json), broken, share=2)


@st.composite
def mutated_params(
    draw: st.DrawFn, valid: st.SearchStrategy[dict[str, list[str]]]
) -> list[tuple[str, str]]:
    """Query parameters: valid-shaped, then values replaced, dropped, repeated or added."""
    params = dict(draw(valid))
    for _ in range(draw(st.integers(0, 3))):
        keys = sorted(params)
        action = draw(st.sampled_from(["drop", "wrong", "repeat", "extra"]))
        if action == "drop" and keys:
            del params[draw(st.sampled_from(keys))]
        elif action == "wrong" and keys:
            params[draw(st.sampled_from(keys))] = [draw(bad_param_values())]
        elif action == "repeat" and keys:
            key = draw(st.sampled_from(keys))
            params[key] = params[key] * 2
        elif action == "extra":
            params[draw(text(min_size=1, max_size=8))] = [draw(bad_param_values())]
    return [(k, v) for k, vs in params.items() for v in vs]


def bad_param_values() -> st.SearchStrategy[str]:
    return st.one_of(
        text(max_size=30),
        st.sampled_from(
            ["²", "٥", "1_0", "+5", "-1", "0x10", "9" * 5000, "1e9", "５", "true ", "", "\x00"]
        ),
        st.integers(-(2**70), 2**70).map(str),
        st.integers(1_000, 8_000).map(lambda n: "a" * n),  # httpx caps a query at 64 KiB
    )


# -- bytes for the binary codecs -----------------------------------------------------------

_CBOR_HEADS = st.sampled_from(
    [
        b"\x1b\xff\xff\xff\xff\xff\xff\xff\xff",  # uint64 max
        b"\x5b\xff\xff\xff\xff\xff\xff\xff\xff",  # byte string of 2^64-1 bytes
        b"\x9b\x00\x00\x00\x01\x00\x00\x00\x00",  # array of 2^32 items
        b"\xbf",  # indefinite map
        b"\xd8\x2a",  # tag 42 (CID)
        b"\xd8\x2a\x45\x00\x01\x71\x12\x00",  # tag 42 over a short CID
        b"\xf9\x7e\x00",  # half-float NaN
        b"\xfb\x7f\xf8\x00\x00\x00\x00\x00\x00",  # double NaN
        b"\x81" * 5000,  # deep arrays
        b"\xa1\x61a" * 5000,  # deep maps
        b"\x7f\x61a\xff",  # indefinite text
        b"\x62\xed\xa0",  # text with a UTF-8-encoded surrogate
    ]
)


def cbor_bytes(valid: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    """DAG-CBOR-ish input: valid encodings, mutated ones, hostile heads, random bytes."""
    return st.one_of(
        valid,
        valid.flatmap(byte_mutations),
        st.tuples(_CBOR_HEADS, st.binary(max_size=16)).map(lambda t: t[0] + t[1]),
        st.binary(max_size=64),
    )


def nsids() -> st.SearchStrategy[str]:
    """Well-formed NSIDs of made-up record types."""
    segment = st.text("abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=10)
    return st.tuples(segment, segment, segment).map(lambda t: f"x{t[0]}.{t[1]}.{t[2]}")


def cids() -> st.SearchStrategy[CID]:
    return st.builds(CID.compute, st.binary(max_size=16), st.sampled_from([DAG_CBOR, RAW]))
