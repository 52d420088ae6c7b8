"""What the web client is pointed at, read once at the edge (``plaza serve web``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from plaza.web.errors import WebError

MAX_WORKERS = 64


def _base(url: str, flag: str) -> str:
    if not url.startswith(("http://", "https://")):
        raise WebError(f"{flag} must be an http(s) URL, not {url!r}")
    return url.rstrip("/")


@dataclass(frozen=True)
class WebSettings:
    """``entryway``: where members sign up and sign in (an entryway, or a PDS, which
    speaks ``com.atproto.server.createAccount``/``createSession`` the same way);
    ``appview``: an app view for anonymous reads and the built-in feeds (optional);
    ``dao`` and ``market``: their HTTP APIs (optional: the pages say so when missing).
    ``secure_cookies`` marks the session cookie ``Secure`` (serve behind https).
    Sign-in attempts are limited per client address to ``signin_burst`` at once,
    refilling at ``signin_rate_per_s``. Public reads are kept ``cache_ttl_s`` seconds
    (:mod:`plaza.web.cache`; 0: not kept). ``labeler`` is the DID of the network's
    moderation service, where members' reports go (through their PDS).
    ``data_dir`` keeps the key that seals session cookies (``session.key``): every
    process given the same dir reads every session; without one, each app makes its own
    key and its sessions end with it. ``workers``: how many processes serve this site
    on one port; each allows its share of the sign-in limit (the burst and the rate
    divided by ``workers``, at least one attempt), so an address gets about the limit
    from all of them together."""

    entryway: str
    appview: str | None = None
    dao: str | None = None
    market: str | None = None
    secure_cookies: bool = False
    signin_rate_per_s: float = 1 / 6
    signin_burst: int = 10
    cache_ttl_s: float = 2.0
    labeler: str | None = None
    data_dir: Path | None = None
    workers: int = 1
    clock: Callable[[], float] = field(default=time.time, repr=False)

    def __post_init__(self) -> None:
        if not 1 <= self.workers <= MAX_WORKERS:
            raise WebError(f"--workers is from 1 to {MAX_WORKERS}")
        if not 0 <= self.cache_ttl_s <= 3600:
            raise WebError("--cache-ttl is from 0 to 3600 seconds")
        if self.labeler is not None and (
            not self.labeler.startswith("did:") or len(self.labeler) > 2048 or "#" in self.labeler
        ):
            raise WebError(f"--labeler must be the moderation service's DID, not {self.labeler!r}")
        object.__setattr__(self, "entryway", _base(self.entryway, "--entryway"))
        for name in ("appview", "dao", "market"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, _base(value, f"--{name}"))
