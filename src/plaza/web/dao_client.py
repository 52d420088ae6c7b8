"""The DAO's API as the member's client: read its state, and sign and post events.

A write to the DAO is a ledger event signed by the member's key (the DAO's API checks
the signature against the member's keys; nothing else authenticates). The member gives
the key with the form that needs it; it signs that one event here and is dropped: it is
never stored, logged or sent anywhere but into the signature. The event is built at the
ledger's head (``GET /ledger/head``) and posted to ``POST /ledger/events``; a lost race
(409) rebuilds it at the new head, up to :data:`ATTEMPTS` times.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from plaza.atproto import datamodel
from plaza.atproto.crypto import PrivateKey
from plaza.errors import PlazaError
from plaza.ledger.event import sign_event
from plaza.web.errors import NotConfiguredError, UpstreamError, WebError
from plaza.web.upstream import Upstream

ATTEMPTS = 3
ALGS = ("ES256K", "ES256")


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


def parse_key(secret: str, alg: str) -> PrivateKey:
    """The member's signing key from its hex secret (as ``plaza`` keystores hold it)."""
    if alg not in ALGS:
        raise WebError(f"the key type is one of {', '.join(ALGS)}")
    text = secret.strip().lower().removeprefix("0x")
    if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
        raise WebError("the signing key is 64 hexadecimal characters")
    try:
        return PrivateKey.from_bytes(alg, bytes.fromhex(text))  # type: ignore[arg-type]
    except (PlazaError, ValueError) as exc:
        raise WebError("that is not a valid signing key") from exc


async def submit(
    up: Upstream,
    base: str,
    key: PrivateKey,
    *,
    author: str,
    type_: str,
    payload: dict[str, Any],
    now_ms: int,
) -> Receipt:
    """Sign ``type_`` with ``payload`` as ``author`` and post it; its receipt."""
    for attempt in range(ATTEMPTS):
        head = await up.get_json(f"{base}/ledger/head", fresh=True)
        ev = sign_event(
            key,
            seq=int(head["next_seq"]),
            prev_hash=bytes.fromhex(str(head["prev"])),
            time=max(int(head["time"]), now_ms),
            author_did=author,
            type=type_,
            payload=payload,
        )
        try:
            out = await up.post_json(f"{base}/ledger/events", datamodel.to_json(ev.to_map()))
        except UpstreamError as exc:
            if exc.status == 409 and exc.code == "AppendConflict" and attempt + 1 < ATTEMPTS:
                continue
            raise
        return Receipt(int(out["seq"]), str(out["hash"]), str(out["type"]))
    raise UpstreamError("the ledger kept moving: try again")  # pragma: no cover
