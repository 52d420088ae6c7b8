"""What a directory accepts as a *new* operation, beyond what a valid history may hold.

Audit logs already in the world contain operations that the spec now forbids (an empty
or duplicated ``rotationKeys``, legacy ``create`` genesis operations), and a verifier
must accept them. A directory must not accept more of them. These rules follow the
did:plc spec (1 to 5 distinct rotation keys, P-256 or secp256k1 only; at most 10
verification methods, each a syntactically valid did:key) and the limits of the
reference directory on the other fields.
"""

from __future__ import annotations

from typing import Final

from plaza.atproto.crypto import DID_KEY_PREFIX, b58decode, parse_did_key
from plaza.atproto.errors import CryptoError, PlcError
from plaza.atproto.plc.operations import LegacyCreate, Operation, PlcOperation, check_size

MAX_ROTATION_KEYS: Final = 5
MAX_VERIFICATION_METHODS: Final = 10
MAX_ALSO_KNOWN_AS: Final = 10
MAX_AKA_LENGTH: Final = 258  # a 253-character handle plus "at://"
MAX_SERVICES: Final = 10
MAX_ID_LENGTH: Final = 32
MAX_SERVICE_TYPE_LENGTH: Final = 256
MAX_ENDPOINT_LENGTH: Final = 512
MAX_DID_KEY_LENGTH: Final = 256


def check_new_operation(op: Operation) -> None:
    """Raise :class:`PlcError` when a directory must refuse ``op`` as a new submission.

    This checks the operation alone; whether it fits the DID's history is
    :func:`plaza.atproto.plc.apply_operation`'s job.
    """
    check_size(op)
    if isinstance(op, LegacyCreate):
        raise PlcError("legacy 'create' operations are no longer accepted; use plc_operation")
    if not isinstance(op, PlcOperation):
        return
    keys = op.rotation_keys
    if not 1 <= len(keys) <= MAX_ROTATION_KEYS:
        raise PlcError(f"rotationKeys must hold 1 to {MAX_ROTATION_KEYS} keys, not {len(keys)}")
    if len(set(keys)) != len(keys):
        raise PlcError("rotationKeys must not repeat a key")
    for i, key in enumerate(keys):
        try:
            parse_did_key(key)
        except CryptoError as exc:
            raise PlcError(
                f"rotationKeys[{i}] must be a P-256 or secp256k1 did:key: {exc.message}"
            ) from exc
    methods = op.verification_methods
    if len(methods) > MAX_VERIFICATION_METHODS:
        raise PlcError(f"at most {MAX_VERIFICATION_METHODS} verificationMethods are allowed")
    for name, key in methods.items():
        _check_id(name, "verificationMethods")
        _check_did_key_syntax(name, key)
    aka = op.also_known_as
    if len(aka) > MAX_ALSO_KNOWN_AS:
        raise PlcError(f"at most {MAX_ALSO_KNOWN_AS} alsoKnownAs entries are allowed")
    if len(set(aka)) != len(aka):
        raise PlcError("alsoKnownAs must not repeat an entry")
    for entry in aka:
        if not entry or len(entry) > MAX_AKA_LENGTH:
            raise PlcError(f"alsoKnownAs entries must be 1 to {MAX_AKA_LENGTH} characters")
    if len(op.services) > MAX_SERVICES:
        raise PlcError(f"at most {MAX_SERVICES} services are allowed")
    for name, svc in op.services.items():
        _check_id(name, "services")
        if not svc.type or len(svc.type) > MAX_SERVICE_TYPE_LENGTH:
            raise PlcError(
                f"services.{name}.type must be 1 to {MAX_SERVICE_TYPE_LENGTH} characters"
            )
        if not svc.endpoint or len(svc.endpoint) > MAX_ENDPOINT_LENGTH:
            raise PlcError(
                f"services.{name}.endpoint must be 1 to {MAX_ENDPOINT_LENGTH} characters"
            )


def _check_id(name: str, field: str) -> None:
    if not name or len(name) > MAX_ID_LENGTH or name.startswith("#"):
        raise PlcError(
            f"{field} ids must be 1 to {MAX_ID_LENGTH} characters without a leading '#': {name!r}"
        )


def _check_did_key_syntax(name: str, key: str) -> None:
    # Any key type is allowed here (the spec leaves signing keys open), but it must be
    # a did:key with a base58btc multibase body.
    body = key.removeprefix(DID_KEY_PREFIX)
    ok = key.startswith(DID_KEY_PREFIX) and len(key) <= MAX_DID_KEY_LENGTH
    ok = ok and body.startswith("z") and len(body) > 1
    if ok:
        try:
            b58decode(body[1:])
        except CryptoError:
            ok = False
    if not ok:
        raise PlcError(f"verificationMethods.{name} is not a syntactically valid did:key")
