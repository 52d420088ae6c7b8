"""Keys and identities shared by the directory's tests."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from plaza.atproto.crypto import ES256, ES256K, PrivateKey
from plaza.atproto.plc import PlcOperation, create_genesis

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def key(name: str, alg: str = ES256K) -> PrivateKey:
    return PrivateKey.from_bytes(alg, hashlib.sha256(name.encode()).digest())  # type: ignore[arg-type]


@dataclass(frozen=True)
class Identity:
    """A member's DID with rotation keys in priority order: recovery, then hosting."""

    did: str
    genesis: PlcOperation
    recovery: PrivateKey
    pds: PrivateKey
    signing: PrivateKey


def identity(handle: str, pds_url: str = "https://pds-one.example") -> Identity:
    recovery, pds, signing = key(handle + "/recovery"), key(handle + "/pds", ES256), key(handle)
    did, genesis = create_genesis(
        key=pds,
        rotation_keys=[recovery.did_key(), pds.did_key()],
        signing_key=signing.did_key(),
        handle=handle,
        pds_endpoint=pds_url,
    )
    return Identity(did, genesis, recovery, pds, signing)
