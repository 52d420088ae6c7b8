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
from typing import Annotated, Any, Final

from pydantic import StringConstraints

from plaza.atproto import cbor
from plaza.atproto.crypto import PrivateKey, PublicKey, parse_did_key
from plaza.atproto.errors import AtprotoError, CryptoError
from plaza.market.errors import (
    BadSignatureError,
    MarketInputError,
    UnsignedError,
    WrongMarketError,
)
from plaza.market.fields import Did, Model, parse

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
ENVELOPE: Final = frozenset({"$type", "market", "nonce", "sig", *DOC_TYPES.values()})
"""The fields every signed document carries besides its body."""


class _Envelope(Model):
    market: Did
    nonce: Annotated[str, StringConstraints(min_length=1, max_length=64)]


class _ByProvider(_Envelope):
    provider: Did


class _ByObserver(_Envelope):
    observer: Did


class _ByProber(_Envelope):
    prober: Did


_ENVELOPES: Final[Mapping[str, type[_Envelope]]] = {
    "provider": _ByProvider,
    "observer": _ByObserver,
    "prober": _ByProber,
}


def body_of(doc: Mapping[str, Any]) -> dict[str, Any]:
    """``doc`` without its envelope (``$type``, the signer, ``market``, ``nonce``,
    ``sig``): the fields a document type's own model reads."""
    return {k: v for k, v in doc.items() if k not in ENVELOPE}


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
    if not isinstance(doc, Mapping):
        raise MarketInputError(f"{doc_type} document must be a map")
    if doc.get("$type") != doc_type:
        raise MarketInputError(f"expected a {doc_type!r} document, got $type {doc.get('$type')!r}")
    env = parse(_ENVELOPES[DOC_TYPES[doc_type]], doc, doc_type)
    signer: str = getattr(env, DOC_TYPES[doc_type])
    nonce = env.nonce
    sig = doc.get("sig")
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
