"""Lexicon: the interop ``lexicon/`` vectors, the bundled documents, real-shaped records."""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import regex
from hypothesis import given
from hypothesis import strategies as st

import plaza.atproto
from plaza.atproto import datamodel
from plaza.atproto.cid import CID, RAW
from plaza.atproto.errors import InvalidRecordError, LexiconError
from plaza.atproto.lexicon import (
    InvalidDataError,
    LexiconRegistry,
    count_graphemes,
    default_registry,
    parse_lexicon,
)
from tests.vectors import load_json, params

LEXICONS_DIR = Path(plaza.atproto.__file__).parent / "lexicons"
CATALOG = ["record", "query", "procedure", "subscription", "permission-set"]
RECORD_TYPE = "example.lexicon.record"


def _name(item: dict[str, Any]) -> str:
    return str(item["name"])


# -- interop vectors --------------------------------------------------------------------


@pytest.mark.parametrize(
    "item", params(load_json("atproto-interop", "lexicon", "lexicon-valid.json"), _name)
)
def test_valid_lexicon_documents_parse(item: dict[str, Any]) -> None:
    doc = parse_lexicon(item["lexicon"])
    assert doc.id == item["lexicon"]["id"]
    assert set(doc.defs) == set(item["lexicon"]["defs"])


@pytest.mark.parametrize(
    "item", params(load_json("atproto-interop", "lexicon", "lexicon-invalid.json"), _name)
)
def test_invalid_lexicon_documents_are_rejected(item: dict[str, Any]) -> None:
    with pytest.raises(LexiconError) as info:
        parse_lexicon(item["lexicon"])
    assert info.value.code == "InvalidLexicon"


@pytest.mark.parametrize("name", CATALOG)
def test_catalog_documents_parse(name: str) -> None:
    doc = load_json("atproto-interop", "lexicon", "catalog", f"{name}.json")
    assert parse_lexicon(doc).id == doc["id"]


@pytest.fixture(scope="module")
def catalog() -> LexiconRegistry:
    """The bundled Lexicons plus the interop catalog (which refers to app.bsky types)."""
    docs = [load_json("atproto-interop", "lexicon", "catalog", f"{n}.json") for n in CATALOG]
    registry = default_registry().extended(docs)
    registry.check_references()
    return registry


@pytest.mark.parametrize(
    "item", params(load_json("atproto-interop", "lexicon", "record-data-valid.json"), _name)
)
def test_valid_record_data(catalog: LexiconRegistry, item: dict[str, Any]) -> None:
    record = datamodel.from_json(item["data"])
    catalog.validate_record(RECORD_TYPE, record, rkey=item["rkey"])


INVALID_RECORDS = load_json("atproto-interop", "lexicon", "record-data-invalid.json")


@pytest.mark.parametrize("item", params(INVALID_RECORDS, _name))
def test_invalid_record_data(catalog: LexiconRegistry, item: dict[str, Any]) -> None:
    record = datamodel.from_json(item["data"])
    with pytest.raises(InvalidRecordError) as info:
        catalog.validate_record(RECORD_TYPE, record, rkey=item["rkey"])
    assert info.value.code == "InvalidRecord"
    assert info.value.message.startswith("record")


@pytest.mark.parametrize(
    "item",
    params(
        [
            i
            for i in INVALID_RECORDS
            if "integer" not in i["data"] and i["data"] != {"$type": RECORD_TYPE}
        ],
        _name,
    ),
)
def test_invalid_record_data_fails_for_its_own_reason(
    catalog: LexiconRegistry, item: dict[str, Any]
) -> None:
    """Some vectors also lack the required ``integer``; supply it and they must still fail."""
    record = datamodel.from_json(item["data"])
    record["integer"] = 1
    with pytest.raises(InvalidRecordError) as info:
        catalog.validate_record(RECORD_TYPE, record, rkey=item["rkey"])
    assert "missing required field" not in info.value.message


def test_record_errors_name_the_field(catalog: LexiconRegistry) -> None:
    by_name = {i["name"]: i for i in INVALID_RECORDS}
    cases = {
        "object nested wrong data type": "record/object/a: expected an integer",
        "invalid array element": "record/array/0: expected an integer",
        "string too long (graphemes)": "record/graphemeString: string too long (23 > 20 graphemes)",
        "union inner invalid": None,
    }
    for name, expected in cases.items():
        with pytest.raises(InvalidRecordError) as info:
            catalog.validate_record(RECORD_TYPE, datamodel.from_json(by_name[name]["data"]))
        if expected is not None:
            assert info.value.message.startswith(expected), info.value.message


def test_catalog_methods(catalog: LexiconRegistry) -> None:
    params_ = catalog.decode_params(
        "example.lexicon.query", {"stringField": "x", "integer": "7", "array": ["1", "2"]}
    )
    assert params_ == {"stringField": "x", "integer": 7, "array": [1, 2]}
    with pytest.raises(InvalidDataError, match="params: missing required field 'stringField'"):
        catalog.decode_params("example.lexicon.query", {})
    catalog.validate_output("example.lexicon.query", {"a": 1, "b": 2})
    with pytest.raises(InvalidDataError, match="output/a: expected an integer"):
        catalog.validate_output("example.lexicon.query", {"a": "1"})
    catalog.validate_message("example.lexicon.subscription", {"seq": 1, "yo": True}, t="#yo")
    with pytest.raises(InvalidDataError, match="message: missing required field 'yo'"):
        catalog.validate_message("example.lexicon.subscription", {"seq": 1}, t="#yo")


# -- the bundled documents --------------------------------------------------------------


def _manifest() -> dict[str, Any]:
    return json.loads((LEXICONS_DIR / "MANIFEST.json").read_text())  # type: ignore[no-any-return]


def test_manifest_describes_the_source() -> None:
    manifest = _manifest()
    assert manifest["package"] == "@atproto/api"
    assert manifest["version"]
    assert manifest["integrity"].startswith("sha512-")
    assert "make lexicons" in manifest["notice"]
    assert "do not edit" in (LEXICONS_DIR / "README.md").read_text().lower()


def test_bundled_files_match_the_manifest() -> None:
    """A hand edit, a stray file or a missing file fails here; regenerate instead."""
    files = _manifest()["files"]
    on_disk = {p.name for p in LEXICONS_DIR.iterdir()} - {"MANIFEST.json", "README.md"}
    assert on_disk == set(files)
    changed = [
        name
        for name, digest in files.items()
        if hashlib.sha256((LEXICONS_DIR / name).read_bytes()).hexdigest() != digest
    ]
    assert changed == [], f"edited by hand (run `make lexicons`): {changed}"


def test_default_registry_loads_every_bundled_document() -> None:
    registry = default_registry()
    files = _manifest()["files"]
    assert len(registry) == len(files) > 200
    assert {f"{nsid}.json" for nsid in registry} == set(files)
    assert all(n.startswith(("com.atproto.", "app.bsky.")) for n in registry)
    registry.check_references()
    assert default_registry() is registry
    with pytest.raises(TypeError):
        registry.add({"lexicon": 1, "id": "social.plaza.test", "defs": {"x": {"type": "token"}}})


def test_registry_can_be_extended_without_touching_the_default() -> None:
    extra = {
        "lexicon": 1,
        "id": "social.plaza.example.note",
        "defs": {
            "main": {
                "type": "record",
                "key": "tid",
                "record": {
                    "type": "object",
                    "required": ["text", "author"],
                    "properties": {
                        "text": {"type": "string", "maxGraphemes": 10},
                        "author": {"type": "ref", "ref": "app.bsky.actor.defs#profileViewBasic"},
                    },
                },
            }
        },
    }
    registry = default_registry().extended([extra])
    registry.check_references()
    note = {
        "$type": "social.plaza.example.note",
        "text": "hi",
        "author": {"did": DID, "handle": "a.test"},
    }
    registry.validate_record("social.plaza.example.note", note)
    with pytest.raises(InvalidRecordError, match="record/author/handle"):
        registry.validate_record(
            "social.plaza.example.note", {**note, "author": {"did": DID, "handle": "nope"}}
        )
    assert "social.plaza.example.note" not in default_registry()
    with pytest.raises(LexiconError, match="already"):
        registry.add(extra)


# -- real-shaped app.bsky records -------------------------------------------------------

DID = "did:plc:ewvi7nxzyoun6zhxrhs64oiz"
NOW = "2024-11-26T16:30:00.123Z"
POST_URI = f"at://{DID}/app.bsky.feed.post/3k5nobkf2w72g"
STRONG_REF = {"uri": POST_URI, "cid": str(CID.compute(b"post"))}


def _blob(mime: str = "image/jpeg", size: int = 123_456) -> dict[str, Any]:
    return {
        "$type": "blob",
        "ref": CID.compute(b"image-bytes", RAW),
        "mimeType": mime,
        "size": size,
    }


def _post() -> dict[str, Any]:
    text = "Hello @alice.test, see https://example.com/a 🎉 #plaza"
    return {
        "$type": "app.bsky.feed.post",
        "text": text,
        "createdAt": NOW,
        "langs": ["en", "pt-BR"],
        "facets": [
            {
                "index": {"byteStart": 6, "byteEnd": 17},
                "features": [{"$type": "app.bsky.richtext.facet#mention", "did": DID}],
            },
            {
                "index": {"byteStart": 23, "byteEnd": 44},
                "features": [
                    {"$type": "app.bsky.richtext.facet#link", "uri": "https://example.com/a"}
                ],
            },
            {
                "index": {"byteStart": 50, "byteEnd": 56},
                "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": "plaza"}],
            },
        ],
        "embed": {
            "$type": "app.bsky.embed.images",
            "images": [
                {"alt": "a cat", "image": _blob(), "aspectRatio": {"width": 4, "height": 3}},
                {"alt": "", "image": _blob("image/png", 999)},
            ],
        },
        "reply": {"root": STRONG_REF, "parent": STRONG_REF},
        "labels": {"$type": "com.atproto.label.defs#selfLabels", "values": [{"val": "nudity"}]},
        "tags": ["cats"],
    }


RECORDS: dict[str, tuple[str, Callable[[], dict[str, Any]], str]] = {
    "post": ("app.bsky.feed.post", _post, "3k5nobkf2w72g"),
    "quote-post": (
        "app.bsky.feed.post",
        lambda: {
            "$type": "app.bsky.feed.post",
            "text": "",
            "createdAt": NOW,
            "embed": {"$type": "app.bsky.embed.record", "record": STRONG_REF},
        },
        "3k5nobkf2w72h",
    ),
    "like": (
        "app.bsky.feed.like",
        lambda: {"$type": "app.bsky.feed.like", "subject": STRONG_REF, "createdAt": NOW},
        "3k5nobkf2w72i",
    ),
    "follow": (
        "app.bsky.graph.follow",
        lambda: {"$type": "app.bsky.graph.follow", "subject": DID, "createdAt": NOW},
        "3k5nobkf2w72j",
    ),
    "profile": (
        "app.bsky.actor.profile",
        lambda: {
            "$type": "app.bsky.actor.profile",
            "displayName": "Alice 🌈",
            "description": "Line one\nLine two — with an em dash",
            "avatar": _blob("image/png", 50_000),
            "createdAt": NOW,
        },
        "self",
    ),
}


@pytest.mark.parametrize("name", sorted(RECORDS))
def test_real_shaped_records_are_valid(name: str) -> None:
    collection, build, rkey = RECORDS[name]
    record = build()
    default_registry().validate_record(collection, record, rkey=rkey)
    # The same record after a JSON round trip (what a PDS receives) is still valid.
    default_registry().validate_record(collection, datamodel.loads(datamodel.dumps(record)))


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(record: dict[str, Any]) -> None:
        *parents, last = path.split("/")
        node: Any = record
        for p in parents:
            node = node[int(p)] if isinstance(node, list) else node[p]
        if isinstance(node, list):
            node[int(last)] = value
        elif value is _DELETE:
            del node[last]
        else:
            node[last] = value

    return mutate


_DELETE = object()
BROKEN_POSTS = {
    "text over 3000 bytes": (
        _set("text", "é" * 1501),
        "record/text: string too long (3002 > 3000 bytes)",
    ),
    "text over 300 graphemes": (
        _set("text", "🎉" * 301),
        "record/text: string too long (301 > 300 graphemes)",
    ),
    "missing createdAt": (_set("createdAt", _DELETE), "record: missing required field 'createdAt'"),
    "bad datetime": (
        _set("createdAt", "2024-11-26 16:30:00Z"),
        "record/createdAt: invalid datetime",
    ),
    "bad language": (_set("langs/1", "Portuguese"), "record/langs/1: invalid language tag"),
    "too many langs": (_set("langs", ["en", "fr", "de", "it"]), "record/langs: array too long"),
    "mention not a DID": (
        _set("facets/0/features/0/did", "alice.test"),
        "record/facets/0/features/0/did: invalid DID",
    ),
    "negative byte offset": (
        _set("facets/0/index/byteStart", -1),
        "record/facets/0/index/byteStart",
    ),
    "five images": (
        _set("embed/images", [{"alt": "", "image": _blob()}] * 5),
        "record/embed/images",
    ),
    "image not an image": (
        _set("embed/images/0/image", _blob("text/html")),
        "record/embed/images/0/image: blob MIME type 'text/html' is not accepted",
    ),
    "image too large": (
        _set("embed/images/0/image", _blob(size=2_000_001)),
        "record/embed/images/0/image: blob too large",
    ),
    "image alt missing": (_set("embed/images/0/alt", _DELETE), "record/embed/images/0: missing"),
    "reply without root": (
        _set("reply/root", _DELETE),
        "record/reply: missing required field 'root'",
    ),
    "reply uri not an AT-URI": (
        _set("reply/parent", {**STRONG_REF, "uri": "https://x.test"}),
        "record/reply/parent/uri",
    ),
    "embed without $type": (
        _set("embed", {"images": []}),
        "record/embed: a union member needs a '$type'",
    ),
    "null text": (_set("text", None), "record/text: must not be null"),
    "wrong $type": (
        _set("$type", "app.bsky.feed.like"),
        "record/$type: must be 'app.bsky.feed.post'",
    ),
    "bytes for text": (_set("text", b"hello"), "record/text: expected a string, got bytes"),
}


@pytest.mark.parametrize("case", sorted(BROKEN_POSTS))
def test_broken_posts_are_rejected(case: str) -> None:
    mutate, expected = BROKEN_POSTS[case]
    post = copy.deepcopy(_post())
    mutate(post)
    with pytest.raises(InvalidRecordError) as info:
        default_registry().validate_record("app.bsky.feed.post", post)
    assert info.value.message.startswith(expected), info.value.message


@pytest.mark.parametrize(
    ("collection", "record", "rkey", "expected"),
    [
        ("app.bsky.actor.profile", {"$type": "app.bsky.actor.profile"}, "me", "must be 'self'"),
        (
            "app.bsky.feed.post",
            {"$type": "app.bsky.feed.post", "text": "", "createdAt": NOW},
            "self",
            "tid",
        ),
        (
            "app.bsky.graph.follow",
            {"$type": "app.bsky.graph.follow", "subject": "alice.test", "createdAt": NOW},
            None,
            "record/subject: invalid DID",
        ),
        (
            "app.bsky.feed.like",
            {"$type": "app.bsky.feed.like", "subject": {"uri": POST_URI}, "createdAt": NOW},
            None,
            "record/subject: missing required field 'cid'",
        ),
        (
            "app.bsky.actor.profile",
            {"$type": "app.bsky.actor.profile", "displayName": "x" * 65},
            None,
            "record/displayName: string too long (65 > 64 graphemes)",
        ),
        (
            "app.bsky.actor.profile",
            {"$type": "app.bsky.actor.profile", "avatar": _blob("image/gif")},
            None,
            "record/avatar: blob MIME type",
        ),
    ],
)
def test_broken_records_are_rejected(
    collection: str, record: dict[str, Any], rkey: str | None, expected: str
) -> None:
    with pytest.raises(InvalidRecordError) as info:
        default_registry().validate_record(collection, record, rkey=rkey)
    assert expected in info.value.message


def test_unknown_collection_and_non_record() -> None:
    with pytest.raises(LexiconError, match="not a known record type"):
        default_registry().validate_record("com.example.nothing", {"$type": "com.example.nothing"})
    with pytest.raises(LexiconError, match="not a known record type"):
        default_registry().validate_record("app.bsky.feed.getTimeline", {})
    with pytest.raises(InvalidRecordError, match="expected an object"):
        default_registry().validate_record("app.bsky.feed.post", ["not", "a", "record"])


def test_open_unions_accept_unknown_variants() -> None:
    post = _post()
    post["facets"][0]["features"].append({"$type": "com.example.facet#sparkle", "colour": "gold"})
    default_registry().validate_record("app.bsky.feed.post", post)
    post["embed"] = {"$type": "app.bsky.embed.images#main", "images": []}
    with pytest.raises(InvalidRecordError, match="#main"):
        default_registry().validate_record("app.bsky.feed.post", post)


# -- XRPC parameters, bodies and stream messages ----------------------------------------


def test_decode_params_applies_types_and_defaults() -> None:
    reg = default_registry()
    got = reg.decode_params(
        "app.bsky.feed.getAuthorFeed", {"actor": "alice.test", "limit": "30", "x": "1"}
    )
    assert got == {
        "actor": "alice.test",
        "limit": 30,
        "filter": "posts_with_replies",
        "includePins": False,
    }
    assert (
        reg.decode_params("app.bsky.feed.getAuthorFeed", {"actor": DID, "includePins": ["true"]})[
            "includePins"
        ]
        is True
    )
    for query, expected in [
        ({"actor": "alice.test", "limit": "abc"}, "params/limit: expected an integer"),
        ({"actor": "alice.test", "limit": "1000"}, "params/limit: integer too large (1000 > 100)"),
        ({"actor": "alice.test", "limit": ["1", "2"]}, "params/limit: expected one value"),
        ({"actor": "alice.test", "includePins": "yes"}, "params/includePins"),
        ({"actor": "not a handle"}, "params/actor: invalid at-identifier"),
        ({}, "params: missing required field 'actor'"),
    ]:
        with pytest.raises(InvalidDataError) as info:
            reg.decode_params("app.bsky.feed.getAuthorFeed", query)
        assert info.value.message.startswith(expected), info.value.message
        assert info.value.code == "InvalidRequest"


def test_bodies_and_messages() -> None:
    reg = default_registry()
    body = {"repo": DID, "collection": "app.bsky.feed.post", "record": _post()}
    reg.validate_input("com.atproto.repo.createRecord", body)
    with pytest.raises(InvalidDataError, match="input: missing required field 'collection'"):
        reg.validate_input("com.atproto.repo.createRecord", {"repo": DID, "record": {}})
    with pytest.raises(InvalidDataError, match="input/record: expected an object"):
        reg.validate_input("com.atproto.repo.createRecord", {**body, "record": "text"})
    reg.validate_output(
        "com.atproto.server.describeServer",
        {"did": "did:web:pds.test", "availableUserDomains": [".test"]},
    )
    reg.validate_input("com.atproto.sync.getRepo", b"anything")  # a query has no input schema
    identity = {"seq": 5, "did": DID, "time": NOW, "handle": "alice.test"}
    reg.validate_message("com.atproto.sync.subscribeRepos", identity, t="#identity")
    with pytest.raises(InvalidDataError, match="message/handle"):
        reg.validate_message(
            "com.atproto.sync.subscribeRepos", {**identity, "handle": "x"}, t="#identity"
        )
    reg.validate_message("com.atproto.sync.subscribeRepos", {"anything": 1}, t="#future")
    with pytest.raises(LexiconError):
        reg.validate_params("app.bsky.feed.post", {})


# -- schema checks beyond the vectors ---------------------------------------------------


def _doc(defs: dict[str, Any], nsid: str = "com.example.test") -> dict[str, Any]:
    return {"lexicon": 1, "id": nsid, "defs": defs}


@pytest.mark.parametrize(
    ("defs", "expected"),
    [
        ({}, "at least one definition"),
        ({"main": {"type": "union", "refs": ["#a"]}}, "cannot be a named definition"),
        (
            {
                "main": {
                    "type": "object",
                    "properties": {"u": {"type": "union", "refs": [], "closed": True}},
                }
            },
            "closed union",
        ),
        ({"main": {"type": "string", "const": "a", "default": "b"}}, "mutually exclusive"),
        ({"main": {"type": "string", "format": "email"}}, "unknown string format"),
        ({"main": {"type": "string", "maxLength": -1}}, "non-negative"),
        ({"main": {"type": "blob", "accept": ["*"]}}, "bad MIME type pattern"),
        (
            {"main": {"type": "query", "input": {"encoding": "application/json"}}},
            "cannot have 'input'",
        ),
        ({"main": {"type": "object", "required": ["a"], "properties": {}}}, "not a property"),
        ({"main": {"type": "array"}}, "needs 'items'"),
        (
            {
                "main": {
                    "type": "record",
                    "key": "uuid",
                    "record": {"type": "object", "properties": {}},
                }
            },
            "record key type",
        ),
        (
            {
                "main": {
                    "type": "subscription",
                    "message": {"schema": {"type": "object", "properties": {}}},
                }
            },
            "not allowed",
        ),
        (
            {"main": {"type": "object", "properties": {"r": {"type": "ref", "ref": "not a ref"}}}},
            "bad reference",
        ),
        (
            {
                "main": {
                    "type": "query",
                    "parameters": {
                        "type": "params",
                        "properties": {"o": {"type": "object", "properties": {}}},
                    },
                }
            },
            "not allowed",
        ),
    ],
)
def test_invalid_schemas(defs: dict[str, Any], expected: str) -> None:
    with pytest.raises(LexiconError, match=expected):
        parse_lexicon(_doc(defs))


def test_reference_problems_surface_when_compiling() -> None:
    dangling = LexiconRegistry(
        [
            _doc(
                {
                    "main": {
                        "type": "object",
                        "properties": {"r": {"type": "ref", "ref": "com.example.gone#x"}},
                    }
                }
            )
        ]
    )
    with pytest.raises(LexiconError, match="unresolved"):
        dangling.check_references()
    token = LexiconRegistry(
        [
            _doc(
                {
                    "main": {"type": "object", "properties": {"r": {"type": "ref", "ref": "#t"}}},
                    "t": {"type": "token"},
                }
            )
        ]
    )
    with pytest.raises(LexiconError, match="token"):
        token.check_references()
    union = LexiconRegistry(
        [
            _doc(
                {
                    "main": {
                        "type": "object",
                        "properties": {"u": {"type": "union", "refs": ["#s"]}},
                    },
                    "s": {"type": "string"},
                }
            )
        ]
    )
    with pytest.raises(LexiconError, match="not an object"):
        union.check_references()


def test_self_referencing_definitions_validate() -> None:
    tree = _doc(
        {
            "main": {
                "type": "object",
                "required": ["v"],
                "properties": {
                    "v": {"type": "integer"},
                    "kids": {"type": "array", "items": {"type": "ref", "ref": "#main"}},
                },
            }
        }
    )
    reg = LexiconRegistry([tree])
    reg.check_references()
    reg.validate("com.example.test", {"v": 1, "kids": [{"v": 2, "kids": [{"v": 3}]}]})
    with pytest.raises(InvalidDataError, match="value/kids/0/kids/0/v: expected an integer"):
        reg.validate("com.example.test", {"v": 1, "kids": [{"v": 2, "kids": [{"v": "3"}]}]})


# -- graphemes and robustness ----------------------------------------------------------

_X = regex.compile(r"\X")


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("", 0),
        ("abc", 3),
        ("\r\n", 1),
        ("e\u0301", 1),
        ("👨‍👩‍👧‍👦", 1),
        ("🇩🇪🇯🇵", 2),
        ("🏳️‍🌈x", 2),
        ("한국어", 3),
    ],
)
def test_count_graphemes(text: str, count: int) -> None:
    assert count_graphemes(text) == count


@given(st.text(alphabet=st.characters(max_codepoint=127)))
def test_ascii_fast_path_matches_the_full_algorithm(text: str) -> None:
    assert count_graphemes(text) == len(_X.findall(text))


_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.text(max_size=20)
    | st.binary(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_POST_FIELDS = [
    "text",
    "createdAt",
    "langs",
    "facets",
    "embed",
    "reply",
    "labels",
    "tags",
    "entities",
]


@given(st.dictionaries(st.sampled_from(_POST_FIELDS), _VALUES, max_size=6))
def test_arbitrary_data_only_raises_invalid_record(fields: dict[str, Any]) -> None:
    record = {"$type": "app.bsky.feed.post", **fields}
    try:
        default_registry().validate_record("app.bsky.feed.post", record)
    except InvalidRecordError as exc:
        assert exc.message.startswith("record")
