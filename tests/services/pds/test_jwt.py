"""Compact JWTs: one encoding per token, malformed segments are auth errors, and
inter-service tokens are short-lived and single-use."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import httpx
import pytest

from plaza.atproto.crypto import ES256K, PrivateKey
from plaza.services.pds import jwt
from plaza.services.pds.errors import InvalidTokenError
from tests.services.pds.conftest import Network

SECRET = b"s" * 32
AUD = "did:web:pds.test"
LXM = "com.atproto.server.createAccount"


def _session_token(now: int) -> str:
    return jwt.HmacSigner(SECRET).encode(
        {"sub": "did:plc:x", "iat": now, "exp": now + 60}, "at+jwt"
    )


def _respell(token: str, how: str) -> str:
    """The same token with its signature segment spelled differently (same bytes)."""
    head, body, sig = token.split(".")
    raw = base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4))
    if how == "padded":
        sig = base64.urlsafe_b64encode(raw).decode()
    elif how == "standard-alphabet":
        sig = base64.b64encode(raw).decode().rstrip("=")
    elif how == "spare-bits":
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        last = alphabet.index(sig[-1])
        sig = sig[:-1] + alphabet[last | 1]  # 32 bytes leave 2 unused low bits
    elif how == "junk-character":
        sig = sig[:10] + "!" + sig[10:]
    elif how == "whitespace":
        sig = sig[:10] + "\n" + sig[10:]
    return f"{head}.{body}.{sig}"


def _signature_with_plus_or_slash(now: int) -> str:
    for i in range(500):  # a signature whose encoding holds '-' or '_'
        token = _session_token(now + i)
        if "-" in token.split(".")[2] or "_" in token.split(".")[2]:
            return token
    raise AssertionError("no signature with '-' or '_' found")


@pytest.mark.parametrize(
    "how", ["padded", "standard-alphabet", "spare-bits", "junk-character", "whitespace"]
)
def test_only_the_canonical_encoding_verifies(how: str) -> None:
    now = int(time.time())
    token = _signature_with_plus_or_slash(now)
    signer = jwt.HmacSigner(SECRET)
    assert signer.decode(token, "at+jwt", now)["sub"] == "did:plc:x"
    other = _respell(token, how)
    assert other != token
    with pytest.raises(InvalidTokenError):
        signer.decode(other, "at+jwt", now)


def _segment(value: bytes) -> str:
    return base64.urlsafe_b64encode(value).rstrip(b"=").decode()


@pytest.mark.parametrize("part", ["header", "payload"])
def test_deeply_nested_json_in_a_token_is_an_auth_error(part: str) -> None:
    nested = _segment(b"[" * 50_000 + b"]" * 50_000)
    plain = _segment(b'{"alg":"HS256","typ":"at+jwt"}')
    token = f"{nested}.{plain}.AAAA" if part == "header" else f"{plain}.{nested}.AAAA"
    with pytest.raises(InvalidTokenError):
        jwt.parse(token)


def _service_token(key: PrivateKey, **claims: Any) -> jwt.Jwt:
    now = int(time.time())
    payload = {"iss": "did:plc:x", "aud": AUD, "lxm": LXM, "iat": now, "exp": now + 60}
    payload.update(claims)
    payload = {k: v for k, v in payload.items() if v is not None}
    head = _segment(json.dumps({"typ": "JWT", "alg": key.alg}).encode())
    body = _segment(json.dumps(payload).encode())
    sig = _segment(key.sign(f"{head}.{body}".encode()))
    return jwt.parse(f"{head}.{body}.{sig}")


@pytest.mark.parametrize(
    "claims",
    [
        {"exp": int(time.time()) + 2 * 3600},  # lives two hours
        {"iat": None, "exp": int(time.time()) + 2 * 3600},
        {"exp": None},
        {"exp": "soon"},
        {"iat": "then"},
    ],
    ids=["two-hours", "two-hours-no-iat", "no-exp", "exp-not-a-number", "iat-not-a-number"],
)
def test_service_tokens_must_be_short_lived(claims: dict[str, Any]) -> None:
    key = PrivateKey.generate(ES256K)
    ok = _service_token(key)
    assert jwt.verify_service_jwt(ok, key.public_key, aud=AUD, lxm=LXM, now=time.time())
    with pytest.raises(InvalidTokenError):
        jwt.verify_service_jwt(
            _service_token(key, **claims), key.public_key, aud=AUD, lxm=LXM, now=time.time()
        )


def test_the_replay_guard_remembers_until_exp() -> None:
    guard = jwt.ReplayGuard(max_entries=3)
    now = 1000.0
    guard.use("did:plc:a", "n1", exp=now + 10, now=now)
    with pytest.raises(InvalidTokenError):
        guard.use("did:plc:a", "n1", exp=now + 10, now=now + 5)
    guard.use("did:plc:b", "n1", exp=now + 20, now=now + 5)  # another issuer's nonce
    guard.use("did:plc:a", "n1", exp=now + 30, now=now + 11)  # the first one expired
    guard.use("did:plc:a", "n2", exp=now + 30, now=now + 11)
    assert len(guard) == 3
    with pytest.raises(jwt.ReplayGuardFullError):
        guard.use("did:plc:a", "n3", exp=now + 30, now=now + 12)
    guard.use("did:plc:a", "n3", exp=now + 40, now=now + 31)  # room again


def test_a_service_token_is_accepted_once(network: Network) -> None:
    old, new = network.pds
    acct = network.new_account(0, prefix="once")
    aud = httpx.get(f"{new}/xrpc/com.atproto.server.describeServer").json()["did"]
    token = httpx.get(
        f"{old}/xrpc/com.atproto.server.getServiceAuth",
        headers={"authorization": f"Bearer {acct['access']}"},
        params={"aud": aud, "lxm": LXM},
    ).json()["token"]
    auth = {"authorization": f"Bearer {token}"}
    body = {"did": acct["did"], "handle": acct["handle"], "password": "another-password"}
    first = httpx.post(
        f"{new}/xrpc/{LXM}", headers=auth, json={**body, "handle": "not a handle"}, timeout=30
    )
    assert first.status_code == 400 and first.json()["error"] == "InvalidHandle", first.text
    replayed = httpx.post(f"{new}/xrpc/{LXM}", headers=auth, json=body, timeout=30)
    assert replayed.status_code == 400, replayed.text
    assert replayed.json()["error"] == "InvalidToken"
    assert "already been used" in replayed.json()["message"]
