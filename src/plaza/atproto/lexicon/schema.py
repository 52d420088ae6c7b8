"""Lexicon schema documents: parse one and check that it is itself a valid Lexicon.

A document is ``{"lexicon": 1, "id": NSID, "defs": {name: def}}``. The checks follow
the Lexicon spec (atproto.com/specs/lexicon): primary types (record, query,
procedure, subscription, permission-set) only as ``main``; ``ref``, ``union``,
``unknown``, ``params`` and ``permission`` never as named definitions; each type's
constraint fields of the right JSON type; records whose ``record`` is an object;
subscriptions whose message schema is a union; well-formed references. Unknown
extra fields are ignored, as the spec asks for forward compatibility. Whether a
reference resolves is checked later, when a registry compiles it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from plaza.atproto.errors import InvalidSyntaxError, LexiconError
from plaza.atproto.syntax import validate_nsid, validate_record_key

PRIMARY_TYPES: Final = frozenset({"record", "query", "procedure", "subscription", "permission-set"})
NAMED_TYPES: Final = PRIMARY_TYPES | frozenset(
    {"token", "object", "array", "boolean", "integer", "string", "bytes", "cid-link", "blob"}
)
FIELD_TYPES: Final = frozenset(
    {
        "boolean",
        "integer",
        "string",
        "bytes",
        "cid-link",
        "blob",
        "array",
        "object",
        "ref",
        "union",
        "unknown",
    }
)
PARAM_TYPES: Final = frozenset({"boolean", "integer", "string", "unknown"})
STRING_FORMATS: Final = frozenset(
    {
        "at-identifier",
        "at-uri",
        "cid",
        "datetime",
        "did",
        "handle",
        "nsid",
        "tid",
        "record-key",
        "uri",
        "language",
    }
)
_DEF_NAME: Final = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
_MIME_PATTERN: Final = re.compile(r"\*/\*|[A-Za-z0-9][\w.+-]*/(?:\*|[A-Za-z0-9][\w.+-]*)")


@dataclass(frozen=True)
class LexiconDoc:
    """A checked Lexicon document. ``defs`` keeps the JSON definitions as given."""

    id: str
    defs: Mapping[str, Mapping[str, Any]]
    revision: int | None = None
    description: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def main(self) -> Mapping[str, Any] | None:
        return self.defs.get("main")


def _is_int(v: object) -> bool:
    return type(v) is int


class _Checker:
    """Walks one document; ``where`` strings name the place of each complaint."""

    def __init__(self, nsid: str) -> None:
        self.nsid = nsid

    def fail(self, where: str, msg: str) -> LexiconError:
        return LexiconError(f"lexicon {self.nsid}: {where}: {msg}")

    def obj(self, v: object, where: str) -> Mapping[str, Any]:
        if not isinstance(v, Mapping):
            raise self.fail(where, f"must be an object, got {type(v).__name__}")
        return v

    def opt(self, d: Mapping[str, Any], key: str, kind: type, where: str) -> None:
        if key not in d:
            return
        v = d[key]
        ok = type(v) is kind if kind in (int, bool) else isinstance(v, kind)
        if not ok:
            raise self.fail(f"{where}.{key}", f"must be of type {kind.__name__}")

    def nonneg(self, d: Mapping[str, Any], keys: tuple[str, ...], where: str) -> None:
        for key in keys:
            if key in d and (not _is_int(d[key]) or d[key] < 0):
                raise self.fail(f"{where}.{key}", "must be a non-negative integer")
        for lo, hi in (("minLength", "maxLength"), ("minGraphemes", "maxGraphemes")):
            if lo in keys and lo in d and hi in d and d[lo] > d[hi]:
                raise self.fail(where, f"{lo} is larger than {hi}")

    def str_list(
        self, d: Mapping[str, Any], key: str, where: str, required: bool = False
    ) -> list[str]:
        if key not in d:
            if required:
                raise self.fail(where, f"missing {key!r}")
            return []
        v = d[key]
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise self.fail(f"{where}.{key}", "must be a list of strings")
        return v

    def ref(self, ref: object, where: str) -> None:
        if not isinstance(ref, str) or not ref:
            raise self.fail(where, "a reference must be a non-empty string")
        nsid, _, name = ref.partition("#")
        if nsid:
            try:
                validate_nsid(nsid)
            except InvalidSyntaxError as exc:
                raise self.fail(where, f"bad reference {ref!r}: {exc.message}") from exc
        if "#" in ref and not _DEF_NAME.fullmatch(name):
            raise self.fail(where, f"bad definition name in reference {ref!r}")

    def check_nsid(self, value: str, where: str) -> None:
        try:
            validate_nsid(value)
        except InvalidSyntaxError as exc:
            raise self.fail(where, exc.message) from exc

    # -- field schemas --------------------------------------------------------------

    def field(self, schema: object, where: str, allowed: frozenset[str] = FIELD_TYPES) -> None:
        d = self.obj(schema, where)
        t = d.get("type")
        if not isinstance(t, str):
            raise self.fail(where, "missing 'type'")
        if t not in allowed:
            raise self.fail(where, f"type {t!r} is not allowed here")
        self.opt(d, "description", str, where)
        getattr(self, "t_" + t.replace("-", "_"))(d, where)

    def t_boolean(self, d: Mapping[str, Any], where: str) -> None:
        self.opt(d, "default", bool, where)
        self.opt(d, "const", bool, where)

    def t_integer(self, d: Mapping[str, Any], where: str) -> None:
        for key in ("minimum", "maximum", "default", "const"):
            self.opt(d, key, int, where)
        if "enum" in d and (
            not isinstance(d["enum"], list) or not all(_is_int(x) for x in d["enum"])
        ):
            raise self.fail(f"{where}.enum", "must be a list of integers")
        if "minimum" in d and "maximum" in d and d["minimum"] > d["maximum"]:
            raise self.fail(where, "minimum is larger than maximum")

    def t_string(self, d: Mapping[str, Any], where: str) -> None:
        fmt = d.get("format")
        if fmt is not None and fmt not in STRING_FORMATS:
            raise self.fail(f"{where}.format", f"unknown string format {fmt!r}")
        self.nonneg(d, ("minLength", "maxLength", "minGraphemes", "maxGraphemes"), where)
        self.str_list(d, "enum", where)
        self.str_list(d, "knownValues", where)
        self.opt(d, "default", str, where)
        self.opt(d, "const", str, where)
        if "default" in d and "const" in d:
            raise self.fail(where, "'const' and 'default' are mutually exclusive")

    def t_bytes(self, d: Mapping[str, Any], where: str) -> None:
        self.nonneg(d, ("minLength", "maxLength"), where)

    def t_cid_link(self, d: Mapping[str, Any], where: str) -> None:
        return

    def t_unknown(self, d: Mapping[str, Any], where: str) -> None:
        return

    def t_blob(self, d: Mapping[str, Any], where: str) -> None:
        for pattern in self.str_list(d, "accept", where):
            if not _MIME_PATTERN.fullmatch(pattern):
                raise self.fail(f"{where}.accept", f"bad MIME type pattern {pattern!r}")
        self.nonneg(d, ("maxSize",), where)

    def t_array(self, d: Mapping[str, Any], where: str) -> None:
        if "items" not in d:
            raise self.fail(where, "an array needs 'items'")
        self.field(d["items"], f"{where}.items")
        self.nonneg(d, ("minLength", "maxLength"), where)

    def t_object(self, d: Mapping[str, Any], where: str) -> None:
        props = self.obj(d.get("properties", {}), f"{where}.properties")
        for name, sub in props.items():
            self.field(sub, f"{where}.properties.{name}")
        for key in ("required", "nullable"):
            for name in self.str_list(d, key, where):
                if name not in props:
                    raise self.fail(f"{where}.{key}", f"{name!r} is not a property")

    def t_ref(self, d: Mapping[str, Any], where: str) -> None:
        if "ref" not in d:
            raise self.fail(where, "a ref needs 'ref'")
        self.ref(d["ref"], f"{where}.ref")

    def t_union(self, d: Mapping[str, Any], where: str) -> None:
        refs = self.str_list(d, "refs", where, required=True)
        for i, ref in enumerate(refs):
            self.ref(ref, f"{where}.refs[{i}]")
        self.opt(d, "closed", bool, where)
        if d.get("closed") is True and not refs:
            raise self.fail(where, "a closed union needs at least one ref")

    # -- primary and named definitions ----------------------------------------------

    def params(self, schema: object, where: str) -> None:
        d = self.obj(schema, where)
        if d.get("type") != "params":
            raise self.fail(where, "parameters must have type 'params'")
        props = self.obj(d.get("properties", {}), f"{where}.properties")
        for name, sub in props.items():
            sub_where = f"{where}.properties.{name}"
            sub_d = self.obj(sub, sub_where)
            if sub_d.get("type") == "array":
                self.field(sub_d, sub_where, frozenset({"array"}))
                self.field(sub_d["items"], f"{sub_where}.items", PARAM_TYPES - {"unknown"})
            else:
                self.field(sub_d, sub_where, PARAM_TYPES)
        for name in self.str_list(d, "required", where):
            if name not in props:
                raise self.fail(f"{where}.required", f"{name!r} is not a property")

    def body(self, schema: object, where: str) -> None:
        d = self.obj(schema, where)
        if not isinstance(d.get("encoding"), str):
            raise self.fail(where, "a body needs an 'encoding' string")
        if "schema" in d:
            self.field(d["schema"], f"{where}.schema", frozenset({"object", "ref", "union"}))

    def errors(self, d: Mapping[str, Any], where: str) -> None:
        if "errors" not in d:
            return
        errs = d["errors"]
        if not isinstance(errs, list):
            raise self.fail(f"{where}.errors", "must be a list")
        for i, err in enumerate(errs):
            e = self.obj(err, f"{where}.errors[{i}]")
            if not isinstance(e.get("name"), str) or not e["name"] or " " in e["name"]:
                raise self.fail(f"{where}.errors[{i}]", "needs a 'name' without whitespace")

    def definition(self, name: str, schema: object) -> None:
        where = f"defs.{name}"
        d = self.obj(schema, where)
        t = d.get("type")
        if not isinstance(t, str):
            raise self.fail(where, "missing 'type'")
        if t not in NAMED_TYPES:
            raise self.fail(where, f"type {t!r} cannot be a named definition")
        if t in PRIMARY_TYPES and name != "main":
            raise self.fail(where, f"a {t} definition must be named 'main'")
        self.opt(d, "description", str, where)
        if t == "record":
            self.record(d, where)
        elif t in ("query", "procedure"):
            if "parameters" in d:
                self.params(d["parameters"], f"{where}.parameters")
            if "output" in d:
                self.body(d["output"], f"{where}.output")
            if "input" in d:
                if t == "query":
                    raise self.fail(where, "a query cannot have 'input'")
                self.body(d["input"], f"{where}.input")
            self.errors(d, where)
        elif t == "subscription":
            if "parameters" in d:
                self.params(d["parameters"], f"{where}.parameters")
            msg = self.obj(d.get("message"), f"{where}.message")
            if "schema" not in msg:
                raise self.fail(f"{where}.message", "needs a 'schema'")
            self.field(msg["schema"], f"{where}.message.schema", frozenset({"union"}))
            self.errors(d, where)
        elif t == "permission-set":
            self.permission_set(d, where)
        elif t != "token":
            self.field(d, where)

    def record(self, d: Mapping[str, Any], where: str) -> None:
        key = d.get("key")
        if not isinstance(key, str):
            raise self.fail(where, "a record needs a 'key' string")
        if key.startswith("literal:"):
            try:
                validate_record_key(key[len("literal:") :])
            except InvalidSyntaxError as exc:
                raise self.fail(f"{where}.key", exc.message) from exc
        elif key not in ("tid", "nsid", "any"):
            raise self.fail(f"{where}.key", f"unknown record key type {key!r}")
        rec = self.obj(d.get("record"), f"{where}.record")
        if rec.get("type") != "object":
            raise self.fail(f"{where}.record", "must be a schema of type 'object'")
        self.field(rec, f"{where}.record", frozenset({"object"}))

    def permission_set(self, d: Mapping[str, Any], where: str) -> None:
        self.opt(d, "title", str, where)
        self.opt(d, "detail", str, where)
        perms = d.get("permissions")
        if not isinstance(perms, list):
            raise self.fail(where, "a permission-set needs a 'permissions' list")
        for i, perm in enumerate(perms):
            pw = f"{where}.permissions[{i}]"
            p = self.obj(perm, pw)
            if p.get("type") != "permission" or not isinstance(p.get("resource"), str):
                raise self.fail(pw, "needs type 'permission' and a 'resource' string")
            if p["resource"] == "repo":
                cols = self.str_list(p, "collection", pw, required=True)
                actions = self.str_list(p, "action", pw)
                if not cols or len(set(cols)) != len(cols):
                    raise self.fail(pw, "'collection' must be a non-empty list of unique NSIDs")
                for c in cols:
                    self.check_nsid(c, f"{pw}.collection")
                if len(set(actions)) != len(actions) or not set(actions) <= {
                    "create",
                    "update",
                    "delete",
                }:
                    raise self.fail(pw, "'action' must be unique values of create/update/delete")
            elif p["resource"] == "rpc":
                lxm = self.str_list(p, "lxm", pw, required=True)
                if not lxm:
                    raise self.fail(pw, "'lxm' must not be empty")
                for m in lxm:
                    if m != "*":
                        self.check_nsid(m, f"{pw}.lxm")
                aud = p.get("aud")
                if aud is None and p.get("inheritAud") is not True:
                    raise self.fail(pw, "needs 'aud' unless 'inheritAud' is true")
                if aud is not None and not isinstance(aud, str):
                    raise self.fail(pw, "'aud' must be a string")
                if aud == "*" and "*" in lxm:
                    raise self.fail(pw, "'aud' and 'lxm' cannot both be the wildcard '*'")


def parse_lexicon(doc: object) -> LexiconDoc:
    """Check a Lexicon document (parsed JSON) and return it as a :class:`LexiconDoc`.

    Raises :class:`~plaza.atproto.errors.LexiconError` naming the first problem.
    """
    if not isinstance(doc, Mapping):
        raise LexiconError(f"a Lexicon document must be an object, got {type(doc).__name__}")
    nsid = doc.get("id")
    if not isinstance(nsid, str):
        raise LexiconError("a Lexicon document needs an 'id' string (its NSID)")
    try:
        validate_nsid(nsid)
    except InvalidSyntaxError as exc:
        raise LexiconError(f"Lexicon id is not an NSID: {exc.message}") from exc
    check = _Checker(nsid)
    version = doc.get("lexicon")
    if not _is_int(version) or version != 1:
        raise check.fail("lexicon", f"the language version must be the integer 1, not {version!r}")
    check.opt(doc, "description", str, "document")
    revision = doc.get("revision")
    if revision is not None and (not _is_int(revision) or revision < 0):
        raise check.fail("revision", "must be a non-negative integer")
    defs = check.obj(doc.get("defs"), "defs")
    if not defs:
        raise check.fail("defs", "a Lexicon needs at least one definition")
    for name, schema in defs.items():
        if not isinstance(name, str) or not _DEF_NAME.fullmatch(name):
            raise check.fail("defs", f"bad definition name {name!r}")
        check.definition(name, schema)
    return LexiconDoc(
        id=nsid,
        defs=defs,
        revision=revision,
        description=doc.get("description"),
        raw=doc,
    )
