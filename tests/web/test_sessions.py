from __future__ import annotations

import base64
import json
import os
import secrets
from pathlib import Path

import pytest

from plaza.errors import StorageError
from plaza.web.context import local_path
from plaza.web.sessions import KEY_FILE, Account, Session, Sessions, csrf_ok, load_key
from plaza.web.tokens import expires_at, runs_out


def _account(access: str = "a") -> Account:
    return Account("did:plc:x", "x.test", "http://pds", access=access, refresh="r")


def _sessions(now: list[float], key: bytes = b"k" * 32, max_age_s: float = 100) -> Sessions:
    return Sessions(key, clock=lambda: now[0], max_age_s=max_age_s)


def test_a_sealed_session_opens_to_what_was_sealed() -> None:
    now = [1000.0]
    table = _sessions(now)
    s = table.new(_account())
    s.flash = "Posted."
    value = table.seal(s)
    assert "x.test" not in value and "did:plc" not in value  # encrypted, not just signed
    opened = table.open(value)
    assert opened is not None and opened.state() == s.state()


def test_a_tampered_or_foreign_cookie_opens_as_a_fresh_anonymous_session() -> None:
    now = [1000.0]
    table = _sessions(now)
    value = table.seal(table.new(_account()))
    flipped = value[:-3] + ("A" if value[-3] != "A" else "B") + value[-2:]
    for bad in (flipped, value[:-1], "2" + value[1:], "1.!!", "", None, "x" * 5000):
        assert table.open(bad) is None
        fresh, reseal = table.load(bad)
        assert fresh.account is None and reseal
    other = _sessions(now, key=b"o" * 32)
    assert other.open(value) is None  # sealed under another key


def test_a_session_expires_and_is_issued_again_past_half_its_life() -> None:
    now = [1000.0]
    table = _sessions(now, max_age_s=100)
    value = table.seal(table.new(_account()))
    now[0] = 1040.0
    s, reseal = table.load(value)
    assert s.account is not None and not reseal
    now[0] = 1060.0
    s, reseal = table.load(value)
    assert s.account is not None and reseal and s.issued == 1060.0
    now[0] = 1101.0
    s, reseal = table.load(value)
    assert s.account is None and reseal  # expired: signed out, no error
    now[0] = 900.0
    assert table.open(value) is None  # issued in the future (beyond the allowed skew)


def test_signing_in_makes_a_new_csrf_token() -> None:
    table = _sessions([0.0])
    anon = table.new()
    signed = table.new(_account())
    assert signed.csrf != anon.csrf


def test_csrf_tokens_compare_exactly() -> None:
    s = _sessions([0.0]).new()
    assert csrf_ok(s, s.csrf)
    assert not csrf_ok(s, s.csrf[:-1]) and not csrf_ok(s, None) and not csrf_ok(s, "")


def test_account_repr_hides_the_tokens() -> None:
    assert "a'" not in repr(_account()).replace("did:plc:x", "")
    assert "refresh=" not in repr(_account())
    assert "csrf" not in repr(Session("secret", 0.0))


def test_the_key_is_made_once_owner_only_and_shared(tmp_path: Path) -> None:
    key = load_key(tmp_path / "web")
    assert len(key) == 32 and load_key(tmp_path / "web") == key
    assert (tmp_path / "web" / KEY_FILE).stat().st_mode & 0o077 == 0
    assert os.listdir(tmp_path / "web") == [KEY_FILE]  # no temporary file left behind
    (tmp_path / "web" / KEY_FILE).write_text("not hex\n")
    with pytest.raises(StorageError):
        load_key(tmp_path / "web")


def _jwt(claims: dict[str, object]) -> str:
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"e30.{body}.{secrets.token_hex(4)}"


def test_an_access_token_runs_out_near_its_expiry_or_when_unreadable() -> None:
    assert expires_at(_jwt({"exp": 2000})) == 2000.0
    assert not runs_out(_account(_jwt({"exp": 2000})), now=1000.0)
    assert runs_out(_account(_jwt({"exp": 2000})), now=1800.0)
    for bad in ("a", "a.b.c", _jwt({"exp": "soon"}), _jwt({"exp": True}), _jwt({})):
        assert runs_out(_account(bad), now=0.0)


def test_forms_only_send_the_browser_back_to_this_site() -> None:
    assert local_path("/profile/did:plc:x?x=1") == "/profile/did:plc:x?x=1"
    for bad in ("//evil.example/", "https://evil.example/", "javascript:alert(1)", "/\\evil", 3):
        assert local_path(bad) == "/"
