"""The DAO's API as the member's client: read its state, and post events the member
signed in their browser.

A write to the DAO is a ledger event signed by the member's key (the DAO's API checks
the signature against the member's keys; nothing else authenticates). The key never
reaches this server: signing takes two requests from the page's script
(``static/sign.js``). First :func:`prepare` builds the unsigned event at the ledger's
head (``GET /ledger/head``) and answers its exact signing bytes (the DAG-CBOR of
``{seq, prev, time, author, type, payload}``, base64); the browser signs them (ECDSA
over SHA-256, raw ``r||s`` in low-S form, ES256 through WebCrypto or ES256K in the
script) and sends back the event's fields with the signature and its public key as a
did:key. Then :func:`submit` rebuilds the same event from the form, checks the
signature against that key (and that a did:key author is that key), and posts it to
``POST /ledger/events``. A lost race (409 ``AppendConflict``) is answered as such: the
script prepares and signs again at the new head.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from plaza.atproto import cbor, datamodel
from plaza.atproto.crypto import PublicKey
from plaza.errors import PlazaError
from plaza.ledger.event import Event, validate_did, validate_type
from plaza.web.errors import NotConfiguredError, WebError
from plaza.web.upstream import Upstream


@dataclass(frozen=True)
class Receipt:
    """What the member keeps to check their event against the ledger."""

    seq: int
    hash: str
    type: str


def dao_url(base: str | None) -> str:
    if base is None:
        raise NotConfiguredError("this web client has no DAO API (--dao)")
    return base


def _unsigned(
    author: str, type_: str, payload: dict[str, Any], *, seq: int, prev: bytes, time: int
) -> dict[str, Any]:
    try:
        validate_did(author)
        validate_type(type_)
    except PlazaError as exc:
        raise WebError(exc.message) from exc
    return {"seq": seq, "prev": prev, "time": time, "author": author, "type": type_,
            "payload": payload}  # fmt: skip


def signer_key(did_key: str) -> PublicKey:
    """The browser's public key, from the did:key it sent."""
    if not did_key.startswith("did:key:") or len(did_key) > 200:
        raise WebError("the signing key's did:key is missing")
    try:
        return PublicKey.from_did_key(did_key)
    except (PlazaError, ValueError) as exc:
        raise WebError("the signing key's did:key is not a P-256 or secp256k1 key") from exc


async def prepare(
    up: Upstream, base: str, *, author: str, type_: str, payload: dict[str, Any], now_ms: int
) -> dict[str, Any]:
    """The event to sign at the ledger's head: its ``seq``, ``prev`` (hex), ``time``
    and ``signing`` (the bytes to sign, base64)."""
    head = await up.get_json(f"{base}/ledger/head", fresh=True)
    seq, prev = int(head["next_seq"]), bytes.fromhex(str(head["prev"]))
    time = max(int(head["time"]), now_ms)
    signing = cbor.encode(_unsigned(author, type_, payload, seq=seq, prev=prev, time=time))
    return {"seq": seq, "prev": prev.hex(), "time": time,
            "signing": base64.b64encode(signing).decode()}  # fmt: skip


def _int(form: dict[str, str], name: str) -> int:
    raw = form.get(name, "")
    if not raw.isdigit() or len(raw) > 16:
        raise WebError(f"the signed event's {name} is missing")
    return int(raw)


async def submit(
    up: Upstream, base: str, form: dict[str, str], *, author: str, type_: str,
    payload: dict[str, Any],
) -> Receipt:  # fmt: skip
    """Post the event the browser signed (its fields and signature in ``form``)."""
    key = signer_key(form.get("signer", ""))
    if author.startswith("did:key:") and author != key.did_key():
        raise WebError("the member DID is not the did:key of the key that signed")
    prev_hex = form.get("prev", "")
    try:
        prev = bytes.fromhex(prev_hex)
        sig = base64.b64decode(form.get("sig", ""), validate=True)
    except (ValueError, binascii.Error) as exc:
        raise WebError("the signed event is malformed") from exc
    seq, time = _int(form, "seq"), _int(form, "time")
    unsigned = _unsigned(author, type_, payload, seq=seq, prev=prev, time=time)
    try:
        ev = Event.from_map({**unsigned, "sig": sig})
    except PlazaError as exc:
        raise WebError(f"the signed event is malformed: {exc.message}") from exc
    if not key.verify(ev.signing_bytes(), sig):
        raise WebError("the signature does not verify: sign again", code="BadSignature")
    out = await up.post_json(f"{base}/ledger/events", datamodel.to_json(ev.to_map()))
    return Receipt(int(out["seq"]), str(out["hash"]), str(out["type"]))
