"""The firehose follower: keeps every archived repository at its head, verified.

Theory of operation. The follower reads one ``com.atproto.sync.subscribeRepos``
stream (normally the relay's) from the cursor the store keeps, and handles each frame
to completion before reading the next. Every event either changes the archive — in one
transaction with the cursor moving past it — or is dropped and counted (moving the
cursor when its ``seq`` is known); nothing else is ever written.

- ``#commit``: verified with :func:`plaza.atproto.sync.verify_commit_body` against the
  account's current key from the directory (looked up again once when the signature
  fails, in case the key rotated). Its rev must be newer than the archived one, and its
  ``prevData`` the archived data root; then its blocks land and the head moves
  (:func:`plaza.services.archive.changes.commit_change`). A DID the archive has no base
  for takes the event's slice as its base when the slice is a whole repository (a new
  account's first commit) and verifies as one; otherwise, and whenever the chain breaks
  (``prevData`` is not the archived data, a ``tooBig`` event, a slice that lacks a
  node), the DID is marked for a resync: the repo fetcher gets the whole repository
  from the DID's PDS. Events of a DID waiting for a resync are skipped; the fetched
  repository is newer than them.
- ``#sync``: the signed commit is verified; if its data is the archived data only the
  head moves, else the DID is marked for a resync.
- ``#identity``: the DID's cached key and PDS are forgotten.
- ``#account``: the status is recorded (it changes nothing archived: ``#account`` is
  not signed, so a host cannot make the archive drop a repository).

The connection is retried with doubling delays while the source is unreachable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from plaza.atproto import syntax
from plaza.atproto.car import read_car
from plaza.atproto.cid import CID
from plaza.atproto.commit import decode_commit, verify_commit
from plaza.atproto.crypto import PublicKey
from plaza.atproto.errors import (
    AtprotoError,
    BadSignatureError,
    DecodeError,
    MissingBlockError,
)
from plaza.atproto.repo_verify import import_car
from plaza.atproto.sync import MAX_SLICE_BYTES, VerifiedCommit, verify_commit_body
from plaza.services.archive.blobs import BlobFiles
from plaza.services.archive.changes import commit_change, repo_base
from plaza.services.archive.errors import FetchError
from plaza.services.archive.frames import Frame, FrameError, parse_frame
from plaza.services.archive.hosts import UnknownDidError, signing_key
from plaza.services.archive.metrics import ArchiveMetrics
from plaza.services.archive.settings import ArchiveSettings
from plaza.services.archive.store import ArchiveStore, RepoHead, StaleHeadError
from plaza.services.pds.identity import DirectoryClient

log = logging.getLogger("plaza.archive")

Wake = Callable[[], None]
CLOSE_TOO_BIG = 1009  # RFC 6455: a message too big to process


class Follower:
    """Reads the firehose into the store (see the module docstring)."""

    def __init__(
        self,
        settings: ArchiveSettings,
        store: ArchiveStore,
        blobs: BlobFiles,
        directory: DirectoryClient,
        metrics: ArchiveMetrics,
        *,
        wake_resync: Wake,
        wake_blobs: Wake,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.settings = settings
        self.store = store
        self.blobs = blobs
        self.directory = directory
        self.metrics = metrics
        self.wake_resync = wake_resync
        self.wake_blobs = wake_blobs
        self.clock = clock
        self.sleep = sleep

    # -- the connection ----------------------------------------------------------------
    async def run(self) -> None:
        """Follow the firehose until cancelled, reconnecting with backoff."""
        delay = self.settings.retry_base_s
        while True:
            try:
                received = await self.follow_once()
            except (OSError, InvalidHandshake, InvalidURI, TimeoutError) as exc:
                log.warning("archive: firehose %s unreachable: %s", self.settings.firehose_url, exc)
                received = 0
            except Exception:
                # The store failed (nothing of the event was kept): read it again later.
                log.exception("archive: following %s failed", self.settings.firehose_url)
                received = 0
            if received:
                delay = self.settings.retry_base_s
            await self.sleep(delay)
            delay = min(delay * 2, self.settings.retry_max_s)

    async def follow_once(self) -> int:
        """One connection, from the stored cursor (0 on the first start: the source's
        whole retained window), until the source closes it; returns the frames read."""
        cursor = self.store.cursor()
        url = f"{self.settings.firehose_url}?cursor={0 if cursor is None else cursor}"
        received = 0
        # Frames up to twice the limit are read and refused one by one; a larger one
        # ends the connection (the limit on memory a source can make the archive use).
        async with connect(
            url, max_size=2 * self.settings.max_frame_bytes, open_timeout=10, ping_interval=20
        ) as ws:
            self.metrics.connected = True
            self.metrics.connections += 1
            try:
                while True:
                    try:
                        message = await ws.recv()
                    except ConnectionClosed as exc:
                        if exc.sent is not None and exc.sent.code == CLOSE_TOO_BIG:
                            self._past_unreadable()
                        return received
                    received += 1
                    if isinstance(message, str):
                        self.metrics.drop("malformed_frame")
                        continue
                    await self.handle(message)
            finally:
                self.metrics.connected = False

    def _past_unreadable(self) -> None:
        """The frame after the cursor was too large to read at all. Events come in
        order and each one read moved the cursor, so that frame's seq is past it, and no
        event lies between: moving the cursor by one skips nothing else, and repeated
        this converges past the frame whatever its seq."""
        self.metrics.drop("oversized_frame")
        self.store.advance((self.store.cursor() or 0) + 1)

    # -- one frame ---------------------------------------------------------------------
    async def handle(self, data: bytes) -> None:
        """Handle one frame; every failure is counted, none escapes."""
        if len(data) > self.settings.max_frame_bytes:
            self.metrics.drop("oversized_frame")
            with contextlib.suppress(FrameError):
                self._skip(parse_frame(data).seq)
            return
        try:
            frame = parse_frame(data)
        except FrameError:
            self.metrics.drop("malformed_frame")
            return
        self.metrics.events[frame.kind] += 1
        try:
            await self._dispatch(frame)
        except UnknownDidError as exc:  # no such account: nothing to archive
            log.info("archive: %s", exc.message)
            self.metrics.drop("unknown_did")
            self._skip(frame.seq)
        except FetchError as exc:  # the directory could not tell the key now: try later
            log.info("archive: %s", exc.message)
            self._resync(frame)
        except (AtprotoError, KeyError, TypeError, ValueError) as exc:
            log.info("archive: dropped a %s event: %s", frame.kind, exc)
            self.metrics.drop("malformed_event")
            self._skip(frame.seq)

    async def _dispatch(self, frame: Frame) -> None:
        kind, body, seq = frame.kind, frame.body, frame.seq
        if kind == "error":
            log.warning("archive: the firehose sent an error: %s", body)
            self.metrics.drop("error_frame")
        elif kind == "#info":
            log.info("archive: firehose info: %s", body)
        elif seq is None:
            self.metrics.drop("malformed_event")
        else:
            self.metrics.last_seq = seq
            await self._event(kind, body, seq)

    async def _event(self, kind: str, body: dict[str, Any], seq: int) -> None:
        if kind == "#commit":
            await self._commit(body, seq)
        elif kind == "#sync":
            await self._sync(body, seq)
        elif kind == "#identity":
            self.directory.forget(_did(body.get("did")))
            self.store.advance(seq)
        elif kind == "#account":
            active = body.get("active")
            status = body.get("status")
            if type(active) is not bool or (status is not None and type(status) is not str):
                raise DecodeError("#account needs active (bool) and an optional status")
            self.store.set_account(_did(body.get("did")), active, status, seq)
        else:
            self.store.advance(seq)  # a kind this archive does not know: nothing to keep

    def _skip(self, seq: int | None) -> None:
        if seq is not None:
            self.store.advance(seq)

    def _resync(self, frame: Frame) -> None:
        did = frame.body.get("repo", frame.body.get("did"))
        if type(did) is str and frame.seq is not None:
            self._want_resync(did, frame.seq)
        else:
            self._skip(frame.seq)

    def _want_resync(self, did: str, seq: int) -> None:
        self.metrics.resyncs_wanted += 1
        self.store.want_resync(did, seq, now=self.clock())
        self.wake_resync()

    # -- #commit -----------------------------------------------------------------------
    async def _verified(self, did: str, check: Callable[[PublicKey], Any]) -> Any:
        """``check(key)`` with the DID's cached key, then once more with a fresh one if
        the signature fails (the key may have rotated)."""
        try:
            return check(await signing_key(self.directory, did))
        except BadSignatureError:
            return check(await signing_key(self.directory, did, refresh=True))

    async def _commit(self, body: dict[str, Any], seq: int) -> None:
        did = _did(body.get("repo"))
        head = self.store.head(did)
        if head is not None and head.resync:
            self.store.advance(seq)
            return
        based = head is not None and head.commit_cid is not None
        try:
            verified: VerifiedCommit = await self._verified(
                did, lambda key: verify_commit_body(body, key, require_prev_data=based)
            )
        except BadSignatureError:
            self.metrics.drop("bad_signature")
            self.store.advance(seq)
            return
        except AtprotoError as exc:
            log.info("archive: invalid #commit of %s: %s", did, exc.message)
            self.metrics.drop("invalid_commit")
            self.store.advance(seq)
            return
        if head is None or head.commit_cid is None:
            await self._first(did, body, verified, seq)
            return
        assert head.rev is not None and head.data is not None
        if verified.rev is None or verified.rev <= head.rev:
            self.metrics.drop("stale_rev")
            self.store.advance(seq)
            return
        if body.get("tooBig") is True or verified.prev_data != head.data:
            self._want_resync(did, seq)
            return
        await self._apply(head, verified, seq)

    async def _apply(self, head: RepoHead, verified: VerifiedCommit, seq: int) -> None:
        assert head.data is not None and head.commit_cid is not None
        try:
            change = commit_change(
                verified,
                head.data,
                lambda cid: self.store.block(head.id, cid),
                lambda cids: self.store.blocks_among(head.id, cids),
            )
        except MissingBlockError:
            self._want_resync(head.did, seq)
            return
        except AtprotoError as exc:
            log.info("archive: refused #commit of %s: %s", head.did, exc.message)
            self.metrics.drop("invalid_commit")
            self.store.advance(seq)
            return
        try:
            orphans = self.store.apply_commit(change, head.commit_cid, seq)
        except StaleHeadError:
            self._want_resync(head.did, seq)
            return
        self.metrics.commits_applied += 1
        self._unlink(orphans)
        if any(change.blob_refs.values()):
            self.wake_blobs()

    async def _first(
        self, did: str, body: dict[str, Any], verified: VerifiedCommit, seq: int
    ) -> None:
        """The first verified event of a DID: its slice is the base if it holds the whole
        repository (a new account's first commit), else the repository is fetched."""
        blocks: bytes = body["blocks"]  # a bytes field, or verify_commit_body refused it
        key = await signing_key(self.directory, did)
        try:
            repo = import_car(blocks, did=did, key=key, max_bytes=MAX_SLICE_BYTES)
            base = repo_base(repo)
        except AtprotoError:
            self._want_resync(did, seq)
            return
        if repo.commit_cid != verified.commit_cid:
            self._want_resync(did, seq)
            return
        try:
            orphans = self.store.rebase(base, None, seq)
        except StaleHeadError:
            self._want_resync(did, seq)
            return
        self.metrics.commits_applied += 1
        self._unlink(orphans)
        if base.blob_refs:
            self.wake_blobs()

    # -- #sync -------------------------------------------------------------------------
    async def _sync(self, body: dict[str, Any], seq: int) -> None:
        did = _did(body.get("did"))
        rev, blocks = body.get("rev"), body.get("blocks")
        if type(rev) is not str or type(blocks) is not bytes:
            raise DecodeError("#sync needs rev (string) and blocks (bytes)")
        head = self.store.head(did)
        if head is not None and head.resync:
            self.store.advance(seq)
            return
        car = read_car(blocks, max_total_bytes=MAX_SLICE_BYTES)
        commit_bytes = car.blocks.get(car.root)
        if commit_bytes is None:
            raise DecodeError("#sync blocks lack their root commit")
        commit = decode_commit(commit_bytes)
        if commit.did != did or commit.rev != rev:
            raise DecodeError("#sync commit is for another DID or rev")
        try:
            await self._verified(did, lambda key: verify_commit(commit, key))
        except BadSignatureError:
            self.metrics.drop("bad_signature")
            self.store.advance(seq)
            return
        if head is None or head.commit_cid is None or head.rev is None:
            self._want_resync(did, seq)
            return
        if commit.rev <= head.rev:
            self.metrics.drop("stale_rev")
            self.store.advance(seq)
            return
        if commit.data != head.data:
            self._want_resync(did, seq)
            return
        try:
            self.store.move_head(
                did, head.commit_cid, car.root, commit_bytes, rev=commit.rev, seq=seq
            )
        except StaleHeadError:
            self._want_resync(did, seq)
            return
        self.metrics.syncs_applied += 1

    def _unlink(self, orphans: list[CID]) -> None:
        for cid in orphans:
            self.blobs.delete(cid)


def _did(value: object) -> str:
    """The event's DID: only ``did:plc`` identities are archived (their keys and hosts
    come from the directory)."""
    if type(value) is not str:
        raise DecodeError("the event names no DID")
    return syntax.validate_did_plc(value)
