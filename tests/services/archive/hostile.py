"""A firehose the test controls: a real WebSocket server that sends the frames it is
given (valid, forged or broken), and signed repositories to build them from."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from websockets.exceptions import ConnectionClosed
from websockets.sync.server import ServerConnection, serve

from plaza.atproto.cid import CID
from plaza.atproto.crypto import PrivateKey
from plaza.atproto.repo import CommitResult, Repo, Write
from plaza.atproto.sync import encode_ops
from plaza.atproto.tid import int_to_tid
from plaza.services.pds.sequencer import encode_frame
from tests.services.directory.helpers import identity


class HostileFirehose:
    """Serves ``subscribeRepos``: each connection gets, in order, the frames pushed so
    far whose ``seq`` is past its cursor (a frame without one follows its predecessor),
    then each frame pushed later. ``cursors`` records the cursor of every connection."""

    def __init__(self) -> None:
        self.frames: list[tuple[int | None, bytes]] = []
        self.cursors: list[int | None] = []
        self._changed = threading.Condition()
        self._stopping = False

    def push(self, frame: bytes, seq: int | None) -> None:
        with self._changed:
            self.frames.append((seq, frame))
            self._changed.notify_all()

    def _handler(self, ws: ServerConnection) -> None:
        query = parse_qs(urlsplit(ws.request.path if ws.request else "").query)
        cursor = int(query["cursor"][0]) if "cursor" in query else None
        self.cursors.append(cursor)
        i = 0
        with self._changed:
            while i < len(self.frames) and (self.frames[i][0] or 0) <= (cursor or 0):
                i += 1
        try:
            while True:
                with self._changed:
                    while i >= len(self.frames) and not self._stopping:
                        self._changed.wait(0.5)
                    if self._stopping:
                        return
                    frame = self.frames[i][1]
                i += 1
                ws.send(frame)
        except ConnectionClosed:
            return

    @contextmanager
    def running(self) -> Iterator[str]:
        """Serve on a free loopback port; yields the base URL."""
        server = serve(self._handler, "127.0.0.1", 0, max_size=None)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.socket.getsockname()[1]}"
        finally:
            with self._changed:
                self._stopping = True
                self._changed.notify_all()
            server.shutdown()
            thread.join(10)


def commit_frame(
    seq: int,
    result: CommitResult,
    *,
    ops: Any = None,
) -> bytes:
    """The ``#commit`` frame of ``result`` (with other ``ops`` if given)."""
    body: dict[str, Any] = {
        "repo": result.commit.commit.did,
        "commit": result.cid,
        "rev": result.rev,
        "since": result.since,
        "blocks": result.car_slice,
        "ops": encode_ops(result.ops if ops is None else ops),
        "blobs": [],
        "rebase": False,
        "tooBig": False,
        "seq": seq,
        "time": "2026-01-01T00:00:00.000Z",
    }
    if result.prev_data is not None:
        body["prevData"] = result.prev_data
    return encode_frame("#commit", body)


@dataclass
class Author:
    """A repository built with :mod:`plaza.atproto.repo`, signed with ``key``; revs go
    up by one from ``start``."""

    did: str
    key: PrivateKey
    start: int = 1_700_000_000_000_000 << 10
    blocks: dict[CID, bytes] = field(default_factory=dict)
    repo: Repo | None = None
    n: int = 0

    def rev(self, step: int = 1) -> str:
        self.n += step
        return int_to_tid(self.start + self.n)

    def commit(
        self, writes: list[Write], *, key: PrivateKey | None = None, keep: bool = True
    ) -> CommitResult:
        """The next commit (kept as the head unless ``keep`` is False)."""
        signer = key or self.key
        if self.repo is None:
            result = Repo.create(self.did, signer, self.rev(), self.blocks, writes=writes)
        else:
            result = self.repo.apply_writes(writes, signer, self.rev())
        if keep:
            self.blocks.update(result.new_blocks)
            self.repo = result.repo
        return result


def posts(*rkeys: str) -> list[Write]:
    return [
        Write.create(
            "app.bsky.feed.post",
            k,
            {"$type": "app.bsky.feed.post", "text": k, "createdAt": "2026-01-01T00:00:00.000Z"},
        )
        for k in rkeys
    ]


def event_frame(kind: str, seq: int, **body: Any) -> bytes:
    """An ``#identity``, ``#account`` or ``#sync`` frame."""
    return encode_frame(kind, {**body, "seq": seq, "time": "2026-01-01T00:00:00.000Z"})


def registered(dir_url: str) -> Author:
    """A DID in the directory whose signing key the test holds (its host is nowhere)."""
    ident = identity(f"h{secrets.token_hex(4)}.test", pds_url="http://127.0.0.1:9")
    r = httpx.post(f"{dir_url}/{ident.did}", json=ident.genesis.to_json(), timeout=10)
    assert r.status_code == 200, r.text
    return Author(ident.did, ident.signing)
