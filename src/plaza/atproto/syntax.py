"""String identifiers of the AT Protocol: syntax checks and normalization.

Each ``validate_*`` function takes untrusted input, returns it unchanged when it is
valid and otherwise raises :class:`~plaza.atproto.errors.InvalidSyntaxError` with a
message naming the rule that was broken. ``normalize_*`` functions validate and return
the canonical form (handles and NSID authorities are case-insensitive), and
``is_valid_*`` are the boolean forms. The happy path is one precompiled regex match;
the slower diagnosis that picks the message only runs on failure.

The rules are the atproto specifications' (atproto.com/specs: handle, did, nsid,
record-key, tid, at-uri-scheme, lexicon string formats), checked against the
interop vectors. Where the Python SDK disagrees with a vector (CIDv0 strings,
the year 0000, private-use ``X-`` language tags) the spec and the vectors win.

Datetimes, language tags and generic URIs live in :mod:`plaza.atproto.textformats`
and are re-exported here, so callers need only this module.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from plaza.atproto.errors import InvalidSyntaxError
from plaza.atproto.textformats import (
    LanguageTag,
    datetime_to_micros,
    format_datetime,
    is_valid_datetime,
    is_valid_language,
    is_valid_uri,
    parse_datetime,
    parse_language,
    validate_datetime,
    validate_language,
    validate_uri,
)

__all__ = [
    "DISALLOWED_TLDS",
    "AtUri",
    "LanguageTag",
    "datetime_to_micros",
    "did_method",
    "format_datetime",
    "has_disallowed_tld",
    "is_valid_at_identifier",
    "is_valid_at_uri",
    "is_valid_cid_string",
    "is_valid_datetime",
    "is_valid_did",
    "is_valid_handle",
    "is_valid_language",
    "is_valid_nsid",
    "is_valid_record_key",
    "is_valid_tid",
    "is_valid_uri",
    "normalize_at_identifier",
    "normalize_at_uri",
    "normalize_handle",
    "normalize_nsid",
    "parse_at_uri",
    "parse_datetime",
    "parse_language",
    "validate_at_identifier",
    "validate_at_uri",
    "validate_cid_string",
    "validate_datetime",
    "validate_did",
    "validate_did_plc",
    "validate_did_web",
    "validate_handle",
    "validate_language",
    "validate_nsid",
    "validate_record_key",
    "validate_tid",
    "validate_uri",
]

HANDLE_MAX: Final = 253
DID_MAX: Final = 2048
NSID_MAX: Final = 317  # 253 (authority) + 1 + 63 (name), as the vectors measure it
RECORD_KEY_MAX: Final = 512
AT_URI_MAX: Final = 8192
CID_STRING_MIN: Final = 8
CID_STRING_MAX: Final = 256

#: Top-level domains that pass handle syntax but must never resolve (handle spec).
DISALLOWED_TLDS: Final = frozenset(
    {"alt", "arpa", "example", "internal", "invalid", "local", "localhost", "onion"}
)

_HANDLE_RE: Final = re.compile(
    r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
)
_DID_RE: Final = re.compile(r"did:[a-z]+:[a-zA-Z0-9._:%-]*[a-zA-Z0-9._-]")
_DID_BAD_PERCENT: Final = re.compile(r"%(?![0-9A-Fa-f]{2})")
_DID_PLC_RE: Final = re.compile(r"did:plc:[a-z2-7]{24}")
_NSID_RE: Final = re.compile(
    r"[a-zA-Z](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
    r"(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)+"
    r"\.[a-zA-Z][a-zA-Z0-9]{0,62}"
)
_RECORD_KEY_RE: Final = re.compile(r"[A-Za-z0-9._:~-]{1,512}")
_TID_RE: Final = re.compile(r"[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}")
_AT_URI_RE: Final = re.compile(r"at://([^/?#]+)(?:/([^/?#]+)(?:/([^/?#]+))?)?")
_LABEL_CHARS: Final = re.compile(r"[a-zA-Z0-9-]+")

# Multibase prefixes (multiformats/multibase) and the alphabet each body must use. A
# CIDv1 string is always multibase; a CIDv0 (bare base58 "Qm…") has no prefix.
_B32_LOWER = "a-z2-7"
_MULTIBASE_BODY: Final = {
    "0": re.compile(r"[01]+"),
    "7": re.compile(r"[0-7]+"),
    "9": re.compile(r"[0-9]+"),
    "f": re.compile(r"[0-9a-f]+"),
    "F": re.compile(r"[0-9A-F]+"),
    "b": re.compile(f"[{_B32_LOWER}]+"),
    "B": re.compile(r"[A-Z2-7]+"),
    "c": re.compile(f"[{_B32_LOWER}]+=*"),
    "C": re.compile(r"[A-Z2-7]+=*"),
    "v": re.compile(r"[0-9a-v]+"),
    "V": re.compile(r"[0-9A-V]+"),
    "t": re.compile(r"[0-9a-v]+=*"),
    "T": re.compile(r"[0-9A-V]+=*"),
    "h": re.compile(r"[ybndrfg8ejkmcpqxot1uwisza345h769]+"),
    "k": re.compile(r"[0-9a-z]+"),
    "K": re.compile(r"[0-9A-Z]+"),
    "z": re.compile(r"[1-9A-HJ-NP-Za-km-z]+"),
    "Z": re.compile(r"[1-9a-km-zA-HJ-NP-Z]+"),
    "m": re.compile(r"[A-Za-z0-9+/]+"),
    "M": re.compile(r"[A-Za-z0-9+/]+=*"),
    "u": re.compile(r"[A-Za-z0-9_-]+"),
    "U": re.compile(r"[A-Za-z0-9_-]+=*"),
}


def _show(value: str) -> str:
    return repr(value if len(value) <= 80 else value[:77] + "...")


def _fail(kind: str, value: str, rule: str) -> InvalidSyntaxError:
    return InvalidSyntaxError(f"invalid {kind} {_show(value)}: {rule}")


def _require_str(kind: str, value: object) -> str:
    if type(value) is not str:
        raise InvalidSyntaxError(f"{kind} must be a string, got {type(value).__name__}")
    return value


def _boolean(validator: Callable[[str], object]) -> Callable[[object], bool]:
    def is_valid(value: object) -> bool:
        try:
            validator(value)  # type: ignore[arg-type]
        except InvalidSyntaxError:
            return False
        return True

    is_valid.__doc__ = f"True when ``{validator.__name__}`` accepts ``value``."
    return is_valid


# -- handles ------------------------------------------------------------------------


def _hostname_rule(value: str, kind: str, max_len: int) -> str:
    """The first hostname rule ``value`` breaks (``value`` is known to be invalid)."""
    if not value.isascii():
        return "must contain only ASCII characters"
    if len(value) > max_len:
        return f"too long ({len(value)} > {max_len} characters)"
    labels = value.split(".")
    if len(labels) < 2:
        return f"a {kind} needs at least two dot-separated segments"
    for label in labels:
        if not label:
            return "segments must not be empty (no leading, trailing or double dots)"
        if len(label) > 63:
            return f"segment of {len(label)} characters (at most 63)"
        if not _LABEL_CHARS.fullmatch(label):
            return f"segment {label!r} may only contain a-z, A-Z, 0-9 and '-'"
        if label[0] == "-" or label[-1] == "-":
            return f"segment {label!r} must not start or end with '-'"
    if labels[-1][0].isdigit():
        return "the last segment (top-level domain) must not start with a digit"
    return "does not match the hostname syntax"


def validate_handle(value: str) -> str:
    """Return ``value`` if it is a syntactically valid handle (any case)."""
    value = _require_str("handle", value)
    if len(value) <= HANDLE_MAX and _HANDLE_RE.fullmatch(value):
        return value
    raise _fail("handle", value, _hostname_rule(value, "handle", HANDLE_MAX))


def normalize_handle(value: str) -> str:
    """Validate a handle and return it lower-cased, the only form to store or send."""
    return validate_handle(value).lower()


def has_disallowed_tld(hostname: str) -> bool:
    """True when ``hostname`` ends in a TLD that must never resolve (``.onion``, ``.local``…).

    Such handles pass syntax validation but fail registration and resolution.
    """
    return hostname.rsplit(".", 1)[-1].lower() in DISALLOWED_TLDS


# -- DIDs ---------------------------------------------------------------------------


def _did_rule(value: str) -> str:
    if not value.startswith("did:"):
        return "must start with lower-case 'did:'"
    if len(value) > DID_MAX:
        return f"too long ({len(value)} > {DID_MAX} characters)"
    parts = value.split(":", 2)
    if len(parts) < 3 or not parts[1]:
        return "needs a method and an identifier ('did:method:identifier')"
    if not re.fullmatch(r"[a-z]+", parts[1]):
        return "the method must be lower-case letters a-z only"
    ident = parts[2]
    if not ident:
        return "the identifier must not be empty"
    bad = re.search(r"[^a-zA-Z0-9._:%-]", ident)
    if bad:
        what = {"?": "a query", "#": "a fragment", "/": "a path"}.get(bad.group())
        if what:
            return f"{what} is not allowed in an atproto DID"
        return f"character {bad.group()!r} is not allowed (only A-Z a-z 0-9 . _ : % -)"
    if ident[-1] in ":%":
        return f"must not end with {ident[-1]!r}"
    if _DID_BAD_PERCENT.search(ident):
        return "'%' must be followed by two hex digits"
    return "does not match the DID syntax"


def validate_did(value: str) -> str:
    """Return ``value`` if it has generic DID syntax as atproto restricts it (any method)."""
    value = _require_str("DID", value)
    if (
        len(value) <= DID_MAX
        and _DID_RE.fullmatch(value)
        and ("%" not in value or not _DID_BAD_PERCENT.search(value))
    ):
        return value
    raise _fail("DID", value, _did_rule(value))


def did_method(did: str) -> str:
    """The method of a valid DID (``plc`` for ``did:plc:…``)."""
    return validate_did(did).split(":", 2)[1]


def validate_did_plc(value: str) -> str:
    """Return ``value`` if it is a well-formed ``did:plc``: 24 base32-lower characters."""
    validate_did(value)
    if _DID_PLC_RE.fullmatch(value):
        return value
    if not value.startswith("did:plc:"):
        raise _fail("did:plc", value, "the method must be 'plc'")
    raise _fail("did:plc", value, "the identifier must be 24 characters of a-z and 2-7")


def validate_did_web(value: str, *, allow_localhost: bool = False) -> str:
    """Return ``value`` if it is a ``did:web`` atproto accepts: a bare hostname, no path.

    The hostname follows handle syntax and must not use a disallowed TLD. A port
    (``%3A`` then digits) is only allowed for ``localhost``, and ``localhost`` itself
    only when ``allow_localhost`` (testing and development).
    """
    validate_did(value)
    if not value.startswith("did:web:"):
        raise _fail("did:web", value, "the method must be 'web'")
    host = value[len("did:web:") :]
    if ":" in host:
        raise _fail("did:web", value, "path-based did:web is not supported in atproto")
    if host == "localhost" or re.fullmatch(r"localhost%3[Aa][0-9]{1,5}", host):
        if allow_localhost:
            return value
        raise _fail("did:web", value, "localhost is only allowed in testing and development")
    if "%" in host:
        raise _fail("did:web", value, "a port is only allowed for localhost")
    if len(host) > HANDLE_MAX or not _HANDLE_RE.fullmatch(host):
        raise _fail("did:web", value, _hostname_rule(host, "hostname", HANDLE_MAX))
    if has_disallowed_tld(host):
        tld = host.rsplit(".", 1)[-1]
        raise _fail("did:web", value, f"the top-level domain .{tld} is not allowed")
    return value


# -- at-identifier ------------------------------------------------------------------


def validate_at_identifier(value: str) -> str:
    """Return ``value`` if it is a valid handle or DID."""
    value = _require_str("at-identifier", value)
    if value.startswith("did:"):
        try:
            return validate_did(value)
        except InvalidSyntaxError as exc:
            raise InvalidSyntaxError(f"invalid at-identifier: {exc.message}") from exc
    try:
        return validate_handle(value)
    except InvalidSyntaxError as exc:
        raise InvalidSyntaxError(f"invalid at-identifier: {exc.message}") from exc


def normalize_at_identifier(value: str) -> str:
    """Validate; handles are lower-cased, DIDs (case-sensitive) are returned as given."""
    value = validate_at_identifier(value)
    return value if value.startswith("did:") else value.lower()


# -- NSIDs, record keys, TIDs -------------------------------------------------------


def _nsid_rule(value: str) -> str:
    if not value.isascii():
        return "must contain only ASCII characters"
    if len(value) > NSID_MAX:
        return f"too long ({len(value)} > {NSID_MAX} characters)"
    segments = value.split(".")
    if len(segments) < 3:
        return "needs at least three segments (a reversed domain and a name)"
    if any(not s for s in segments):
        return "segments must not be empty"
    for s in segments:
        if len(s) > 63:
            return f"segment of {len(s)} characters (at most 63)"
    *authority, name = segments
    for s in authority:
        if not _LABEL_CHARS.fullmatch(s):
            return f"authority segment {s!r} may only contain a-z, A-Z, 0-9 and '-'"
        if s[0] == "-" or s[-1] == "-":
            return f"authority segment {s!r} must not start or end with '-'"
    if authority[0][0].isdigit():
        return "the first segment (top-level domain) must not start with a digit"
    if not re.fullmatch(r"[a-zA-Z0-9]+", name):
        return f"the name {name!r} may only contain letters and digits"
    if name[0].isdigit():
        return f"the name {name!r} must not start with a digit"
    return "does not match the NSID syntax"


def validate_nsid(value: str) -> str:
    """Return ``value`` if it is a valid NSID (``com.example.fooBar``)."""
    value = _require_str("NSID", value)
    if len(value) <= NSID_MAX and _NSID_RE.fullmatch(value):
        return value
    raise _fail("NSID", value, _nsid_rule(value))


def normalize_nsid(value: str) -> str:
    """Validate; the domain authority is lower-cased, the (case-sensitive) name kept."""
    authority, _, name = validate_nsid(value).rpartition(".")
    return f"{authority.lower()}.{name}"


def validate_record_key(value: str) -> str:
    """Return ``value`` if it is a valid record key (1-512 of ``A-Za-z0-9._:~-``)."""
    value = _require_str("record key", value)
    if _RECORD_KEY_RE.fullmatch(value) and value not in (".", ".."):
        return value
    if value in (".", ".."):
        raise _fail("record key", value, "'.' and '..' are not allowed")
    if not value:
        raise _fail("record key", value, "must not be empty")
    if len(value) > RECORD_KEY_MAX:
        raise _fail("record key", value, f"too long ({len(value)} > {RECORD_KEY_MAX})")
    bad = re.search(r"[^A-Za-z0-9._:~-]", value)
    assert bad is not None
    raise _fail("record key", value, f"character {bad.group()!r} is not allowed")


def validate_tid(value: str) -> str:
    """Return ``value`` if it has TID syntax (13 base32-sortable characters, top bit 0)."""
    value = _require_str("TID", value)
    if _TID_RE.fullmatch(value):
        return value
    if len(value) != 13:
        raise _fail("TID", value, f"must be 13 characters, not {len(value)}")
    if re.search(r"[^234567a-z]", value):
        raise _fail("TID", value, "only the base32-sortable characters 2-7 and a-z are allowed")
    raise _fail("TID", value, "the first character must be 2-7 or a-j (the top bit is 0)")


# -- CID strings --------------------------------------------------------------------


def validate_cid_string(value: str) -> str:
    """Return ``value`` if it has the syntax of a multibase CIDv1 string.

    This is the Lexicon ``cid`` string format: a syntax check, not a decode. The first
    character must be a multibase prefix and the rest must use that base's alphabet,
    so a CIDv0 (bare base58 ``Qm…``) is refused. To get a :class:`~plaza.atproto.cid.CID`
    use ``CID.decode``, which accepts only the blessed base32 ``b…`` form.
    """
    value = _require_str("CID", value)
    if not CID_STRING_MIN <= len(value) <= CID_STRING_MAX:
        raise _fail("CID", value, f"length {len(value)} outside {CID_STRING_MIN}-{CID_STRING_MAX}")
    body = _MULTIBASE_BODY.get(value[0])
    if body is None:
        if value.startswith("Qm"):
            raise _fail("CID", value, "CIDv0 is not supported; use a CIDv1 string")
        raise _fail("CID", value, f"{value[0]!r} is not a multibase prefix")
    if not body.fullmatch(value, 1):
        raise _fail("CID", value, f"characters outside the alphabet of multibase {value[0]!r}")
    return value


# -- AT-URIs ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AtUri:
    """A parsed Lexicon AT-URI: ``at://AUTHORITY[/COLLECTION[/RKEY]]``."""

    authority: str
    collection: str | None = None
    rkey: str | None = None

    def __post_init__(self) -> None:
        if self.rkey is not None and self.collection is None:
            raise InvalidSyntaxError("an AT-URI with a record key needs a collection")

    def __str__(self) -> str:
        out = f"at://{self.authority}"
        if self.collection is not None:
            out += f"/{self.collection}"
            if self.rkey is not None:
                out += f"/{self.rkey}"
        return out

    @property
    def is_did(self) -> bool:
        return self.authority.startswith("did:")


def parse_at_uri(value: str) -> AtUri:
    """Parse and validate an AT-URI in the restricted (Lexicon ``at-uri``) syntax.

    Query and fragment parts, trailing slashes and paths deeper than
    ``collection/rkey`` are refused.
    """
    return AtUri(*_at_uri_parts(value))


def _at_uri_parts(value: str) -> tuple[str, str | None, str | None]:
    value = _require_str("AT-URI", value)
    if len(value) > AT_URI_MAX:
        raise _fail("AT-URI", value, f"too long ({len(value)} > {AT_URI_MAX} characters)")
    m = _AT_URI_RE.fullmatch(value)
    if m is None:
        raise _fail("AT-URI", value, _at_uri_rule(value))
    authority, collection, rkey = m.groups()
    try:
        validate_at_identifier(authority)
        if collection is not None:
            validate_nsid(collection)
        if rkey is not None:
            validate_record_key(rkey)
    except InvalidSyntaxError as exc:
        raise InvalidSyntaxError(f"invalid AT-URI {_show(value)}: {exc.message}") from exc
    return authority, collection, rkey


def _at_uri_rule(value: str) -> str:
    if not value.startswith("at://"):
        return "must start with 'at://'"
    rest = value[len("at://") :]
    if "?" in rest:
        return "a query part is not allowed"
    if "#" in rest:
        return "a fragment part is not allowed"
    if not rest or rest.startswith("/"):
        return "the authority must not be empty"
    if rest.endswith("/"):
        return "a trailing slash is not allowed"
    if "//" in rest:
        return "empty path segments are not allowed"
    return "the path may have at most two segments (collection and record key)"


def validate_at_uri(value: str) -> str:
    """Return ``value`` if it is a valid AT-URI (see :func:`parse_at_uri`)."""
    _at_uri_parts(value)
    return value


def normalize_at_uri(value: str) -> str:
    """Validate; a handle authority and the NSID's authority part are lower-cased."""
    uri = parse_at_uri(value)
    authority = uri.authority if uri.is_did else uri.authority.lower()
    collection = normalize_nsid(uri.collection) if uri.collection is not None else None
    return str(AtUri(authority, collection, uri.rkey))


is_valid_handle = _boolean(validate_handle)
is_valid_did = _boolean(validate_did)
is_valid_at_identifier = _boolean(validate_at_identifier)
is_valid_nsid = _boolean(validate_nsid)
is_valid_record_key = _boolean(validate_record_key)
is_valid_tid = _boolean(validate_tid)
is_valid_cid_string = _boolean(validate_cid_string)
is_valid_at_uri = _boolean(validate_at_uri)
