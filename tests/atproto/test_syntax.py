"""Identifier and string-format syntax, driven by the interop ``syntax/`` vectors."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plaza.atproto import syntax
from plaza.atproto.cid import CID, RAW
from plaza.atproto.errors import InvalidSyntaxError
from tests.vectors import load_lines, params, vector_path

VALIDATORS: dict[str, tuple[Callable[[str], str], Callable[[object], bool]]] = {
    "atidentifier": (syntax.validate_at_identifier, syntax.is_valid_at_identifier),
    "aturi": (syntax.validate_at_uri, syntax.is_valid_at_uri),
    "cid": (syntax.validate_cid_string, syntax.is_valid_cid_string),
    "datetime": (syntax.validate_datetime, syntax.is_valid_datetime),
    "did": (syntax.validate_did, syntax.is_valid_did),
    "handle": (syntax.validate_handle, syntax.is_valid_handle),
    "language": (syntax.validate_language, syntax.is_valid_language),
    "nsid": (syntax.validate_nsid, syntax.is_valid_nsid),
    "recordkey": (syntax.validate_record_key, syntax.is_valid_record_key),
    "tid": (syntax.validate_tid, syntax.is_valid_tid),
    "uri": (syntax.validate_uri, syntax.is_valid_uri),
}
SUFFIXES = ("_syntax_valid.txt", "_syntax_invalid.txt", "_parse_invalid.txt")


def _cases(suffix: str) -> list[tuple[str, str]]:
    out = []
    for family in VALIDATORS:
        try:
            lines = load_lines("atproto-interop", "syntax", family + suffix)
        except FileNotFoundError:
            continue
        out.extend((family, line) for line in lines)
    return out


def _id(case: tuple[str, str]) -> str:
    return f"{case[0]}-{case[1]!r}"


VALID = _cases("_syntax_valid.txt")
INVALID = _cases("_syntax_invalid.txt") + _cases("_parse_invalid.txt")


def test_every_syntax_vector_file_is_covered() -> None:
    folder = vector_path("atproto-interop", "syntax")
    files = sorted(p.name for p in folder.glob("*.txt"))
    assert files, "no syntax vectors found"
    for name in files:
        family = next((name.removesuffix(s) for s in SUFFIXES if name.endswith(s)), None)
        assert family in VALIDATORS, f"no validator runs the vector file {name}"
    total = sum(len(load_lines("atproto-interop", "syntax", name)) for name in files)
    assert len(VALID) + len(INVALID) == total


@pytest.mark.parametrize("case", params(VALID, _id))
def test_valid_vector(case: tuple[str, str]) -> None:
    family, value = case
    validate, is_valid = VALIDATORS[family]
    assert validate(value) == value
    assert is_valid(value)


@pytest.mark.parametrize("case", params(INVALID, _id))
def test_invalid_vector(case: tuple[str, str]) -> None:
    family, value = case
    validate, is_valid = VALIDATORS[family]
    with pytest.raises(InvalidSyntaxError) as info:
        validate(value)
    assert info.value.code == "InvalidSyntax"
    assert info.value.message.startswith("invalid ")
    assert not is_valid(value)


@pytest.mark.parametrize("family", sorted(VALIDATORS))
@pytest.mark.parametrize("value", [None, 12, b"did:plc:abc", ["a.test"]], ids=repr)
def test_non_strings_are_refused(family: str, value: object) -> None:
    validate, is_valid = VALIDATORS[family]
    with pytest.raises(InvalidSyntaxError, match="must be a string"):
        validate(value)  # type: ignore[arg-type]
    assert not is_valid(value)


@given(st.text(max_size=40) | st.binary(max_size=20).map(lambda b: b.decode("latin-1")))
def test_arbitrary_text_only_raises_invalid_syntax(text: str) -> None:
    for validate, is_valid in VALIDATORS.values():
        try:
            assert validate(text) == text
        except InvalidSyntaxError:
            assert not is_valid(text)


# -- normalization and structure ------------------------------------------------------


@pytest.mark.parametrize("value", params([c[1] for c in VALID if c[0] == "handle"], repr))
def test_handles_normalize_to_lower_case(value: str) -> None:
    normal = syntax.normalize_handle(value)
    assert normal == value.lower()
    assert syntax.validate_handle(normal) == normal


def test_normalize_examples() -> None:
    assert syntax.normalize_handle("BlueskyWeb.xyz") == "blueskyweb.xyz"
    assert syntax.normalize_nsid("COM.Example.fooBar") == "com.example.fooBar"
    assert syntax.normalize_at_identifier("Alice.Example.COM") == "alice.example.com"
    assert syntax.normalize_at_identifier("did:web:Example.com") == "did:web:Example.com"
    assert (
        syntax.normalize_at_uri("at://Alice.Example.COM/COM.Example.fooBar/Rkey3")
        == "at://alice.example.com/com.example.fooBar/Rkey3"
    )


@pytest.mark.parametrize("value", params([c[1] for c in VALID if c[0] == "aturi"], repr))
def test_at_uri_parses_into_parts_and_back(value: str) -> None:
    uri = syntax.parse_at_uri(value)
    assert str(uri) == value
    rest = value.removeprefix("at://").split("/")
    assert uri.authority == rest[0]
    assert uri.collection == (rest[1] if len(rest) > 1 else None)
    assert uri.rkey == (rest[2] if len(rest) > 2 else None)
    assert uri.is_did == rest[0].startswith("did:")


def test_at_uri_needs_collection_for_rkey() -> None:
    with pytest.raises(InvalidSyntaxError):
        syntax.AtUri("did:plc:abc", None, "rkey")


def test_did_method() -> None:
    assert syntax.did_method("did:plc:ewvi7nxzyoun6zhxrhs64oiz") == "plc"
    with pytest.raises(InvalidSyntaxError):
        syntax.did_method("did:PLC:x")


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("did:plc:ewvi7nxzyoun6zhxrhs64oiz", True),
        ("did:plc:7iza6de2dwap2sbkpav7c6c6", True),
        ("did:plc:ewvi7nxzyoun6zhxrhs64oi", False),  # 23 characters
        ("did:plc:ewvi7nxzyoun6zhxrhs64oizz", False),  # 25 characters
        ("did:plc:EWVI7NXZYOUN6ZHXRHS64OIZ", False),  # upper case
        ("did:plc:ewvi7nxzyoun6zhxrhs64oi1", False),  # '1' is not base32
        ("did:web:example.com", False),
    ],
)
def test_did_plc(value: str, ok: bool) -> None:
    if ok:
        assert syntax.validate_did_plc(value) == value
    else:
        with pytest.raises(InvalidSyntaxError):
            syntax.validate_did_plc(value)


@pytest.mark.parametrize(
    ("value", "ok", "ok_dev"),
    [
        ("did:web:example.com", True, True),
        ("did:web:user.example.com", True, True),
        ("did:web:localhost", False, True),
        ("did:web:localhost%3A1234", False, True),
        ("did:web:example.com%3A443", False, False),  # ports only for localhost
        ("did:web:example.com:user:alice", False, False),  # path-based
        ("did:web:blah.onion", False, False),  # disallowed TLD
        ("did:web:example", False, False),  # not a hostname with two labels
        ("did:web:-example.com", False, False),
        ("did:plc:ewvi7nxzyoun6zhxrhs64oiz", False, False),
    ],
)
def test_did_web(value: str, ok: bool, ok_dev: bool) -> None:
    for allow, expected in ((False, ok), (True, ok_dev)):
        if expected:
            assert syntax.validate_did_web(value, allow_localhost=allow) == value
        else:
            with pytest.raises(InvalidSyntaxError):
                syntax.validate_did_web(value, allow_localhost=allow)


def test_disallowed_tlds() -> None:
    assert syntax.has_disallowed_tld("laptop.local")
    assert syntax.has_disallowed_tld("x.ONION")
    assert not syntax.has_disallowed_tld("alice.bsky.social")
    assert syntax.is_valid_handle("laptop.local")  # syntax only


# -- datetimes ------------------------------------------------------------------------


def test_datetime_micros_examples() -> None:
    assert syntax.datetime_to_micros("1970-01-01T00:00:00Z") == 0
    assert syntax.datetime_to_micros("1970-01-01T00:00:00.0000019Z") == 1
    assert syntax.datetime_to_micros("1970-01-01T01:00:00+01:00") == 0
    # 0000-01-01 is 719,528 days before the epoch in the proleptic Gregorian calendar.
    assert syntax.datetime_to_micros("0000-01-01T00:00:00.000Z") == -719_528 * 86_400 * 10**6
    with pytest.raises(InvalidSyntaxError, match="Python can represent"):
        syntax.parse_datetime("0000-01-01T00:00:00.000Z")
    assert syntax.parse_datetime("1985-04-12T23:20:50.123-07:00") == datetime(
        1985, 4, 13, 6, 20, 50, 123000, tzinfo=UTC
    )


@pytest.mark.parametrize("value", ["2023-02-29T00:00:00Z", "1900-02-29T00:00:00Z"])
def test_datetime_rejects_days_that_do_not_exist(value: str) -> None:
    with pytest.raises(InvalidSyntaxError, match="does not exist"):
        syntax.validate_datetime(value)


def test_datetime_accepts_leap_days() -> None:
    for value in ("2024-02-29T00:00:00Z", "2000-02-29T00:00:00Z", "0000-02-29T00:00:00Z"):
        assert syntax.is_valid_datetime(value)


_AWARE = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
)


@given(_AWARE, st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59))
def test_datetime_agrees_with_python_for_any_offset(when: datetime, offset_min: int) -> None:
    local = when + timedelta(minutes=offset_min)
    sign = "+" if offset_min >= 0 else "-"
    hours, minutes = divmod(abs(offset_min), 60)
    tz = "Z" if offset_min == 0 else f"{sign}{hours:02d}:{minutes:02d}"
    text = (
        f"{local.year:04d}-{local.month:02d}-{local.day:02d}T{local.hour:02d}:"
        f"{local.minute:02d}:{local.second:02d}.{local.microsecond:06d}{tz}"
    )
    expected = (when - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    assert syntax.datetime_to_micros(text) == expected
    assert syntax.parse_datetime(text) == when


@given(_AWARE)
def test_format_datetime_round_trips(when: datetime) -> None:
    text = syntax.format_datetime(when, micros=True)
    assert syntax.validate_datetime(text) == text
    assert syntax.parse_datetime(text) == when
    ms = syntax.format_datetime(when)
    assert len(ms) == len("1985-04-12T23:20:50.123Z")
    assert syntax.parse_datetime(ms) == when.replace(microsecond=when.microsecond // 1000 * 1000)


# -- language tags, CID strings, URIs -------------------------------------------------


def test_language_tag_parts() -> None:
    tag = syntax.parse_language("en-GB-boont-r-extended-sequence-x-private")
    assert (tag.language, tag.region, tag.variants) == ("en", "GB", ("boont",))
    assert tag.extensions == (("r", ("extended", "sequence")),)
    assert tag.private_use == ("private",)
    tag = syntax.parse_language("X-fr-CH")
    assert tag.language is None and tag.private_use == ("fr", "CH")
    assert syntax.parse_language("zh-hakka").grandfathered
    tag = syntax.parse_language("zh-yue-Hant-HK")
    assert (tag.extlangs, tag.script, tag.region) == (("yue",), "Hant", "HK")


def test_cid_strings_of_real_cids_are_valid() -> None:
    for cid in (CID.compute(b"record"), CID.compute(b"blob", RAW)):
        assert syntax.validate_cid_string(str(cid)) == str(cid)


@given(st.binary(min_size=1, max_size=64))
def test_cid_string_of_any_computed_cid(data: bytes) -> None:
    assert syntax.is_valid_cid_string(str(CID.compute(data)))


_HANDLE_LIKE = st.from_regex(
    r"\A(?:[a-z0-9](?:[a-z0-9-]{0,8}[a-z0-9])?\.){1,4}[a-z](?:[a-z0-9-]{0,8}[a-z0-9])?\Z"
)


@given(_HANDLE_LIKE)
def test_generated_handles_are_valid_everywhere(handle: str) -> None:
    assert syntax.validate_handle(handle) == handle
    assert syntax.validate_at_identifier(handle) == handle
    assert syntax.validate_uri(f"at://{handle}") == f"at://{handle}"
    assert str(syntax.parse_at_uri(f"at://{handle}/app.bsky.feed.post/3k5nobkf2w72g")).startswith(
        "at://" + handle
    )
    assert syntax.is_valid_handle(handle.upper())
