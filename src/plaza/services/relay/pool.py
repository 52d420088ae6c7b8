"""Verifying commits in worker processes, so the relay uses more than one core.

Theory of operation. The stateless checks (:mod:`plaza.services.relay.verify`) are pure
CPU work on bytes, and most of a relay's work. :class:`PoolVerifier` sends them to a
pool of worker processes: each request (the frame's bytes and the account's key: its
algorithm and compressed point) joins a batch, and a batch goes to a worker when it is full or a
millisecond after its first request, so the cost of crossing the process boundary is
shared by many events. A worker decodes the frame itself (nothing but bytes crosses),
caches parsed keys, and answers each request with the checked fields or the refusal's
type and message, which the relay's side raises again as the same error type; the
relay keeps every decision that needs state. Each host's events still wait for their
own answers in order; different hosts' events fill the batches together.

If the pool breaks (a worker killed), verification continues in the relay's process.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Final

from plaza.atproto import errors as atproto_errors
from plaza.atproto.cid import CID
from plaza.atproto.crypto import Alg, PublicKey
from plaza.services.relay.frames import FrameError, decode_frame
from plaza.services.relay.verify import Checked, SyncChecked, check_commit, check_sync

log = logging.getLogger("plaza.relay")

MAX_BATCH: Final = 64
BATCH_WAIT_S: Final = 0.001

Request = tuple[str, bytes, Alg, bytes]  # kind ("commit" or "sync"), frame, key alg, key
Answer = tuple[Any, ...]

_KEYS: dict[tuple[Alg, bytes], PublicKey] = {}


def _key(alg: Alg, compressed: bytes) -> PublicKey:
    key = _KEYS.get((alg, compressed))
    if key is None:
        if len(_KEYS) > 100_000:
            _KEYS.clear()
        key = _KEYS[alg, compressed] = PublicKey.from_compressed(alg, compressed)
    return key


def _worker_start() -> None:
    """Ctrl-C reaches the whole process group, but the relay stops its workers itself;
    and a worker whose relay died (SIGKILL stops no children) exits within a second."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=watch, name="relay-parent-watch", daemon=True).start()


def verify_batch(requests: list[Request]) -> list[Answer]:
    """Run in a worker: the answer to each request, in order."""
    out: list[Answer] = []
    for kind, frame, alg, compressed in requests:
        try:
            body = decode_frame(frame).body
            key = _key(alg, compressed)
            if kind == "commit":
                c = check_commit(body, key)
                prev = None if c.prev_data is None else c.prev_data.raw
                out.append(("ok", c.did, c.rev, c.commit.raw, c.data.raw, prev))
            else:
                s = check_sync(body, key)
                out.append(("ok", s.did, s.rev, s.commit.raw, s.data.raw, s.block))
        except FrameError as exc:
            out.append(("err", "CommitError", exc.message))
        except atproto_errors.AtprotoError as exc:
            out.append(("err", type(exc).__name__, exc.message))
    return out


def _raise(name: str, message: str) -> None:
    kind = getattr(atproto_errors, name, None)
    if not (isinstance(kind, type) and issubclass(kind, atproto_errors.AtprotoError)):
        kind = atproto_errors.CommitError
    raise kind(message)


class PoolVerifier:
    """A :class:`~plaza.services.relay.relay.Verifier` over worker processes."""

    parallel = True

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_worker_start,
        )
        self._batch: list[tuple[Request, asyncio.Future[Answer]]] = []
        self._timer: asyncio.TimerHandle | None = None
        self.batches = 0

    async def commit(self, body: Mapping[str, Any], key: PublicKey, raw: bytes) -> Checked:
        answer = await self._ask(("commit", raw, key.alg, key.compressed), body, key)
        if isinstance(answer, Checked):
            return answer
        return Checked(
            answer[1],
            answer[2],
            CID(answer[3]),
            CID(answer[4]),
            None if answer[5] is None else CID(answer[5]),
        )

    async def sync(self, body: Mapping[str, Any], key: PublicKey, raw: bytes) -> SyncChecked:
        answer = await self._ask(("sync", raw, key.alg, key.compressed), body, key)
        if isinstance(answer, SyncChecked):
            return answer
        return SyncChecked(answer[1], answer[2], CID(answer[3]), CID(answer[4]), answer[5])

    async def _ask(self, request: Request, body: Mapping[str, Any], key: PublicKey) -> Any:
        if self._pool is None:  # broken: verify here
            return check_commit(body, key) if request[0] == "commit" else check_sync(body, key)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Answer] = loop.create_future()
        self._batch.append((request, future))
        if len(self._batch) >= MAX_BATCH:
            self._send()
        elif self._timer is None:
            self._timer = loop.call_later(BATCH_WAIT_S, self._send)
        try:
            answer = await future
        except BrokenProcessPool:
            log.error("relay: the verifying workers broke; verifying in this process")
            self._pool = None
            return check_commit(body, key) if request[0] == "commit" else check_sync(body, key)
        if answer[0] == "err":
            _raise(answer[1], answer[2])
        return answer

    def _send(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._batch = self._batch, []
        if not batch or self._pool is None:
            for _, future in batch:
                future.set_exception(BrokenProcessPool("no pool"))
            return
        self.batches += 1
        try:
            done = asyncio.wrap_future(self._pool.submit(verify_batch, [r for r, _ in batch]))
        except (BrokenProcessPool, RuntimeError) as exc:
            for _, future in batch:
                future.set_exception(BrokenProcessPool(str(exc)))
            return

        def deliver(task: asyncio.Future[list[Answer]]) -> None:
            exc = task.exception()
            for i, (_, future) in enumerate(batch):
                if future.done():
                    continue
                if exc is not None:
                    future.set_exception(BrokenProcessPool(str(exc)))
                else:
                    future.set_result(task.result()[i])

        done.add_done_callback(deliver)

    def close(self) -> None:
        """Stop the workers and wait for them and the pool's manager thread: one left
        running races the interpreter's exit hook, which then writes to a closed pipe."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
