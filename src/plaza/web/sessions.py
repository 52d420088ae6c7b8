"""Browser sessions, sealed into the cookie itself.

Theory of operation. A session is small: a CSRF token, the time it was issued, the
signed-in member (DID, handle, PDS and their atproto session tokens) and a one-time
message for the next page (the flash). :class:`Sessions` seals it into the
``plaza_session`` cookie with AES-256-GCM (encrypted and authenticated: the browser can
neither read the tokens nor change a byte without the cookie being refused), under a
key every web process shares: :func:`load_key` keeps it in the web data dir, owner-only.
So any process serving the site reads any visitor's session, and no process keeps a
session table.

The cookie is ``HttpOnly`` and ``SameSite=Lax`` (``Secure`` behind https). Every visitor
gets one the first time a page renders, with a random CSRF token that every form
carries back in a hidden field. Signing in seals a new session (new CSRF token: no
fixation); signing out seals a fresh anonymous one. A session is good for ``max_age_s``
after it was issued; one used after half of that is issued again (sliding expiry), so
an active member stays signed in and an idle one is signed out. A cookie that does not
open (tampered, sealed under another key, expired, from the future) reads as a fresh
anonymous session: the visitor is signed out, never shown an error.

What a cookie cannot do: be revoked before it expires. Signing out replaces the
browser's cookie; a copy taken before that stays readable until its expiry, but its
refresh token was revoked at the PDS on sign-out (``deleteSession``), so the copy's
atproto session dies with the access token it holds (two hours on Plaza's PDS).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from plaza.db.private import private_dirs, private_file
from plaza.errors import StorageError
from plaza.web.errors import WebError

COOKIE = "plaza_session"
MAX_AGE_S = 7 * 86400
KEY_FILE = "session.key"
MAX_COOKIE = 3800  # browsers keep at least 4096 bytes per cookie, name and attributes included
MAX_FLASH = 500
SKEW_S = 60.0  # a cookie issued this far in the future still opens (clocks of other hosts)
_VERSION = b"1"
_AAD = COOKIE.encode() + b"/" + _VERSION
_NONCE = 12


@dataclass
class Account:
    """A signed-in member: their identity and their atproto session (secret)."""

    did: str
    handle: str
    pds: str
    access: str = field(repr=False)
    refresh: str = field(repr=False)


@dataclass
class Session:
    """One visitor's session: what the cookie holds once opened."""

    csrf: str = field(repr=False)
    issued: float
    account: Account | None = None
    flash: str | None = None

    def state(self) -> tuple[Any, ...]:
        """Everything the cookie holds: a different state needs a new cookie."""
        acct = self.account
        who = None if acct is None else (acct.did, acct.handle, acct.pds, acct.access, acct.refresh)
        return (self.csrf, self.issued, who, self.flash)


def load_key(data_dir: Path) -> bytes:
    """The sealing key in ``DATA_DIR/session.key`` (32 random bytes, hex), made on first
    use, owner-only. Made atomically: processes starting together all read one key."""
    path = data_dir / KEY_FILE
    try:
        if not path.exists():
            private_dirs(data_dir)
            tmp = data_dir / f".{KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
            private_file(tmp)
            tmp.write_text(secrets.token_hex(32) + "\n")
            try:
                os.link(tmp, path)  # fails if another process made it first: theirs wins
            except FileExistsError:
                pass
            finally:
                tmp.unlink()
        text = path.read_text().strip()
    except OSError as exc:
        raise StorageError(f"cannot read or write the session key {path}: {exc}") from exc
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) != 32:
        raise StorageError(f"{path} is not a session key (64 hexadecimal characters)")
    return key


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Sessions:
    """Seals sessions into cookie values and opens them, under one key."""

    def __init__(
        self,
        key: bytes,
        clock: Callable[[], float] = time.time,
        *,
        max_age_s: float = MAX_AGE_S,
    ) -> None:
        if len(key) != 32:
            raise WebError("a session key is 32 bytes")
        self._aead = AESGCM(key)
        self.clock = clock
        self.max_age_s = max_age_s

    def new(self, account: Account | None = None) -> Session:
        """A fresh session (new CSRF token), signed in as ``account`` if given."""
        return Session(secrets.token_urlsafe(32), self.clock(), account)

    def seal(self, session: Session) -> str:
        """The cookie value holding ``session``."""
        acct = session.account
        data = {
            "c": session.csrf,
            "i": session.issued,
            "a": None if acct is None else [acct.did, acct.handle, acct.pds, acct.access,
                                            acct.refresh],
            "f": session.flash[:MAX_FLASH] if session.flash else None,
        }  # fmt: skip
        nonce = secrets.token_bytes(_NONCE)
        sealed = self._aead.encrypt(nonce, json.dumps(data, separators=(",", ":")).encode(), _AAD)
        value = _VERSION.decode() + "." + _b64(nonce + sealed)
        if len(value) > MAX_COOKIE:
            raise WebError("the session is too large for a cookie", code="SessionTooLarge")
        return value

    def open(self, value: str | None) -> Session | None:
        """The session ``value`` seals, or None when it does not open or has expired."""
        if not value or len(value) > MAX_COOKIE or not value.startswith("1."):
            return None
        try:
            raw = _unb64(value[2:])
            data = json.loads(self._aead.decrypt(raw[:_NONCE], raw[_NONCE:], _AAD))
            csrf, issued, who, flash = data["c"], float(data["i"]), data["a"], data["f"]
            account = None if who is None else Account(*(str(x) for x in who))
        except (binascii.Error, ValueError, InvalidTag, KeyError, TypeError):
            return None
        now = self.clock()
        if not isinstance(csrf, str) or not now - self.max_age_s <= issued <= now + SKEW_S:
            return None
        return Session(csrf, issued, account, flash if isinstance(flash, str) else None)

    def load(self, value: str | None) -> tuple[Session, bool]:
        """The visitor's session from their cookie (a fresh anonymous one when it does
        not open), and whether the browser needs a new cookie for it: it is fresh, or
        past half its life (issued again now)."""
        session = self.open(value)
        if session is None:
            return self.new(), True
        if self.clock() - session.issued > self.max_age_s / 2:
            return replace(session, issued=self.clock()), True
        return session, False


def csrf_ok(session: Session, token: object) -> bool:
    """Whether a form's ``token`` is this session's CSRF token (compared in constant time)."""
    return isinstance(token, str) and hmac.compare_digest(token, session.csrf)
