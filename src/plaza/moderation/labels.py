"""Signed labels, exactly as the AT Protocol label spec has them.

A label is a map of ``ver`` (1), ``src`` (the labeler's DID), ``uri`` (an AT-URI, or a
DID for an account), optional ``cid`` (the version labelled), ``val``, ``neg`` (true
takes an earlier label back), ``cts`` (when it was made) and optional ``exp``. The
signature ``sig`` is over the DAG-CBOR encoding of the map without ``sig``: SHA-256 of
those bytes signed with the labeler's ``#atproto_label`` key (:meth:`PrivateKey.sign`
hashes with SHA-256 and gives the 64-byte low-S signature). :func:`verify_label` is
the check a consumer makes against the key from the labeler's DID document.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from plaza.atproto import cbor
from plaza.atproto.crypto import PrivateKey, PublicKey


def iso_time(seconds: float) -> str:
    """``seconds`` since the epoch as an atproto datetime (UTC, milliseconds, ``Z``)."""
    moment = datetime.fromtimestamp(seconds, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def unsigned_label(
    src: str,
    uri: str,
    val: str,
    *,
    cts: str,
    cid: str | None = None,
    neg: bool = False,
    exp: str | None = None,
) -> dict[str, Any]:
    label: dict[str, Any] = {"ver": 1, "src": src, "uri": uri}
    if cid is not None:
        label["cid"] = cid
    label.update(val=val, neg=neg, cts=cts)
    if exp is not None:
        label["exp"] = exp
    return label


def signing_bytes(label: dict[str, Any]) -> bytes:
    """The bytes a label's signature covers: its DAG-CBOR without ``sig``."""
    return cbor.encode({k: v for k, v in label.items() if k != "sig"})


def sign_label(label: dict[str, Any], key: PrivateKey) -> dict[str, Any]:
    """``label`` with ``sig`` set."""
    return {**label, "sig": key.sign(signing_bytes(label))}


def verify_label(label: dict[str, Any], key: PublicKey) -> bool:
    sig = label.get("sig")
    return isinstance(sig, bytes) and key.verify(signing_bytes(label), sig)
