"""Compile Lexicon definitions into validator callables.

Theory of operation. Validation runs on every PDS write, so each definition is turned
once into a closure specialised to its constraints (a string with only ``maxLength``
gets a closure that checks only that) and cached by its key ``nsid#name``. A
validator takes a data-model value (``dict``, ``list``, ``str``, ``int``, ``bool``,
``None``, ``bytes``, :class:`~plaza.atproto.cid.CID`) and returns nothing, or raises
:class:`Invalid`. On success nothing about the path is computed; on failure each
enclosing object or array appends its key while the exception unwinds, so the
caller can report ``record/embed/images/0/alt: …``.

References are compiled lazily through the cache. A definition that refers to
itself, directly or through others, first finds a forwarding stub in the cache and
calls through it; the stub is filled when the outer compilation finishes.

Length rules follow the spec: ``maxLength``/``minLength`` of strings count UTF-8
bytes, ``maxGraphemes``/``minGraphemes`` count extended grapheme clusters (UAX #29,
via the ``regex`` module's ``\\X``). Both are skipped when the code-point count
already settles them (bytes >= code points >= graphemes).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

import regex

from plaza.atproto import datamodel
from plaza.atproto.cid import CID
from plaza.atproto.errors import DecodeError, InvalidSyntaxError, LexiconError
from plaza.atproto.syntax import (
    validate_at_identifier,
    validate_at_uri,
    validate_cid_string,
    validate_datetime,
    validate_did,
    validate_handle,
    validate_language,
    validate_nsid,
    validate_record_key,
    validate_tid,
    validate_uri,
)

Check = Callable[[Any], None]
Lookup = Callable[[str], Mapping[str, Any] | None]

_GRAPHEME: Final = regex.compile(r"\X")
_FORMATS: Final[dict[str, Callable[[str], str]]] = {
    "at-identifier": validate_at_identifier,
    "at-uri": validate_at_uri,
    "cid": validate_cid_string,
    "datetime": validate_datetime,
    "did": validate_did,
    "handle": validate_handle,
    "language": validate_language,
    "nsid": validate_nsid,
    "record-key": validate_record_key,
    "tid": validate_tid,
    "uri": validate_uri,
}


class Invalid(Exception):
    """A value failed validation; ``path`` is filled innermost-first while unwinding."""

    __slots__ = ("msg", "path")

    def __init__(self, msg: str) -> None:
        super().__init__(msg)
        self.msg = msg
        self.path: list[str] = []

    def render(self, root: str) -> str:
        """``root/outer/inner: message``."""
        return "/".join([root, *reversed(self.path)]) + ": " + self.msg


def count_graphemes(text: str) -> int:
    """The number of extended grapheme clusters (user-perceived characters) in ``text``."""
    if text.isascii():
        return len(text) - text.count("\r\n")  # CR LF is the one ASCII cluster of two
    return len(_GRAPHEME.findall(text))


def _kind(value: object) -> str:
    if value is None:
        return "null"
    t = type(value)
    if t is dict:
        return "blob" if value.get("$type") == "blob" else "object"  # type: ignore[attr-defined]
    return {
        bool: "boolean",
        int: "integer",
        str: "string",
        bytes: "bytes",
        list: "array",
        CID: "cid-link",
    }.get(t, t.__name__)


def resolve_ref(ref: str, nsid: str) -> str:
    """The cache key ``nsid#name`` of a reference written inside Lexicon ``nsid``."""
    if ref.startswith("#"):
        return nsid + ref
    return ref if "#" in ref else ref + "#main"


def type_name(key: str) -> str:
    """The ``$type`` spelling of a key: ``nsid`` for main definitions, else ``nsid#name``."""
    return key[:-5] if key.endswith("#main") else key


class Compiler:
    """Builds and caches validators for the definitions that ``lookup`` finds by key."""

    def __init__(self, lookup: Lookup) -> None:
        self._lookup = lookup
        self._cache: dict[str, Check] = {}

    def clear(self) -> None:
        self._cache.clear()

    def definition(self, key: str) -> Check:
        """The validator of definition ``key`` (``nsid#name``); records check their object."""
        fn = self._cache.get(key)
        if fn is not None:
            return fn
        schema = self._lookup(key)
        if schema is None:
            raise LexiconError(f"unresolved Lexicon reference {type_name(key)!r}")
        cell: list[Check] = []

        def forward(value: Any) -> None:
            cell[0](value)

        self._cache[key] = forward
        try:
            real = self._definition(key, schema)
        except BaseException:
            del self._cache[key]
            raise
        cell.append(real)
        self._cache[key] = real
        return real

    def _definition(self, key: str, schema: Mapping[str, Any]) -> Check:
        t = schema.get("type")
        nsid = key.partition("#")[0]
        if t == "record":
            return self.field(schema["record"], nsid)
        if t in ("token", "query", "procedure", "subscription", "permission-set"):
            raise LexiconError(f"{type_name(key)!r} is a {t} and cannot be used as a value")
        return self.field(schema, nsid)

    def target_type(self, key: str) -> str:
        schema = self._lookup(key)
        if schema is None:
            raise LexiconError(f"unresolved Lexicon reference {type_name(key)!r}")
        return str(schema.get("type"))

    # -- field schemas --------------------------------------------------------------

    def field(self, schema: Mapping[str, Any], nsid: str) -> Check:
        t = schema.get("type")
        build = getattr(self, "_f_" + str(t).replace("-", "_"), None)
        if build is None:
            raise LexiconError(f"{nsid}: type {t!r} cannot describe a value")
        fn: Check = build(schema, nsid)
        return fn

    def _f_boolean(self, schema: Mapping[str, Any], nsid: str) -> Check:
        const = schema.get("const")

        def check(v: Any) -> None:
            if type(v) is not bool:
                raise Invalid(f"expected a boolean, got {_kind(v)}")
            if const is not None and v is not const:
                raise Invalid(f"must be {str(const).lower()}")

        return check

    def _f_integer(self, schema: Mapping[str, Any], nsid: str) -> Check:
        const = schema.get("const")
        enum = frozenset(schema["enum"]) if "enum" in schema else None
        lo = schema.get("minimum")
        hi = schema.get("maximum")

        def check(v: Any) -> None:
            if type(v) is not int:
                raise Invalid(f"expected an integer, got {_kind(v)}")
            if const is not None and v != const:
                raise Invalid(f"must be {const} (const), got {v}")
            if enum is not None and v not in enum:
                raise Invalid(f"{v} is not one of {sorted(enum)}")
            if lo is not None and v < lo:
                raise Invalid(f"integer too small ({v} < {lo})")
            if hi is not None and v > hi:
                raise Invalid(f"integer too large ({v} > {hi})")

        return check

    def _f_string(self, schema: Mapping[str, Any], nsid: str) -> Check:
        fmt_name = schema.get("format")
        fmt = _FORMATS[fmt_name] if fmt_name is not None else None
        const = schema.get("const")
        enum = frozenset(schema["enum"]) if "enum" in schema else None
        min_b = schema.get("minLength")
        max_b = schema.get("maxLength")
        min_g = schema.get("minGraphemes")
        max_g = schema.get("maxGraphemes")
        plain = fmt is None and const is None and enum is None
        if plain and min_b is None and max_b is None and min_g is None and max_g is None:

            def check_type(v: Any) -> None:
                if type(v) is not str:
                    raise Invalid(f"expected a string, got {_kind(v)}")

            return check_type

        def check(v: Any) -> None:
            if type(v) is not str:
                raise Invalid(f"expected a string, got {_kind(v)}")
            n = len(v)
            if max_b is not None and n * 4 > max_b:
                size = n if v.isascii() else len(v.encode("utf-8"))
                if size > max_b:
                    raise Invalid(f"string too long ({size} > {max_b} bytes)")
            if min_b is not None and n < min_b:
                size = len(v.encode("utf-8"))
                if size < min_b:
                    raise Invalid(f"string too short ({size} < {min_b} bytes)")
            if max_g is not None and n > max_g:
                g = count_graphemes(v)
                if g > max_g:
                    raise Invalid(f"string too long ({g} > {max_g} graphemes)")
            if min_g is not None:
                g = count_graphemes(v)
                if g < min_g:
                    raise Invalid(f"string too short ({g} < {min_g} graphemes)")
            if const is not None and v != const:
                raise Invalid(f"must be {const!r} (const)")
            if enum is not None and v not in enum:
                raise Invalid(f"{v!r} is not one of {sorted(enum)}")
            if fmt is not None:
                try:
                    fmt(v)
                except InvalidSyntaxError as exc:
                    raise Invalid(exc.message) from None

        return check

    def _f_bytes(self, schema: Mapping[str, Any], nsid: str) -> Check:
        lo = schema.get("minLength")
        hi = schema.get("maxLength")

        def check(v: Any) -> None:
            if type(v) is not bytes:
                raise Invalid(f"expected bytes, got {_kind(v)}")
            if lo is not None and len(v) < lo:
                raise Invalid(f"bytes too short ({len(v)} < {lo})")
            if hi is not None and len(v) > hi:
                raise Invalid(f"bytes too long ({len(v)} > {hi})")

        return check

    def _f_cid_link(self, schema: Mapping[str, Any], nsid: str) -> Check:
        def check(v: Any) -> None:
            if type(v) is not CID:
                raise Invalid(f"expected a CID link, got {_kind(v)}")

        return check

    def _f_blob(self, schema: Mapping[str, Any], nsid: str) -> Check:
        accept: list[str] = schema.get("accept") or []
        any_type = not accept or "*/*" in accept
        exact = frozenset(a for a in accept if not a.endswith("/*"))
        prefixes = tuple(a[:-1] for a in accept if a.endswith("/*") and a != "*/*")
        max_size = schema.get("maxSize")

        def check(v: Any) -> None:
            if type(v) is not dict or v.get("$type") != "blob":
                raise Invalid(f"expected a blob, got {_kind(v)}")
            if type(v.get("ref")) is not CID:
                raise Invalid("blob 'ref' must be a CID link")
            mime = v.get("mimeType")
            if type(mime) is not str or not mime:
                raise Invalid("blob 'mimeType' must be a non-empty string")
            size = v.get("size")
            if type(size) is not int or size < 0:
                raise Invalid("blob 'size' must be a non-negative integer")
            if max_size is not None and size > max_size:
                raise Invalid(f"blob too large ({size} > {max_size} bytes)")
            if not any_type and mime not in exact and not mime.startswith(prefixes):
                raise Invalid(f"blob MIME type {mime!r} is not accepted ({', '.join(accept)})")

        return check

    def _f_array(self, schema: Mapping[str, Any], nsid: str) -> Check:
        item = self.field(schema["items"], nsid)
        lo = schema.get("minLength")
        hi = schema.get("maxLength")

        def check(v: Any) -> None:
            if type(v) is not list:
                raise Invalid(f"expected an array, got {_kind(v)}")
            if lo is not None and len(v) < lo:
                raise Invalid(f"array too short ({len(v)} < {lo} items)")
            if hi is not None and len(v) > hi:
                raise Invalid(f"array too long ({len(v)} > {hi} items)")
            for i, x in enumerate(v):
                try:
                    item(x)
                except Invalid as exc:
                    exc.path.append(str(i))
                    raise

        return check

    def _f_object(self, schema: Mapping[str, Any], nsid: str) -> Check:
        return self.object(schema, nsid)

    def object(self, schema: Mapping[str, Any], nsid: str, *, params: bool = False) -> Check:
        """An object (or, with ``params``, an XRPC parameter set) validator."""
        props: dict[str, Check] = {
            name: self.field(sub, nsid) for name, sub in schema.get("properties", {}).items()
        }
        required = tuple(schema.get("required", ()))
        nullable = frozenset(schema.get("nullable", ()))
        what = "parameters" if params else "an object"

        def check(v: Any) -> None:
            if type(v) is not dict:
                raise Invalid(f"expected {what}, got {_kind(v)}")
            for name in required:
                if name not in v:
                    raise Invalid(f"missing required field {name!r}")
            for name, x in v.items():
                fn = props.get(name)
                if fn is None:
                    continue  # unexpected fields are allowed (schema evolution)
                if x is None:
                    if name in nullable:
                        continue
                    err = Invalid("must not be null")
                    err.path.append(name)
                    raise err
                try:
                    fn(x)
                except Invalid as exc:
                    exc.path.append(name)
                    raise

        return check

    def _f_ref(self, schema: Mapping[str, Any], nsid: str) -> Check:
        key = resolve_ref(schema["ref"], nsid)
        target = self.target_type(key)
        if target == "token":
            raise LexiconError(f"{nsid}: a ref cannot point to the token {type_name(key)!r}")
        return self.definition(key)

    def _f_union(self, schema: Mapping[str, Any], nsid: str) -> Check:
        variants: dict[str, Check] = {}
        for ref in schema["refs"]:
            key = resolve_ref(ref, nsid)
            target = self.target_type(key)
            if target not in ("object", "record"):
                raise LexiconError(
                    f"{nsid}: union member {type_name(key)!r} is a {target}, not an object"
                )
            variants[type_name(key)] = self.definition(key)
        closed = bool(schema.get("closed"))
        names = sorted(variants)

        def check(v: Any) -> None:
            if type(v) is not dict:
                raise Invalid(f"expected an object with $type (union), got {_kind(v)}")
            t = v.get("$type")
            if type(t) is not str or not t:
                raise Invalid("a union member needs a '$type' string")
            fn = variants.get(t)
            if fn is not None:
                fn(v)
            elif t.endswith("#main"):
                raise Invalid(f"$type {t!r} must not end in '#main'")
            elif closed:
                raise Invalid(f"$type {t!r} is not one of the closed union {names}")

        return check

    def _f_unknown(self, schema: Mapping[str, Any], nsid: str) -> Check:
        def check(v: Any) -> None:
            if type(v) is not dict:
                raise Invalid(f"expected an object (unknown), got {_kind(v)}")
            if v.get("$type") == "blob":
                raise Invalid("an unknown field must not hold a blob")
            try:
                datamodel.validate(v)
            except DecodeError as exc:
                raise Invalid(exc.message) from None

        return check
