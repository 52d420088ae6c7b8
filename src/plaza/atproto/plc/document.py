"""What a DID's current state looks like from outside: ``/{did}/data`` and the DID document.

The state is the last active operation's fields; a legacy ``create`` is shown in its
regular form. The W3C DID document renders each verification method as a ``Multikey``
with id ``{did}#{name}`` and each service with id ``#{name}``, which is what the
reference directory serves and what the atproto SDK reads (``#atproto`` signing key,
``#atproto_pds`` endpoint).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, Protocol

from plaza.atproto.crypto import DID_KEY_PREFIX, ES256, ES256K, parse_did_key
from plaza.atproto.errors import CryptoError, PlcError
from plaza.atproto.plc.errors import PlcDidNotFoundError, PlcTombstonedError
from plaza.atproto.plc.operations import (
    ATPROTO_KEY,
    ATPROTO_PDS,
    LegacyCreate,
    Operation,
    PlcOperation,
    Service,
    normalize,
)

DID_CONTEXT: Final = "https://www.w3.org/ns/did/v1"
MULTIKEY_CONTEXT: Final = "https://w3id.org/security/multikey/v1"
_KEY_CONTEXT: Final = {
    ES256: "https://w3id.org/security/suites/ecdsa-2019/v1",
    ES256K: "https://w3id.org/security/suites/secp256k1-2019/v1",
}


@dataclass(frozen=True)
class PlcData:
    """A live DID's state: the fields of its last active operation."""

    did: str
    rotation_keys: tuple[str, ...]
    verification_methods: Mapping[str, str]
    also_known_as: tuple[str, ...]
    services: Mapping[str, Service]

    def __post_init__(self) -> None:
        methods = MappingProxyType(dict(self.verification_methods))
        object.__setattr__(self, "verification_methods", methods)
        object.__setattr__(self, "services", MappingProxyType(dict(self.services)))

    @classmethod
    def from_operation(cls, did: str, op: PlcOperation | LegacyCreate) -> PlcData:
        regular = normalize(op)
        return cls(
            did=did,
            rotation_keys=regular.rotation_keys,
            verification_methods=regular.verification_methods,
            also_known_as=regular.also_known_as,
            services=regular.services,
        )

    @property
    def handle(self) -> str | None:
        """The first ``at://`` alias without its scheme, or ``None``."""
        for aka in self.also_known_as:
            if aka.startswith("at://"):
                return aka[len("at://") :]
        return None

    @property
    def pds_endpoint(self) -> str | None:
        svc = self.services.get(ATPROTO_PDS)
        return svc.endpoint if svc is not None else None

    @property
    def signing_key(self) -> str | None:
        """The ``#atproto`` repository signing key as a did:key, or ``None``."""
        return self.verification_methods.get(ATPROTO_KEY)

    def to_json(self) -> dict[str, Any]:
        """The body of ``GET /{did}/data``."""
        return {
            "did": self.did,
            "verificationMethods": dict(self.verification_methods),
            "rotationKeys": list(self.rotation_keys),
            "alsoKnownAs": list(self.also_known_as),
            "services": {k: v.to_json() for k, v in self.services.items()},
        }


def op_data(did: str, op: Operation) -> PlcData | None:
    """The state ``op`` leaves the DID in, or ``None`` for a tombstone."""
    if isinstance(op, PlcOperation | LegacyCreate):
        return PlcData.from_operation(did, op)
    return None


class StateLike(Protocol):
    """What :func:`did_data` and :func:`did_document` need of a DID's state."""

    @property
    def did(self) -> str: ...

    @property
    def data(self) -> PlcData | None: ...

    @property
    def tombstoned(self) -> bool: ...


def live_data(state: PlcData | StateLike) -> PlcData:
    """The live state, or :class:`PlcTombstonedError` / :class:`PlcDidNotFoundError`."""
    if isinstance(state, PlcData):
        return state
    data = state.data
    if data is None:
        if state.tombstoned:
            raise PlcTombstonedError(f"DID not available: {state.did} is tombstoned")
        raise PlcDidNotFoundError(f"DID not registered: {state.did}")
    return data


def did_data(state: PlcData | StateLike) -> dict[str, Any]:
    """The body of ``GET /{did}/data``: the live state's fields."""
    return live_data(state).to_json()


def did_document(did: str, state: PlcData | StateLike) -> dict[str, Any]:
    """The W3C DID document the directory serves at ``GET /{did}``.

    Raises :class:`PlcTombstonedError` or :class:`PlcDidNotFoundError` when the DID
    has no live state.
    """
    data = live_data(state)
    if data.did != did:
        raise PlcError(f"state of {data.did} cannot be rendered as the document of {did}")
    context = [DID_CONTEXT, MULTIKEY_CONTEXT]
    methods = []
    for name, key in data.verification_methods.items():
        try:
            extra = _KEY_CONTEXT.get(parse_did_key(key).alg)
        except CryptoError:
            extra = None  # other key types are allowed; they just get no suite context
        if extra is not None and extra not in context:
            context.append(extra)
        methods.append(
            {
                "id": f"{did}#{name}",
                "type": "Multikey",
                "controller": did,
                "publicKeyMultibase": key.removeprefix(DID_KEY_PREFIX),
            }
        )
    services = [
        {"id": f"#{name}", "type": svc.type, "serviceEndpoint": svc.endpoint}
        for name, svc in data.services.items()
    ]
    return {
        "@context": context,
        "id": did,
        "alsoKnownAs": list(data.also_known_as),
        "verificationMethod": methods,
        "service": services,
    }
