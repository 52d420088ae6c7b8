"""Signed documents: what providers and probers put their names to.

A document is a data-model map with a ``$type`` naming what it is (``bid``,
``usage``, ...), the signer's DID in a field the type names (``provider``,
``prober``, ``observer``), ``market``: the DID of the operator of the market it is
addressed to (its audience), a ``nonce`` chosen by the signer, and ``sig``: the raw
64-byte ECDSA signature, by the signer's registered key, over the DAG-CBOR encoding of
the map without ``sig``. The ``$type`` inside the signed bytes stops a signature made
for one kind of document being replayed as another; ``market`` stops a document signed
for one market being replayed at another (request, contract and invoice ids are
numbered per market, so ``rfb-7`` or ``c-12`` name something in every market); the
market refuses a second document with the same ``(signer, $type, nonce)`` (and, per
type, a second one for the same slot), so a document can be accepted once only.

Keys are ``did:key`` strings: a provider binds one to its DID when it registers (the
registration itself is signed by that key, which proves possession).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from typing import Any, Final

from plaza.atproto import cbor
from plaza.atproto.crypto import PrivateKey, PublicKey, parse_did_key
from plaza.atproto.errors import AtprotoError, CryptoError
from plaza.market import _fields as f
from plaza.market.errors import (
    BadSignatureError,
    MarketInputError,
    UnsignedError,
    WrongMarketError,
)

DOC_TYPES: Final = {
    "registration": "provider",
    "bid": "provider",
    "terms": "provider",
    "usage": "provider",
    "observation": "observer",
    "probe": "prober",
    "dispute": "provider",
}
MAX_DOC_BYTES: Final = 200 * 1024


def new_nonce() -> str:
    return secrets.token_hex(12)


def sign_doc(key: PrivateKey, doc: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``doc`` (which must name its ``$type``, signer and ``market``) with ``sig``
    (and a fresh ``nonce`` if it has none)."""
    body = {k: v for k, v in doc.items() if k != "sig"}
    if "nonce" not in body:
        body["nonce"] = new_nonce()
    signer_field(body)
    try:
        data = cbor.encode(body)
    except AtprotoError as exc:
        raise MarketInputError(f"document is not a data-model value: {exc}") from exc
    body["sig"] = key.sign(data)
    return body


def signer_field(doc: Mapping[str, Any]) -> str:
    """The field holding the signer's DID for this document's ``$type``."""
    t = doc.get("$type")
    if t not in DOC_TYPES:
        raise MarketInputError(f"unknown document $type {str(t)[:40]!r}")
    return DOC_TYPES[str(t)]


def signing_bytes(doc: Mapping[str, Any]) -> bytes:
    body = {k: v for k, v in doc.items() if k != "sig"}
    try:
        data = cbor.encode(body)
    except AtprotoError as exc:
        raise MarketInputError(f"document is not a data-model value: {exc}") from exc
    if len(data) > MAX_DOC_BYTES:
        raise MarketInputError(f"document is {len(data)} bytes, over {MAX_DOC_BYTES}")
    return data


def doc_digest(doc: Mapping[str, Any]) -> str:
    """Hex SHA-256 of the signed bytes (without ``sig``): the document's identity."""
    return hashlib.sha256(signing_bytes(doc)).hexdigest()


def check_doc(doc: Any, doc_type: str) -> tuple[str, str]:
    """Structural checks every signed document passes: right ``$type``, a signer DID, the
    DID of the ``market`` it is addressed to, a nonce and a 64-byte ``sig``. Returns
    ``(signer_did, nonce)``.

    Raises :class:`MarketInputError` (malformed) or :class:`UnsignedError`.
    """
    m = f.as_map(doc, f"{doc_type} document")
    if m.get("$type") != doc_type:
        raise MarketInputError(f"expected a {doc_type!r} document, got $type {m.get('$type')!r}")
    signer = f.did_field(m, DOC_TYPES[doc_type], doc_type)
    f.did_field(m, "market", doc_type)
    nonce = f.str_field(m, "nonce", doc_type, max_len=64)
    if not nonce:
        raise MarketInputError(f"{doc_type}.nonce must not be empty")
    sig = m.get("sig")
    if sig is None:
        raise UnsignedError(f"the {doc_type} document from {signer} is not signed")
    if type(sig) is not bytes or len(sig) != 64:
        raise BadSignatureError(f"the {doc_type} signature from {signer} is not 64 bytes")
    return signer, nonce


def verify_doc(
    doc: Mapping[str, Any], key: PublicKey | str, doc_type: str, *, market: str | None
) -> None:
    """Raise :class:`BadSignatureError` unless ``doc`` is signed by ``key``, then
    :class:`WrongMarketError` unless it is addressed to ``market`` (the DID of this
    market's operator)."""
    signer, _ = check_doc(doc, doc_type)
    pk = _public(key)
    if not pk.verify(signing_bytes(doc), doc["sig"]):
        raise BadSignatureError(
            f"the {doc_type} document does not verify against the registered key of {signer}"
        )
    if doc["market"] != market:
        raise WrongMarketError(
            f"the {doc_type} document from {signer} is addressed to the market of "
            f"{doc['market']}, not to this one (operator {market}): sign it for this market"
        )


def _public(key: PublicKey | str) -> PublicKey:
    if isinstance(key, PublicKey):
        return key
    try:
        return parse_did_key(key)
    except CryptoError as exc:
        raise MarketInputError(f"not a did:key: {key[:60]!r}") from exc
