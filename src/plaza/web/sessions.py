"""Browser sessions: an opaque cookie names a server-side record.

Theory of operation. Every visitor gets a session the first time a page renders: a
random 32-byte id in an ``HttpOnly``, ``SameSite=Lax`` cookie (``Secure`` behind
https), and a random CSRF token that every form carries back in a hidden field. Signing
in fills the record with the member's DID, handle, PDS and atproto session tokens; the
tokens stay in this process's memory and never reach the browser. Signing in also
replaces the session id (no fixation). Records idle past ``idle_s`` are forgotten;
past ``max_sessions`` the least recently used is dropped.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

COOKIE = "plaza_session"
IDLE_S = 7 * 86400
MAX_SESSIONS = 100_000


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
    id: str = field(repr=False)
    csrf: str = field(repr=False)
    seen: float
    account: Account | None = None
    flash: str | None = None


class Sessions:
    """The server-side session table."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        *,
        idle_s: float = IDLE_S,
        max_sessions: int = MAX_SESSIONS,
    ) -> None:
        self.clock = clock
        self.idle_s = idle_s
        self.max_sessions = max_sessions
        self._table: OrderedDict[str, Session] = OrderedDict()

    def __len__(self) -> int:
        return len(self._table)

    def _new(self) -> Session:
        s = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32), self.clock())
        while len(self._table) >= self.max_sessions:
            self._table.popitem(last=False)
        self._table[s.id] = s
        return s

    def get(self, sid: str | None) -> Session:
        """The live session ``sid`` names, or a fresh anonymous one."""
        now = self.clock()
        while self._table:
            oldest = next(iter(self._table.values()))
            if now - oldest.seen <= self.idle_s:
                break
            self._table.popitem(last=False)
        s = self._table.get(sid) if sid else None
        if s is None:
            return self._new()
        s.seen = now
        self._table.move_to_end(s.id)
        return s

    def sign_in(self, old: Session, account: Account) -> Session:
        """A new session (new id, new CSRF token) holding ``account``; ``old`` ends."""
        self._table.pop(old.id, None)
        s = self._new()
        s.account = account
        return s

    def sign_out(self, old: Session) -> Session:
        self._table.pop(old.id, None)
        return self._new()


def csrf_ok(session: Session, token: object) -> bool:
    """Whether a form's ``token`` is this session's CSRF token (compared in constant time)."""
    return isinstance(token, str) and hmac.compare_digest(token, session.csrf)
