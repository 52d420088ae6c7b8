"""How the relay runs its stateless checks: in its own process, or elsewhere and early.

A :class:`Verifier` runs :func:`~plaza.services.relay.verify.check_commit` and
:func:`~plaza.services.relay.verify.check_sync` on an event, given decoded and as its
frame's bytes. :class:`InlineVerifier` runs them at once, in the relay's process;
:class:`~plaza.services.relay.pool.PoolVerifier` in worker processes (``parallel``).
With a parallel verifier the relay starts checking a host's commits as they arrive
(:class:`Prepared`, under the key the account has then) and judges them in order
later, using an early check only if it ran under the key the account still has.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from plaza.atproto.crypto import PublicKey
from plaza.services.relay.frames import Frame
from plaza.services.relay.verify import Checked, SyncChecked, check_commit, check_sync


class Verifier(Protocol):
    """Runs the stateless checks (:mod:`plaza.services.relay.verify`) on an event, given
    decoded (``body``) and as its frame's bytes (``raw``), here or elsewhere.
    ``parallel``: whether checks run beside the event loop (worth starting early)."""

    parallel: bool

    async def commit(self, body: Mapping[str, Any], key: PublicKey, raw: bytes) -> Checked: ...

    async def sync(self, body: Mapping[str, Any], key: PublicKey, raw: bytes) -> SyncChecked: ...

    def close(self) -> None: ...


class InlineVerifier:
    """Verifies in the calling process."""

    parallel = False

    async def commit(self, body: Mapping[str, Any], key: PublicKey, raw: bytes) -> Checked:
        return check_commit(body, key)

    async def sync(self, body: Mapping[str, Any], key: PublicKey, raw: bytes) -> SyncChecked:
        return check_sync(body, key)

    def close(self) -> None:
        return None


@dataclass
class Prepared:
    """A frame decoded ahead of its turn, with its commit's verification already
    started under the key the account had then (see :meth:`Relay.prepare`)."""

    raw: bytes
    frame: Frame | None = None
    early: asyncio.Future[Checked] | None = None
    key: PublicKey | None = None

    def take(self, key: PublicKey) -> asyncio.Future[Checked] | None:
        """The early check if it ran under ``key`` (once), else None."""
        early, self.early = self.early, None
        if early is not None and self.key is not None and same_key(self.key, key):
            return early
        if early is not None:
            discard(early)
        return None


def same_key(a: PublicKey, b: PublicKey) -> bool:
    """Whether two keys are the same key (compared as points, not as ``did:key`` text)."""
    return a is b or (a.alg == b.alg and a.compressed == b.compressed)


def discard(early: asyncio.Future[Checked]) -> None:
    early.cancel()
    early.add_done_callback(lambda f: None if f.cancelled() else f.exception())
