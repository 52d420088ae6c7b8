"""Following a firehose: every event verified, indexed with its cursor, in order.

Theory of operation. :meth:`Follower.run` keeps one WebSocket open to a
``com.atproto.sync.subscribeRepos`` endpoint (a relay's, or a single PDS's: the frames
are the same), starting after the cursor stored for that source, and reconnects with a
growing pause when it drops. Frames are handled one at a time, in order:

- ``#commit``: checked the sync v1.1 way (:func:`plaza.atproto.sync.verify_commit_body`:
  slice, signature against the account's key from the directory, ops, inversion to
  ``prevData``); a signature that fails refreshes the key once and tries again. Then,
  in one transaction, its ops are indexed, the account's ``rev`` moves on and the cursor
  is stored. A commit at or below the account's indexed ``rev`` is already held (a
  backfill got there first) and only moves the cursor.
- A repository seen for the first time, or whose commit does not follow the indexed
  ``rev`` (``since`` differs: events were missed), is backfilled from its host instead
  (:mod:`plaza.services.appview.backfill`); so is every ``#sync``.
- ``#identity``: the DID's document is read again and its handle and host recorded.
- ``#account``: the account's active flag is recorded.

An account first heard of through another's record (a follow, a like, a reply, a
mention) is backfilled too, by a second task, one account at a time; a backfill older
than what the firehose has since delivered for that account changes nothing.

Commits that simply follow what the index holds of their account are written in runs:
the frames that arrived while the previous run was written, checked one by one, then
indexed in one transaction with the cursor of the last (:meth:`Follower.handle_batch`).

A frame that fails its checks is dropped (counted in :attr:`Follower.dropped` by
reason) and only moves the cursor: bad input changes nothing else. :meth:`indexed`
waits until the cursor reaches a sequence number, so tests and callers wait on the
follower, not on the clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Mapping
from typing import Any, Final

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from plaza.atproto import cbor
from plaza.atproto.errors import AtprotoError, BadSignatureError
from plaza.atproto.sync import VerifiedCommit, verify_commit_body
from plaza.errors import PlazaError
from plaza.services.appview.backfill import apply_repo, fetch_repo, mark_failed, verify_repo
from plaza.services.appview.indexer import Indexer
from plaza.services.appview.schema import REPO_CURRENT
from plaza.services.identities import Identities

log = logging.getLogger("plaza.appview")

MAX_FRAME_BYTES: Final = 5_000_000
MAX_BATCH: Final = 200


class FrameError(PlazaError):
    code = "InvalidFrame"
    status = 400


def decode_frame(frame: bytes) -> tuple[str | None, dict[str, Any]]:
    """``(type, body)`` of a firehose frame; type None for an error frame."""
    try:
        header, end = cbor.decode_first(frame)
        body = cbor.decode_fast(frame[end:])
    except AtprotoError as exc:
        raise FrameError(f"undecodable frame: {exc.message}") from exc
    if not isinstance(header, dict) or not isinstance(body, dict):
        raise FrameError("frame header and body must be maps")
    op = header.get("op")
    if op == -1:
        return None, body
    kind = header.get("t")
    if op != 1 or not isinstance(kind, str):
        raise FrameError("frame header needs op 1 and a type")
    return kind, body


class Follower:
    """Indexes one firehose source (see the module docstring)."""

    def __init__(
        self,
        source_url: str,
        indexer: Indexer,
        identities: Identities,
        http: httpx.AsyncClient,
        *,
        max_backoff_s: float = 30.0,
    ) -> None:
        self.source_url = source_url.rstrip("/")
        self.source = self.source_url
        self.indexer = indexer
        self.store = indexer.store
        self.identities = identities
        self.http = http
        self.max_backoff_s = max_backoff_s
        self.dropped: Counter[str] = Counter()
        self.events = 0
        self.backfills = 0
        self.runs = 0  # transactions that wrote a run of commits
        self.connected = asyncio.Event()
        self._seq = self.store.cursor(self.source) or 0
        self._advanced = asyncio.Condition()
        self._heard: asyncio.Queue[str] = asyncio.Queue()

    @property
    def seq(self) -> int:
        """The last sequence number indexed."""
        return self._seq

    async def indexed(self, seq: int) -> None:
        """Return once every event up to ``seq`` is indexed."""
        async with self._advanced:
            await self._advanced.wait_for(lambda: self._seq >= seq)

    # -- the connection --------------------------------------------------------------
    @property
    def pending_backfills(self) -> int:
        return self._heard.qsize()

    async def run(self) -> None:
        """Follow the source until cancelled, reconnecting when the stream drops; a
        second task backfills the accounts the index hears of (see :meth:`_backfiller`)."""
        worker = asyncio.create_task(self._backfiller())
        try:
            await self._follow()
        finally:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker

    async def follow_heard(self) -> None:
        """Backfill the accounts heard of, until cancelled: the second task of :meth:`run`,
        for callers that feed :meth:`handle_batch` themselves (the bus indexer)."""
        await self._backfiller()

    async def _backfiller(self) -> None:
        """Backfill, one at a time, each account first heard of through a reference (a
        follow, like, reply or mention of an account that has sent no event yet)."""
        while True:
            did = await self._heard.get()
            state = self.indexer.db.scalar("SELECT repo_state FROM actors WHERE did = ?", (did,))
            if state == REPO_CURRENT:
                continue
            try:
                await self._backfill(did)
            except (AtprotoError, PlazaError) as exc:
                self.dropped[f"backfill:{type(exc).__name__}"] += 1

    async def _follow(self) -> None:
        pause = 0.1
        ws_base = self.source_url.replace("https://", "wss://").replace("http://", "ws://")
        while True:
            url = f"{ws_base}/xrpc/com.atproto.sync.subscribeRepos?cursor={self._seq}"
            try:
                async with connect(url, max_size=MAX_FRAME_BYTES, compression=None) as ws:
                    self.connected.set()
                    pause = 0.1
                    await self._consume(ws)
            except (TimeoutError, OSError, WebSocketException) as exc:
                log.info("firehose %s dropped: %s", self.source_url, exc)
            finally:
                self.connected.clear()
            await asyncio.sleep(pause)
            pause = min(pause * 2, self.max_backoff_s)

    async def _consume(self, ws: ClientConnection) -> None:
        """Read frames on one task and index them on this one, in batches of what has
        arrived meanwhile (at most :data:`MAX_BATCH`), so a busy stream costs one
        transaction per batch rather than per event."""
        frames: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=4 * MAX_BATCH)

        async def read() -> None:
            try:
                async for frame in ws:
                    if isinstance(frame, bytes):
                        await frames.put(frame)
            except asyncio.CancelledError:
                raise  # the consumer stopped: it needs no end marker
            except BaseException:
                await frames.put(None)
                raise
            await frames.put(None)

        reader = asyncio.create_task(read())
        try:
            while True:
                first = await frames.get()
                if first is None:
                    break
                batch = [first]
                ended = False
                while len(batch) < MAX_BATCH and not frames.empty():
                    more = frames.get_nowait()
                    if more is None:
                        ended = True
                        break
                    batch.append(more)
                await self.handle_batch(batch)
                if ended:
                    break
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        if reader.done() and not reader.cancelled() and reader.exception() is not None:
            raise reader.exception()  # type: ignore[misc]

    async def handle_batch(self, frames: list[bytes]) -> None:
        """Index frames in order: runs of commits to accounts already indexed, each
        checked first, are written in one transaction with the cursor of the last;
        anything else (a backfill, an identity, a frame that fails) goes through
        :meth:`handle` on its own, after the run before it is written. The indexed
        ``rev`` and state of the batch's accounts are read in one query (again after
        anything handled on its own, which may have changed them). Each frame is
        decoded once."""
        decoded: list[tuple[str | None, dict[str, Any]] | None] = []
        for frame in frames:
            try:
                decoded.append(decode_frame(frame))
            except FrameError:
                decoded.append(None)
        run: list[tuple[int, str, VerifiedCommit]] = []
        revs: dict[str, str | None] = {}  # the run's accounts' revs, not yet written
        held: dict[str, tuple[str | None, int]] | None = None
        for k, frame in enumerate(frames):
            if held is None:
                held = self._held_states(decoded[k:])
            event = decoded[k]
            ready = None if event is None else await self._ready_commit(event, revs, held)
            if ready is not None:
                run.append(ready)
                revs[ready[1]] = ready[2].rev
                continue
            await self._write_run(run)
            run, revs, held = [], {}, None
            await self.handle(frame)
        await self._write_run(run)

    def _held_states(
        self, events: list[tuple[str | None, dict[str, Any]] | None]
    ) -> dict[str, tuple[str | None, int]]:
        """``did -> (rev, repo_state)`` of the accounts whose commits are in ``events``."""
        dids: set[str] = set()
        for event in events:
            if event is not None:
                kind, body = event
                did = body.get("repo")
                if kind == "#commit" and isinstance(did, str):
                    dids.add(did)
        out: dict[str, tuple[str | None, int]] = {}
        wanted = sorted(dids)
        for i in range(0, len(wanted), 500):
            chunk = wanted[i : i + 500]
            marks = ",".join("?" * len(chunk))
            for did, rev, state in self.indexer.db.query(
                f"SELECT did, rev, repo_state FROM actors WHERE did IN ({marks})", chunk
            ):
                out[str(did)] = (rev, int(state))
        return out

    async def _ready_commit(
        self,
        event: tuple[str | None, dict[str, Any]],
        revs: dict[str, str | None],
        held: dict[str, tuple[str | None, int]],
    ) -> tuple[int, str, VerifiedCommit] | None:
        """``(seq, did, verified)`` for a decoded ``#commit`` that simply follows what the
        index (``held``, or the run) holds of its account and verifies; None for
        anything else."""
        try:
            kind, body = event
            seq = body.get("seq")
            if kind != "#commit" or type(seq) is not int or seq <= self._seq:
                return None
            did = _did(body)
            if did in revs:
                held_rev = revs[did]
            else:
                state = held.get(did)
                if state is None or state[1] != REPO_CURRENT:
                    return None
                held_rev = state[0]
            rev, since = body.get("rev"), body.get("since")
            if not isinstance(rev, str) or held_rev is None or rev <= held_rev:
                return None
            if since is not None and since != held_rev:
                return None
            ident = await self.identities.get(did)
            if ident.key is None:
                return None
            return seq, did, verify_commit_body(body, ident.key, require_prev_data=False)
        except (AtprotoError, PlazaError):
            return None  # handle() takes it again, and drops or recovers it

    async def _write_run(self, run: list[tuple[int, str, VerifiedCommit]]) -> None:
        if not run:
            return
        with self.store.transaction():
            for _, did, verified in run:
                self._apply(did, verified, rev=False)
            last: dict[str, str | None] = {did: verified.rev for _, did, verified in run}
            self.indexer.db.executemany(
                "UPDATE actors SET rev = ? WHERE did = ?", [(r, d) for d, r in last.items()]
            )
            self.store.set_cursor(self.source, run[-1][0])
        self.events += len(run)
        self.runs += 1
        await self._advance(run[-1][0])
        for did in self.store.take_heard_of():
            self._heard.put_nowait(did)

    def _apply(self, did: str, verified: VerifiedCommit, *, rev: bool = True) -> None:
        """Index a verified commit's ops and (``rev``) its rev, inside the caller's
        transaction."""
        for op in verified.ops:
            collection, _, rkey = op.path.partition("/")
            block = verified.record_block(op)
            if op.cid is None:
                self.indexer.delete(did, collection, rkey)
            elif block is not None:
                self.indexer.put(did, collection, rkey, op.cid, block)
        if rev:
            self.indexer.db.execute("UPDATE actors SET rev = ? WHERE did = ?", (verified.rev, did))

    async def handle(self, frame: bytes) -> None:
        """Index one frame (see the module docstring)."""
        try:
            kind, body = decode_frame(frame)
        except FrameError:
            self.dropped["bad_frame"] += 1
            return
        if kind is None:
            log.warning("firehose %s: error frame %s", self.source_url, body.get("error"))
            return
        seq = body.get("seq")
        if type(seq) is not int or seq < 0:
            if kind != "#info":
                self.dropped["bad_seq"] += 1
            return
        if seq <= self._seq:
            return  # a replayed event already indexed
        self.events += 1
        try:
            if kind == "#commit":
                await self._commit(seq, body)
            elif kind == "#sync":
                await self._backfill(_did(body), force=True)
            elif kind == "#identity":
                await self._identity(_did(body))
            elif kind == "#account":
                self._account(_did(body), body.get("active") is True)
        except (AtprotoError, PlazaError) as exc:
            self.dropped[type(exc).__name__] += 1
            log.info("firehose %s: seq %d dropped: %s", self.source_url, seq, exc)
        await self._advance(seq)
        for did in self.store.take_heard_of():
            self._heard.put_nowait(did)

    async def _advance(self, seq: int) -> None:
        if self.store.cursor(self.source) != seq:
            with self.store.transaction():
                self.store.set_cursor(self.source, seq)
        async with self._advanced:
            self._seq = seq
            self._advanced.notify_all()

    # -- events ----------------------------------------------------------------------
    async def _commit(self, seq: int, body: Mapping[str, Any]) -> None:
        did = _did(body)
        rev, since = body.get("rev"), body.get("since")
        state = self.indexer.db.one("SELECT rev, repo_state FROM actors WHERE did = ?", (did,))
        held_rev = None if state is None else state[0]
        if state is None or state[1] != REPO_CURRENT or (since is not None and since != held_rev):
            if isinstance(rev, str) and held_rev is not None and rev <= held_rev:
                return
            await self._backfill(did)
            return
        if isinstance(rev, str) and held_rev is not None and rev <= held_rev:
            return
        ident = await self.identities.get(did)
        if ident.key is None:
            ident = await self.identities.refresh(did)
        if ident.key is None:
            raise FrameError(f"{did} has no signing key")
        try:
            verified = verify_commit_body(body, ident.key, require_prev_data=False)
        except BadSignatureError:
            ident = await self.identities.refresh(did)
            if ident.key is None:
                raise
            verified = verify_commit_body(body, ident.key, require_prev_data=False)
        with self.store.transaction():
            self._apply(did, verified)
            self.store.set_cursor(self.source, seq)

    async def _backfill(self, did: str, *, force: bool = False) -> None:
        ident = await self.identities.get(did)
        if ident.pds is None or ident.key is None:
            raise FrameError(f"{did} names no host or no signing key")
        if self.store.find_actor(did) is None or _handle_unknown(self.indexer, did):
            with self.store.transaction():
                self.indexer.set_identity(did, ident.handle, ident.pds)
        try:
            car = await fetch_repo(self.http, ident.pds, did)
            try:
                repo = verify_repo(car, did, ident.key)
            except BadSignatureError:
                ident = await self.identities.refresh(did)
                repo = verify_repo(car, did, ident.key)
            apply_repo(self.indexer, repo, force=force)
            self.backfills += 1
        except (AtprotoError, PlazaError):
            mark_failed(self.indexer, did)
            raise

    async def _identity(self, did: str) -> None:
        ident = await self.identities.refresh(did, force=True)
        with self.store.transaction():
            self.indexer.set_identity(did, ident.handle, ident.pds)

    def _account(self, did: str, active: bool) -> None:
        with self.store.transaction():
            self.store.actor_id(did)
            self.indexer.db.execute(
                "UPDATE actors SET active = ? WHERE did = ?", (int(active), did)
            )

    async def aclose(self) -> None:
        with contextlib.suppress(Exception):
            await self.http.aclose()


def _did(body: Mapping[str, Any]) -> str:
    did = body.get("repo", body.get("did"))
    if not isinstance(did, str) or not did.startswith("did:"):
        raise FrameError("event names no DID")
    return did


def _handle_unknown(indexer: Indexer, did: str) -> bool:
    return indexer.db.scalar("SELECT handle FROM actors WHERE did = ?", (did,)) is None
