"""did:plc operations: the three shapes, strict parsing, signing, CIDs and DID derivation.

An operation is one of three JSON shapes, told apart by ``type``:

- ``plc_operation``: the full identity state (``rotationKeys`` in priority order,
  ``verificationMethods``, ``alsoKnownAs``, ``services``) plus ``prev``, the CID string
  of the operation it builds on (``null`` for a genesis);
- ``plc_tombstone``: ``prev`` only; it deactivates the DID;
- ``create``: the legacy genesis shape (``signingKey``, ``recoveryKey``, ``handle``,
  ``service``). No longer accepted for new DIDs, but thousands of DIDs are the hash of
  one, so it must still verify.

``sig`` is base64url, without padding, of the raw 64-byte low-S ECDSA-SHA256 signature
over the DAG-CBOR encoding of the operation *without* its ``sig`` key. The operation's
CID hashes the DAG-CBOR of the signed operation; a DID is ``did:plc:`` followed by the
first 24 characters of the lower-case base32 SHA-256 of the signed genesis operation.

Parsing is strict: exact key sets, exact types, a canonical base64url ``sig``, and at most
:data:`MAX_OPERATION_BYTES` of DAG-CBOR. A signature whose encoding could be altered
without breaking it would change the operation's CID, so encodings are checked before
signatures are.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, ClassVar, Final, Literal, TypeVar

from plaza.atproto import cbor
from plaza.atproto.cid import CID, DAG_CBOR
from plaza.atproto.crypto import PrivateKey, parse_did_key
from plaza.atproto.errors import CryptoError, EncodeError, InvalidCidError, PlcError
from plaza.atproto.plc.errors import PlcSignatureError, PlcTooLargeError

MAX_OPERATION_BYTES: Final = 7500
ATPROTO_PDS: Final = "atproto_pds"
ATPROTO_PDS_TYPE: Final = "AtprotoPersonalDataServer"
ATPROTO_KEY: Final = "atproto"
DID_PLC_PREFIX: Final = "did:plc:"

_DID_PLC = re.compile(r"did:plc:[a-z2-7]{24}")
_B64URL = re.compile(r"[A-Za-z0-9_-]*")


def is_did_plc(value: object) -> bool:
    """True when ``value`` is a syntactically valid ``did:plc`` identifier."""
    return isinstance(value, str) and _DID_PLC.fullmatch(value) is not None


# -- values -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Service:
    """One entry of ``services``: a typed endpoint, such as the account's PDS."""

    type: str
    endpoint: str

    def to_json(self) -> dict[str, str]:
        return {"type": self.type, "endpoint": self.endpoint}


def _freeze(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True)
class PlcOperation:
    """A ``plc_operation``: the DID's whole state after this operation, plus ``prev``.

    ``prev`` is ``None`` for a genesis operation. ``sig`` is ``None`` until signed.
    """

    type: ClassVar[Literal["plc_operation"]] = "plc_operation"

    rotation_keys: tuple[str, ...]
    verification_methods: Mapping[str, str]
    also_known_as: tuple[str, ...]
    services: Mapping[str, Service]
    prev: str | None
    sig: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "rotation_keys", tuple(self.rotation_keys))
        object.__setattr__(self, "also_known_as", tuple(self.also_known_as))
        object.__setattr__(self, "verification_methods", _freeze(self.verification_methods))
        object.__setattr__(self, "services", _freeze(self.services))

    @property
    def is_genesis(self) -> bool:
        return self.prev is None

    def to_json(self, *, signed: bool = True) -> dict[str, Any]:
        """The JSON form (also the data-model value that is DAG-CBOR encoded)."""
        out: dict[str, Any] = {
            "type": self.type,
            "rotationKeys": list(self.rotation_keys),
            "verificationMethods": dict(self.verification_methods),
            "alsoKnownAs": list(self.also_known_as),
            "services": {k: v.to_json() for k, v in self.services.items()},
            "prev": self.prev,
        }
        return _with_sig(out, self.sig, signed)


@dataclass(frozen=True)
class PlcTombstone:
    """A ``plc_tombstone``: deactivates the DID (recoverable for 72 hours)."""

    type: ClassVar[Literal["plc_tombstone"]] = "plc_tombstone"

    prev: str
    sig: str | None = None

    @property
    def is_genesis(self) -> bool:
        return False

    def to_json(self, *, signed: bool = True) -> dict[str, Any]:
        return _with_sig({"type": self.type, "prev": self.prev}, self.sig, signed)


@dataclass(frozen=True)
class LegacyCreate:
    """The deprecated genesis shape ``create``; verifiable, never accepted anew."""

    type: ClassVar[Literal["create"]] = "create"

    signing_key: str
    recovery_key: str
    handle: str
    service: str
    sig: str | None = None
    prev: None = field(default=None, init=False)

    @property
    def is_genesis(self) -> bool:
        return True

    def to_json(self, *, signed: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": self.type,
            "signingKey": self.signing_key,
            "recoveryKey": self.recovery_key,
            "handle": self.handle,
            "service": self.service,
            "prev": None,
        }
        return _with_sig(out, self.sig, signed)


Operation = PlcOperation | PlcTombstone | LegacyCreate
OpT = TypeVar("OpT", PlcOperation, PlcTombstone, LegacyCreate)


def _with_sig(out: dict[str, Any], sig: str | None, signed: bool) -> dict[str, Any]:
    if signed:
        if sig is None:
            raise PlcError("the operation is not signed")
        out["sig"] = sig
    return out


# -- parsing ------------------------------------------------------------------------------

_REGULAR_KEYS: Final = frozenset(
    {"type", "rotationKeys", "verificationMethods", "alsoKnownAs", "services", "prev"}
)
_TOMBSTONE_KEYS: Final = frozenset({"type", "prev"})
_LEGACY_KEYS: Final = frozenset({"type", "signingKey", "recoveryKey", "handle", "service", "prev"})
_SERVICE_KEYS: Final = frozenset({"type", "endpoint"})


def parse_operation(value: Any, *, signed: bool = True) -> Operation:
    """Validate a JSON value as a PLC operation and return it as a typed value.

    With ``signed=True`` (the default) ``sig`` must be present and be canonical
    base64url of 64 bytes; with ``signed=False`` it must be absent. Raises
    :class:`~plaza.atproto.errors.PlcError` naming the first field that is wrong, or
    :class:`PlcTooLargeError` above :data:`MAX_OPERATION_BYTES`.
    """
    if not isinstance(value, dict):
        raise PlcError(f"a PLC operation must be a JSON object, not {type(value).__name__}")
    typ = value.get("type")
    op: Operation
    if typ == PlcOperation.type:
        _expect_keys(value, _REGULAR_KEYS, signed, "plc_operation")
        op = PlcOperation(
            rotation_keys=tuple(_str_list(value["rotationKeys"], "rotationKeys")),
            verification_methods=_str_map(value["verificationMethods"]),
            also_known_as=tuple(_str_list(value["alsoKnownAs"], "alsoKnownAs")),
            services=_services(value["services"]),
            prev=None if value["prev"] is None else _cid_str(value["prev"]),
            sig=_sig_field(value, signed),
        )
    elif typ == PlcTombstone.type:
        _expect_keys(value, _TOMBSTONE_KEYS, signed, "plc_tombstone")
        op = PlcTombstone(prev=_cid_str(value["prev"]), sig=_sig_field(value, signed))
    elif typ == LegacyCreate.type:
        _expect_keys(value, _LEGACY_KEYS, signed, "create")
        if value["prev"] is not None:
            raise PlcError("a legacy create operation must have prev: null")
        op = LegacyCreate(
            signing_key=_str(value["signingKey"], "signingKey"),
            recovery_key=_str(value["recoveryKey"], "recoveryKey"),
            handle=_str(value["handle"], "handle"),
            service=_str(value["service"], "service"),
            sig=_sig_field(value, signed),
        )
    else:
        raise PlcError(f"unknown PLC operation type {typ!r}")
    if signed:
        check_size(op)
    return op


def _expect_keys(value: dict[str, Any], required: frozenset[str], signed: bool, what: str) -> None:
    allowed = required | {"sig"} if signed else required
    missing = sorted(allowed - value.keys())
    if missing:
        raise PlcError(f"{what} is missing {', '.join(missing)}")
    extra = sorted(str(k) for k in value.keys() - allowed)
    if extra:
        raise PlcError(f"{what} has unexpected fields: {', '.join(extra)}")


def _str(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise PlcError(f"{name} must be a string, not {type(value).__name__}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise PlcError(f"{name} is not valid Unicode (a lone surrogate)") from exc
    return value


def _str_list(value: Any, name: str) -> list[str]:
    if not isinstance(value, list):
        raise PlcError(f"{name} must be an array of strings")
    return [_str(v, f"{name}[{i}]") for i, v in enumerate(value)]


def _str_map(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise PlcError("verificationMethods must be an object of strings")
    return {
        _str(k, "a verificationMethods id"): _str(v, f"verificationMethods.{k}")
        for k, v in value.items()
    }


def _services(value: Any) -> dict[str, Service]:
    if not isinstance(value, dict):
        raise PlcError("services must be an object")
    out = {}
    for name, svc in value.items():
        _str(name, "a services id")
        if not isinstance(svc, dict) or svc.keys() != _SERVICE_KEYS:
            raise PlcError(f"services.{name} must be exactly {{type, endpoint}}")
        out[name] = Service(
            type=_str(svc["type"], f"services.{name}.type"),
            endpoint=_str(svc["endpoint"], f"services.{name}.endpoint"),
        )
    return out


def _cid_str(value: Any) -> str:
    text = _str(value, "prev")
    try:
        cid = CID.decode(text)
    except InvalidCidError as exc:
        raise PlcError(f"prev is not a CID string: {exc.message}") from exc
    if cid.codec != DAG_CBOR:
        raise PlcError("prev must be the CID of a dag-cbor operation")
    return text


def _sig_field(value: dict[str, Any], signed: bool) -> str | None:
    if not signed:
        return None
    sig = _str(value["sig"], "sig")
    decode_sig(sig)
    return sig


def check_size(op: Operation) -> None:
    """Raise :class:`PlcTooLargeError` when the signed op exceeds the size limit."""
    size = len(_encode(op, signed=op.sig is not None))
    if size > MAX_OPERATION_BYTES:
        raise PlcTooLargeError(
            f"operation is {size} bytes of DAG-CBOR; the limit is {MAX_OPERATION_BYTES}"
        )


# -- signatures, CIDs, DIDs ---------------------------------------------------------------


def encode_sig(signature: bytes) -> str:
    """base64url without padding, as ``sig`` carries it."""
    return base64.urlsafe_b64encode(signature).decode("ascii").rstrip("=")


def decode_sig(sig: str) -> bytes:
    """Strictly decode ``sig``: base64url alphabet only (no padding, no whitespace), zero
    padding bits, 64 bytes. Raises :class:`PlcSignatureError` saying what was wrong."""
    if _B64URL.fullmatch(sig) is None:
        bad = next(c for c in sig if not (c.isascii() and (c.isalnum() or c in "-_")))
        raise PlcSignatureError(f"sig has a character outside unpadded base64url: {bad!r}")
    if len(sig) % 4 == 1:
        raise PlcSignatureError("sig has an impossible base64url length")
    raw = base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4))
    if encode_sig(raw) != sig:
        raise PlcSignatureError("sig has non-zero base64url padding bits")
    if len(raw) != 64:
        raise PlcSignatureError(f"sig must be a raw 64-byte r||s signature, got {len(raw)} bytes")
    return raw


def _encode(op: Operation, *, signed: bool) -> bytes:
    try:
        return cbor.encode(op.to_json(signed=signed))
    except (EncodeError, UnicodeEncodeError) as exc:
        raise PlcError(f"the operation cannot be encoded as DAG-CBOR: {exc}") from exc


def unsigned_bytes(op: Operation) -> bytes:
    """The bytes a signature covers: DAG-CBOR of the operation without ``sig``."""
    return _encode(op, signed=False)


def signed_bytes(op: Operation) -> bytes:
    """DAG-CBOR of the signed operation (what its CID and a genesis DID hash)."""
    return _encode(op, signed=True)


def sign_operation(op: OpT, key: PrivateKey) -> OpT:
    """Return ``op`` with ``sig`` set to ``key``'s signature over its unsigned bytes."""
    signed = replace(op, sig=encode_sig(key.sign(unsigned_bytes(op))))
    check_size(signed)
    return signed


def verify_operation_signature(op: Operation, rotation_keys: Sequence[str]) -> int:
    """Index in ``rotation_keys`` of the first key whose signature ``op`` carries.

    Keys are tried in priority order, so with duplicates the lowest index wins. Raises
    :class:`PlcSignatureError` for a badly encoded ``sig``, a high-S or non-raw
    signature, or when no key verifies it; :class:`PlcError` for a key that is not a
    valid did:key.
    """
    if op.sig is None:
        raise PlcSignatureError("the operation is not signed")
    signature = decode_sig(op.sig)
    if not rotation_keys:
        raise PlcSignatureError("there are no rotation keys that could sign this operation")
    data = unsigned_bytes(op)
    for index, did_key in enumerate(rotation_keys):
        try:
            key = parse_did_key(did_key)
        except CryptoError as exc:
            raise PlcError(f"rotation key {index} is not a usable did:key: {exc.message}") from exc
        if key.verify(data, signature):
            return index
    raise PlcSignatureError(
        f"sig does not verify against any of the {len(rotation_keys)} allowed rotation keys"
    )


def operation_cid(op: Operation) -> CID:
    """The CID of the signed operation, which a following operation names as ``prev``."""
    return CID.compute(signed_bytes(op))


def did_for_genesis(op: Operation) -> str:
    """``did:plc:`` + the first 24 base32 characters of SHA-256 of the signed genesis."""
    if not op.is_genesis:
        raise PlcError("only a genesis operation (prev: null) defines a DID")
    digest = hashlib.sha256(signed_bytes(op)).digest()
    return DID_PLC_PREFIX + base64.b32encode(digest).decode("ascii").lower()[:24]


# -- rotation authority and normal form ---------------------------------------------------


def authority_keys(op: Operation) -> tuple[str, ...]:
    """The rotation keys, in priority order, allowed to sign the operation after ``op``.

    A legacy ``create`` grants its recovery key first, then its signing key; a
    tombstone grants nothing.
    """
    if isinstance(op, PlcOperation):
        return op.rotation_keys
    if isinstance(op, LegacyCreate):
        return (op.recovery_key, op.signing_key)
    return ()


def at_uri(handle: str) -> str:
    """``at://handle``; a value that already is an at:// URI is kept."""
    if handle.startswith("at://"):
        return handle
    return "at://" + handle.removeprefix("https://").removeprefix("http://")


def http_url(endpoint: str) -> str:
    """An http(s) URL; a bare host gets ``https://`` as the reference does."""
    if endpoint.startswith(("http://", "https://")):
        return endpoint
    return "https://" + endpoint


def normalize(op: PlcOperation | LegacyCreate) -> PlcOperation:
    """The regular-operation view of a state-bearing op (legacy ``create`` converted)."""
    if isinstance(op, PlcOperation):
        return op
    return PlcOperation(
        rotation_keys=(op.recovery_key, op.signing_key),
        verification_methods={ATPROTO_KEY: op.signing_key},
        also_known_as=(at_uri(op.handle),),
        services={ATPROTO_PDS: Service(ATPROTO_PDS_TYPE, http_url(op.service))},
        prev=None,
        sig=op.sig,
    )
