"""Event encoding, signing and the key registry."""

from __future__ import annotations

import hashlib

import pytest

from plaza.atproto import cbor
from plaza.atproto.crypto import PrivateKey
from plaza.ledger import (
    GENESIS_PREV,
    DidKeyRegistry,
    Event,
    EventSignatureError,
    InvalidEventError,
    StaticKeyRegistry,
    UnknownAuthorError,
    sign_event,
    verify_event_signature,
)


def _ev(key: PrivateKey, **kw: object) -> Event:
    fields: dict[str, object] = {
        "seq": 0,
        "prev_hash": GENESIS_PREV,
        "time": 1_700_000_000_000,
        "author_did": key.did_key(),
        "type": "dao.member.vouched",
        "payload": {"member": "did:plc:abc", "note": b"\x00\x01"},
    }
    fields.update(kw)
    return sign_event(key, **fields)  # type: ignore[arg-type]


def test_bytes_hash_and_round_trip(alice: PrivateKey) -> None:
    ev = _ev(alice)
    assert ev.hash == hashlib.sha256(ev.raw).digest()
    decoded = cbor.decode(ev.raw)
    assert set(decoded) == {"seq", "prev", "time", "author", "type", "payload", "sig"}
    assert Event.decode(ev.raw) == ev
    assert Event.from_map(ev.to_map()).raw == ev.raw
    # The signature covers everything but itself: the spliced signing bytes (built and
    # decoded) equal a fresh encoding of the map without "sig".
    unsigned = {k: v for k, v in ev.to_map().items() if k != "sig"}
    assert ev.signing_bytes() == cbor.encode(unsigned)
    assert Event.decode(ev.raw).signing_bytes() == cbor.encode(unsigned)
    assert alice.public_key.verify(ev.signing_bytes(), ev.signature)
    big = _ev(alice, seq=70_000)  # a multi-byte seq moves the splice point
    assert Event.decode(big.raw).signing_bytes() == big.signing_bytes()


def test_signature_binds_position(alice: PrivateKey) -> None:
    ev = _ev(alice)
    moved = Event.from_map({**ev.to_map(), "seq": 1})
    with pytest.raises(EventSignatureError):
        verify_event_signature(moved, DidKeyRegistry())
    relinked = Event.from_map({**ev.to_map(), "prev": b"\x01" * 32})
    with pytest.raises(EventSignatureError):
        verify_event_signature(relinked, DidKeyRegistry())


def test_registry(alice: PrivateKey, bob: PrivateKey) -> None:
    plc = "did:plc:ewvi7nxzyoun6zhxrhs64oiz"
    ev = _ev(alice, author_did=plc)
    with pytest.raises(UnknownAuthorError):
        verify_event_signature(ev, DidKeyRegistry())
    reg = StaticKeyRegistry({plc: [bob.public_key]})
    with pytest.raises(EventSignatureError):
        verify_event_signature(ev, reg)
    reg.bind(plc, alice.did_key())
    assert verify_event_signature(ev, reg) == alice.public_key
    # did:key authors need no entry.
    assert verify_event_signature(_ev(bob), reg) == bob.public_key


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"seq": -1}, "seq"),
        ({"prev_hash": b"\x00" * 31}, "prev_hash"),
        ({"time": -5}, "time"),
        ({"author_did": "alice"}, "DID"),
        ({"type": "Vote"}, "type"),
        ({"type": "vote"}, "type"),
        ({"payload": [1, 2]}, "payload"),
        ({"payload": {"x": 0.5}}, "data-model"),
    ],
    ids=[
        "neg-seq",
        "short-prev",
        "neg-time",
        "bad-did",
        "upper-type",
        "bare-type",
        "list-payload",
        "float",
    ],
)
def test_invalid_fields(alice: PrivateKey, kw: dict[str, object], match: str) -> None:
    with pytest.raises(InvalidEventError, match=match):
        _ev(alice, **kw)


def test_decode_refuses_non_events(alice: PrivateKey) -> None:
    ev = _ev(alice)
    with pytest.raises(InvalidEventError, match="canonical"):
        Event.decode(ev.raw + b"\x00")
    with pytest.raises(InvalidEventError, match="fields"):
        Event.decode(cbor.encode({"seq": 0}))
    with pytest.raises(InvalidEventError, match="sig"):
        Event.decode(cbor.encode({**ev.to_map(), "sig": b"short"}))
