"""Builders for new did:plc operations: a genesis, an update on a previous op, a tombstone.

Each returns a signed operation ready to submit. The signing key must be one the
operation's predecessor (or, for a genesis, the operation itself) lists as a rotation
key; otherwise the directory would refuse it, so the builder refuses first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from plaza.atproto.crypto import PrivateKey
from plaza.atproto.errors import PlcError
from plaza.atproto.plc.operations import (
    ATPROTO_KEY,
    ATPROTO_PDS,
    ATPROTO_PDS_TYPE,
    LegacyCreate,
    Operation,
    PlcOperation,
    PlcTombstone,
    Service,
    at_uri,
    authority_keys,
    did_for_genesis,
    http_url,
    normalize,
    operation_cid,
    sign_operation,
)


def _require_signer(key: PrivateKey, allowed: Sequence[str], what: str) -> None:
    if key.did_key() not in allowed:
        raise PlcError(f"the signing key {key.did_key()} is not among the {what}")


def create_genesis(
    *,
    key: PrivateKey,
    rotation_keys: Sequence[str],
    signing_key: str,
    handle: str,
    pds_endpoint: str,
) -> tuple[str, PlcOperation]:
    """A signed atproto genesis operation and the DID it defines.

    ``rotation_keys`` are in priority order and ``key`` must be one of them;
    ``signing_key`` is the repository key (``#atproto``); ``handle`` becomes
    ``at://handle``; ``pds_endpoint`` is the ``#atproto_pds`` URL.
    """
    _require_signer(key, rotation_keys, "genesis rotation keys")
    op = sign_operation(
        PlcOperation(
            rotation_keys=tuple(rotation_keys),
            verification_methods={ATPROTO_KEY: signing_key},
            also_known_as=(at_uri(handle),),
            services={ATPROTO_PDS: Service(ATPROTO_PDS_TYPE, http_url(pds_endpoint))},
            prev=None,
        ),
        key,
    )
    return did_for_genesis(op), op


def create_update(
    prev_op: PlcOperation | LegacyCreate,
    key: PrivateKey,
    *,
    rotation_keys: Sequence[str] | None = None,
    signing_key: str | None = None,
    handle: str | None = None,
    pds_endpoint: str | None = None,
    also_known_as: Sequence[str] | None = None,
    verification_methods: Mapping[str, str] | None = None,
    services: Mapping[str, Service] | None = None,
) -> PlcOperation:
    """A signed update on top of ``prev_op``: its state with the given fields replaced.

    ``signing_key``, ``handle`` and ``pds_endpoint`` change the atproto entries and keep
    the rest; ``also_known_as``, ``verification_methods`` and ``services`` replace whole
    fields. ``key`` must be one of ``prev_op``'s rotation keys.
    """
    _require_signer(key, authority_keys(prev_op), "previous operation's rotation keys")
    base = normalize(prev_op)
    methods = dict(
        base.verification_methods if verification_methods is None else verification_methods
    )
    if signing_key is not None:
        methods[ATPROTO_KEY] = signing_key
    aka = list(base.also_known_as if also_known_as is None else also_known_as)
    if handle is not None:
        uri = at_uri(handle)
        at = [i for i, v in enumerate(aka) if v.startswith("at://")]
        if at:
            aka[at[0]] = uri
        else:
            aka.insert(0, uri)
    svcs = dict(base.services if services is None else services)
    if pds_endpoint is not None:
        svcs[ATPROTO_PDS] = Service(ATPROTO_PDS_TYPE, http_url(pds_endpoint))
    return sign_operation(
        PlcOperation(
            rotation_keys=tuple(base.rotation_keys if rotation_keys is None else rotation_keys),
            verification_methods=methods,
            also_known_as=tuple(aka),
            services=svcs,
            prev=str(operation_cid(prev_op)),
        ),
        key,
    )


def create_tombstone(prev_op: Operation, key: PrivateKey) -> PlcTombstone:
    """A signed tombstone after ``prev_op``; ``key`` must be one of its rotation keys."""
    _require_signer(key, authority_keys(prev_op), "previous operation's rotation keys")
    return sign_operation(PlcTombstone(prev=str(operation_cid(prev_op))), key)
