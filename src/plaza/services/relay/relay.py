"""The relay's core: every event from every host, judged against what the relay knows.

Theory of operation. Each host's subscriber hands its frames to :meth:`Relay.handle`
one at a time, in the host's order. A frame is decoded once; a refusal at any step
drops the event, counts the reason for the host and changes nothing else. What the
relay keeps of each account is its host, head commit, rev and MST root (``data``), and
its status. Per event type:

- ``#commit``: the account's current host (from its DID document) must be the host
  that sent it; the commit is verified statelessly (:func:`~.verify.check_commit`:
  signature against the account's key, the inversion back to ``prevData``), then
  against the state: ``rev`` strictly above the last one, and ``prevData`` equal to
  the last verified root. A commit that does not continue the thread marks the account
  ``desynchronized`` (an ``#account`` event says so), is kept aside, and the account is
  resynchronized from its host's ``getRepo`` with backoff; the commits kept aside are
  then tried again on top of the fetched head.
- ``#sync``: a signed commit that resets the account to it.
- ``#identity``: the DID document is fetched again, and the event passed on.
- ``#account``: the account's activity and status, passed on.

A commit whose signature fails is tried once more after fetching the DID document
again (the key may have rotated), at most once per ``identity_refresh_s`` per DID.
Every event that was dealt with — passed on or dropped — advances the host's cursor,
and both land in the same transaction (:mod:`plaza.services.relay.outbox`): the
flusher writes every few milliseconds, and :meth:`Relay.handle` writes at once when
:data:`FLUSH_AT` events are pending, always between two events.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

import httpx
import libipld

from plaza.atproto import syntax
from plaza.atproto.car import write_car
from plaza.atproto.cid import CID
from plaza.atproto.crypto import PublicKey
from plaza.atproto.errors import AtprotoError, BadSignatureError
from plaza.errors import PlazaError
from plaza.services.eventstream import iso_time
from plaza.services.identities import Identities, Identity, IdentityError
from plaza.services.relay.frames import (
    ACCOUNT,
    COMMIT,
    ERROR,
    IDENTITY,
    INFO,
    SYNC,
    FrameError,
    decode_frame,
)
from plaza.services.relay.outbox import Outbox
from plaza.services.relay.resync import Backoff, ResyncError, fetch_repo
from plaza.services.relay.settings import RelaySettings
from plaza.services.relay.state import DESYNCHRONIZED, Counters, HostState
from plaza.services.relay.store import AccountState
from plaza.services.relay.verifier import Prepared, Verifier, discard, same_key
from plaza.services.relay.verify import reason

log = logging.getLogger("plaza.relay")

MAX_KEPT_ASIDE: Final = 1000
MAX_STATUS_LENGTH: Final = 64
FLUSH_AT: Final = 512
"""Pending events that make :meth:`Relay.handle` flush at once, between two events."""


class Relay:
    """Hosts, accounts, and the judging of every event (see the module docstring)."""

    def __init__(
        self,
        settings: RelaySettings,
        outbox: Outbox,
        identities: Identities,
        verifier: Verifier,
        *,
        http: httpx.AsyncClient,
        accounts: dict[str, AccountState],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.outbox = outbox
        self.identities = identities
        self.verifier = verifier
        self.http = http
        self.accounts = accounts
        self.clock = clock
        self.hosts: dict[str, HostState] = {}
        self.counters = Counters()
        self._aside: dict[str, list[tuple[HostState, dict[str, Any], bytes]]] = {}
        self._replaying: set[str] = set()
        self._resyncs: dict[str, asyncio.Task[None]] = {}

    # -- the entry point -------------------------------------------------------------
    def prepare(self, host: HostState, raw: bytes) -> Prepared:
        """Decode a frame ahead of its turn and, with a parallel verifier, start checking
        a ``#commit`` under the account's cached key: hosts read on while their earlier
        events are checked. :meth:`handle` judges it in order all the same, and uses
        the early check only if the key is still the account's."""
        if not self.verifier.parallel or len(raw) > self.settings.max_frame_bytes:
            return Prepared(raw)
        try:
            frame = decode_frame(raw)
        except FrameError:
            return Prepared(raw)
        prepared = Prepared(raw, frame)
        did = frame.body.get("repo")
        if frame.kind == COMMIT and type(did) is str:
            ident = self.identities.cached(did)
            if ident is not None and ident.key is not None and ident.host == host.hostname:
                prepared.key = ident.key
                prepared.early = asyncio.ensure_future(
                    self.verifier.commit(frame.body, ident.key, raw)
                )
        return prepared

    async def handle(self, host: HostState, raw: bytes, prepared: Prepared | None = None) -> None:
        """Deal with one frame from ``host`` (see the module docstring); ``prepared``
        is what :meth:`prepare` made of it."""
        try:
            await self._handle(host, raw, prepared or Prepared(raw))
            if self.outbox.pending >= FLUSH_AT:
                self.outbox.flush()  # a full batch need not wait for the flusher's timer
        finally:
            if prepared is not None and prepared.early is not None:
                discard(prepared.early)

    async def _handle(self, host: HostState, raw: bytes, prepared: Prepared) -> None:
        host.events += 1
        if len(raw) > self.settings.max_frame_bytes:
            self._drop(host, "oversized-frame", f"{len(raw)} bytes")
            self._advance(host, _peek_seq(raw))
            return
        if prepared.frame is not None:
            frame = prepared.frame
        else:
            try:
                frame = prepared.frame = decode_frame(raw)
            except FrameError as exc:
                self._drop(host, "malformed-frame", exc.message)
                return
        body = frame.body
        if frame.kind == ERROR:
            self._drop(host, "host-error", f"{body.get('error')}: {body.get('message')}")
            if body.get("error") == "FutureCursor":
                # The host's stream restarted below our cursor (its store was replaced):
                # read it again from its start; revs already seen are refused as such.
                host.cursor = 0
                self.outbox.cursor(host.hostname, 0)
            return
        if frame.kind == INFO:
            return
        seq = body.get("seq")
        if type(seq) is not int or seq <= host.cursor:
            self._drop(host, "seq-not-increasing", f"seq {seq!r} after {host.cursor}")
            return
        try:
            await self._dispatch(host, frame.kind, body, raw, prepared)
        except Exception:
            log.exception(
                "relay: handling %s seq %s from %s failed", frame.kind, seq, host.hostname
            )
            self._drop(host, "internal-error", "")
        self._advance(host, seq)

    async def _dispatch(
        self, host: HostState, kind: str, body: dict[str, Any], raw: bytes, prepared: Prepared
    ) -> None:
        if kind == COMMIT:
            await self._commit(host, body, raw, prepared=prepared)
        elif kind == IDENTITY:
            await self._identity(host, body)
        elif kind == ACCOUNT:
            await self._account_event(host, body)
        elif kind == SYNC:
            await self._sync(host, body, raw)
        else:
            self._drop(host, "unknown-kind", kind[:40])

    def _advance(self, host: HostState, seq: int | None) -> None:
        if seq is not None and seq > host.cursor:
            host.cursor = seq
            self.outbox.cursor(host.hostname, seq)

    def _drop(self, host: HostState, why: str, detail: str) -> None:
        self.counters.drop(host, why)
        log.info("relay: dropped an event from %s: %s %s", host.hostname, why, detail[:300])

    # -- whose is it -----------------------------------------------------------------
    def _did(self, host: HostState, value: object) -> str | None:
        if type(value) is str:
            try:
                return syntax.validate_did(value)
            except AtprotoError:
                pass
        self._drop(host, "invalid-did", repr(value)[:100])
        return None

    async def _owner(self, host: HostState, did: str, *, force: bool = False) -> Identity | None:
        """``did``'s identity if ``host`` is its current host, else None (dropped)."""
        try:
            ident = await (
                self.identities.refresh(did, force=True) if force else self.identities.get(did)
            )
            if ident.host != host.hostname and not force:
                ident = await self.identities.refresh(did)
        except IdentityError as exc:
            self._drop(host, "unknown-did", exc.message)
            return None
        if ident.host != host.hostname:
            self._drop(host, "not-account-host", f"{did} is hosted at {ident.host}")
            return None
        return ident

    def _state(self, did: str, host: HostState) -> AccountState:
        acct = self.accounts.get(did)
        if acct is None:
            acct = self.accounts[did] = AccountState(did, host.hostname)
            self.outbox.account(acct)
        elif acct.hostname != host.hostname:
            acct.hostname = host.hostname  # it moved; its DID document says so
            self.outbox.account(acct)
        return acct

    # -- the event types -------------------------------------------------------------
    async def _commit(
        self,
        host: HostState,
        body: dict[str, Any],
        raw: bytes,
        *,
        replay: bool = False,
        prepared: Prepared | None = None,
    ) -> None:
        did = self._did(host, body.get("repo"))
        if did is None:
            return
        ident = await self._owner(host, did)
        if ident is None:
            return
        acct = self.accounts.get(did)
        if acct is not None:
            if acct.status == DESYNCHRONIZED or (did in self._replaying and not replay):
                self._keep_aside(host, acct, body, raw)
                return
            if not acct.active:
                self._drop(host, "account-inactive", f"{did} is {acct.status}")
                return
        try:
            checked = await self._verified(
                host, ident, body, raw, self.verifier.commit, prepared=prepared
            )
        except AtprotoError as exc:
            self._drop(host, reason(exc), f"{did}: {exc.message}")
            return
        if checked is None:
            return
        if acct is not None and acct.rev is not None and checked.rev <= acct.rev:
            if not replay:
                self._drop(host, "rev-not-increasing", f"{did}: {checked.rev} after {acct.rev}")
            return
        if (
            acct is not None
            and acct.data is not None
            and (checked.prev_data is None or str(checked.prev_data) != acct.data)
        ):
            why = f"prevData {checked.prev_data}, last verified {acct.data}"
            self._desynchronize(host, acct, body, raw, why)
            return
        acct = self._state(did, host)
        acct.head, acct.rev, acct.data = str(checked.commit), checked.rev, str(checked.data)
        self.outbox.account(acct)
        frame = prepared.frame if prepared is not None else None
        if frame is not None and frame.wire is not None and frame.body is body:
            self.outbox.emit(did, COMMIT, _commit_body(frame.wire, self.clock()), wire=True)
        else:
            self.outbox.emit(did, COMMIT, _commit_body(body, self.clock()))
        self.counters.verified += 1

    async def _verified(
        self,
        host: HostState,
        ident: Identity,
        body: dict[str, Any],
        raw: bytes,
        check: Callable[[Mapping[str, Any], PublicKey, bytes], Any],
        *,
        prepared: Prepared | None = None,
    ) -> Any:
        """``check(body, key)`` (or the check ``prepared`` started under the same key);
        on a bad signature, once more with a key fetched again if it changed. None
        (dropped) when the account has no key."""
        key = ident.key
        if key is None:
            self._drop(host, "no-signing-key", ident.did)
            return None
        early = prepared.take(key) if prepared is not None else None
        try:
            if early is not None:
                return await early
            return await check(body, key, raw)
        except BadSignatureError:
            try:
                fresh = await self.identities.refresh(ident.did)
            except IdentityError:
                raise BadSignatureError(f"{ident.did}: signature does not verify") from None
            if fresh.key is None or same_key(fresh.key, key):
                raise
            return await check(body, fresh.key, raw)

    async def _identity(self, host: HostState, body: dict[str, Any]) -> None:
        did = self._did(host, body.get("did"))
        if did is None:
            return
        ident = await self._owner(host, did, force=True)
        if ident is None:
            return
        self._state(did, host)
        out: dict[str, Any] = {"did": did, "time": _time(body, self.clock())}
        if ident.handle is not None:
            out["handle"] = ident.handle
        self.outbox.emit(did, IDENTITY, out)

    async def _account_event(self, host: HostState, body: dict[str, Any]) -> None:
        did = self._did(host, body.get("did"))
        if did is None:
            return
        active = body.get("active")
        status = body.get("status")
        if type(active) is not bool or not (
            status is None
            or (type(status) is str and 0 < len(status) <= MAX_STATUS_LENGTH and status.isascii())
        ):
            self._drop(host, "invalid-account-event", f"{did}: active={active!r}")
            return
        if await self._owner(host, did) is None:
            return
        acct = self._state(did, host)
        if acct.status != DESYNCHRONIZED or not active:
            acct.active = active
            acct.status = None if active else status
        self.outbox.account(acct)
        out: dict[str, Any] = {"did": did, "active": active, "time": _time(body, self.clock())}
        if status is not None and not active:
            out["status"] = status
        self.outbox.emit(did, ACCOUNT, out)

    async def _sync(self, host: HostState, body: dict[str, Any], raw: bytes) -> None:
        did = self._did(host, body.get("did"))
        if did is None:
            return
        ident = await self._owner(host, did)
        if ident is None:
            return
        try:
            checked = await self._verified(host, ident, body, raw, self.verifier.sync)
        except AtprotoError as exc:
            self._drop(host, reason(exc), f"{did}: {exc.message}")
            return
        if checked is None:
            return
        acct = self._state(did, host)
        if acct.rev is not None and checked.rev <= acct.rev:
            self._drop(host, "rev-not-increasing", f"{did}: #sync {checked.rev} after {acct.rev}")
            return
        self._aside.pop(did, None)
        self._reset(
            acct,
            commit=checked.commit,
            rev=checked.rev,
            data=checked.data,
            block=checked.block,
            source=body,
        )

    def _reset(
        self,
        acct: AccountState,
        *,
        commit: CID,
        rev: str,
        data: CID,
        block: bytes,
        source: Mapping[str, Any] | None = None,
    ) -> None:
        """Make a verified commit the account's state and say so with ``#sync``."""
        was_desynchronized = acct.status == DESYNCHRONIZED
        acct.head, acct.rev, acct.data = str(commit), rev, str(data)
        if was_desynchronized:
            acct.active, acct.status = True, None
        self.outbox.account(acct)
        now = self.clock()
        blocks = source.get("blocks") if source is not None else None
        self.outbox.emit(
            acct.did,
            SYNC,
            {
                "did": acct.did,
                "rev": rev,
                "blocks": blocks
                if type(blocks) is bytes
                else write_car([commit], [(commit, block)]),
                "time": _time(source or {}, now),
            },
        )
        if was_desynchronized:
            self.outbox.emit(
                acct.did, ACCOUNT, {"did": acct.did, "active": True, "time": iso_time(now)}
            )

    # -- losing and finding the thread -----------------------------------------------
    def _keep_aside(
        self, host: HostState, acct: AccountState, body: dict[str, Any], raw: bytes
    ) -> None:
        kept = self._aside.setdefault(acct.did, [])
        if len(kept) >= MAX_KEPT_ASIDE:
            self._drop(host, "desynchronized", f"{acct.did}: too many commits kept aside")
            return
        kept.append((host, body, raw))

    def _desynchronize(
        self, host: HostState, acct: AccountState, body: dict[str, Any], raw: bytes, why: str
    ) -> None:
        log.warning(
            "relay: %s is desynchronized (%s); resyncing from %s", acct.did, why, host.hostname
        )
        self.counters.desyncs += 1
        acct.active, acct.status = False, DESYNCHRONIZED
        self.outbox.account(acct)
        self.outbox.emit(
            acct.did,
            ACCOUNT,
            {
                "did": acct.did,
                "active": False,
                "status": DESYNCHRONIZED,
                "time": iso_time(self.clock()),
            },
        )
        self._keep_aside(host, acct, body, raw)
        self.start_resync(acct.did)

    def start_resync(self, did: str) -> None:
        """Resynchronize ``did`` in the background unless that is already under way."""
        task = self._resyncs.get(did)
        if task is None or task.done():
            self._resyncs[did] = asyncio.create_task(self._resync(did))

    async def _resync(self, did: str) -> None:
        lo, hi = self.settings.resync_backoff_s
        backoff = Backoff(lo, hi)
        while True:
            acct = self.accounts.get(did)
            if acct is None or acct.status != DESYNCHRONIZED:
                return
            host = self.hosts.get(acct.hostname)
            try:
                if host is None:
                    raise ResyncError(f"{acct.hostname} is not a host this relay follows")
                ident = await self.identities.refresh(did)
                if ident.key is None:
                    raise ResyncError(f"{did} has no signing key")
                repo = await fetch_repo(self.http, host.url, did, ident.key)
                if acct.status != DESYNCHRONIZED:
                    return  # a #sync settled it meanwhile
                if acct.rev is not None and (repo.rev is None or repo.rev < acct.rev):
                    raise ResyncError(
                        f"{host.hostname} serves rev {repo.rev}, older than {acct.rev}"
                    )
            except (PlazaError, httpx.HTTPError) as exc:
                self.counters.resync_failures += 1
                pause = backoff.next()
                log.warning("relay: resync of %s failed (%s); again in %.1fs", did, exc, pause)
                await asyncio.sleep(pause)
                continue
            self.counters.resyncs += 1
            block = repo.blocks[repo.commit_cid]
            await self._replay(acct, repo.commit_cid, repo.rev or "", repo.data, block)
            if acct.status != DESYNCHRONIZED:
                return
            await asyncio.sleep(backoff.next())

    async def _replay(
        self, acct: AccountState, commit: CID, rev: str, data: CID, block: bytes
    ) -> None:
        """Reset to the fetched head, then try the commits kept aside on top of it."""
        did = acct.did
        self._replaying.add(did)
        try:
            self._reset(acct, commit=commit, rev=rev, data=data, block=block)
            while acct.status != DESYNCHRONIZED:
                kept = self._aside.pop(did, None)
                if not kept:
                    break
                for origin, body, raw in kept:
                    if acct.status == DESYNCHRONIZED:
                        self._keep_aside(origin, acct, body, raw)
                        continue
                    await self._commit(origin, body, raw, replay=True)
        finally:
            self._replaying.discard(did)

    async def aclose(self) -> None:
        self.verifier.close()
        tasks = list(self._resyncs.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


_COMMIT_FIELDS: Final = ("repo", "commit", "rev", "since", "blocks", "ops", "blobs", "prevData")


def _commit_body(body: Mapping[str, Any], now: float) -> dict[str, Any]:
    """The ``#commit`` the relay emits: the host's fields the lexicon defines, with the
    host's ``time`` (when it was first broadcast)."""
    out = {name: body[name] for name in _COMMIT_FIELDS if name in body}
    out.setdefault("since", None)
    out.setdefault("blobs", [])
    out["rebase"] = False
    out["tooBig"] = False
    out["time"] = _time(body, now)
    return out


def _time(body: Mapping[str, Any], now: float) -> str:
    value = body.get("time")
    if type(value) is str and 0 < len(value) <= 40:
        return value
    return iso_time(now)


def _peek_seq(raw: bytes) -> int | None:
    """The ``seq`` of a frame too large to handle, if it can be read at all."""
    try:
        values = libipld.decode_dag_cbor_multi(raw)
    except (ValueError, TypeError, OverflowError, RecursionError):
        return None
    if len(values) == 2 and type(values[1]) is dict:
        seq = values[1].get("seq")
        if type(seq) is int:
            return seq
    return None
