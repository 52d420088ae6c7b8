"""The live part of ``plaza bench appview``: the last posts as a firehose burst.

Every author of a live post is a real ``did:plc`` (a signed genesis operation, one
secp256k1 key shared by all of them, registered in the bench's directory). Its
repository is built with the real repository code (:meth:`plaza.atproto.repo.Repo.create`
over the records it was backfilled with, at the backfilled ``rev``), and each of its
live posts is one more commit (:meth:`~plaza.atproto.repo.Repo.apply_writes`), encoded
as the PDS's sequencer writes a ``#commit`` frame (sync v1.1: CAR slice, ops with
``prev``, ``prevData``) with the source's ``seq`` 1, 2, 3, ...

:func:`index_burst` then hands the frames to
:meth:`plaza.services.appview.follower.Follower.handle_batch` in batches of
:data:`~plaza.services.appview.follower.MAX_BATCH`, as the follower takes the frames
that queued up while it wrote the previous run: each commit is decoded, checked against
its account's indexed ``rev``, verified (signature against the key from the directory,
the CAR slice, the ops' inversion) and its records indexed, one transaction per run
with the cursor. The follower's identity cache is filled first, as it is for accounts
that post while the service runs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import httpx

from plaza.atproto import cbor
from plaza.atproto.crypto import PrivateKey
from plaza.atproto.plc import create_genesis
from plaza.atproto.repo import Repo, Write
from plaza.atproto.sync import encode_ops
from plaza.atproto.tid import encode_tid
from plaza.services.appview.follower import MAX_BATCH, Follower
from plaza.services.appview.indexer import Indexer
from plaza.services.eventstream import encode_frame, iso_time
from plaza.services.identities import Identities
from plaza.services.pds.sequencer import COMMIT

BACKFILLED_REV: Final = "2222222222222"  # the rev every backfilled repository is at
SOURCE: Final = "http://firehose.bench.invalid"  # the follower's source (a cursor key)


@dataclass(frozen=True)
class LiveAuthor:
    did: str
    genesis: dict[str, Any]


def make_authors(key: PrivateKey, indices: list[int]) -> dict[int, LiveAuthor]:
    """A real ``did:plc`` (genesis signed with ``key``) for each account index."""
    out: dict[int, LiveAuthor] = {}
    for i in indices:
        did, op = create_genesis(
            key=key,
            rotation_keys=[key.did_key()],
            signing_key=key.did_key(),
            handle=f"a{i}.bench.test",
            pds_endpoint="https://pds.bench.invalid",
        )
        out[i] = LiveAuthor(did, op.to_json())
    return out


def build_frames(
    key: PrivateKey,
    live: list[tuple[str, str, bytes]],
    backfilled: Callable[[str], dict[str, bytes]],
    start_us: int,
) -> list[bytes]:
    """``#commit`` frames for the ``live`` posts ``(did, rkey, block)``, in order; the
    repository of each author starts as ``backfilled(did)`` (records by path) at
    :data:`BACKFILLED_REV`."""
    repos: dict[str, Repo] = {}
    frames: list[bytes] = []
    now = time.time()
    for n, (did, rkey, block) in enumerate(live):
        repo = repos.get(did)
        if repo is None:
            writes = []
            for path, record in backfilled(did).items():
                collection, _, record_key = path.partition("/")
                writes.append(Write.create(collection, record_key, cbor.decode(record)))
            repo = Repo.create(did, key, BACKFILLED_REV, writes=writes).repo
        value = cbor.decode(block)
        result = repo.apply_writes(
            [Write.create("app.bsky.feed.post", rkey, value)], key, encode_tid(start_us + n, 0)
        )
        repos[did] = result.repo
        body: dict[str, Any] = {
            "repo": did,
            "commit": result.cid,
            "rev": result.rev,
            "since": result.since,
            "blocks": result.car_slice,
            "ops": encode_ops(result.ops),
            "blobs": [],
            "rebase": False,
            "tooBig": False,
            "seq": n + 1,
            "time": iso_time(now),
            "prevData": result.prev_data,
        }
        frames.append(encode_frame(COMMIT, body))
    return frames


async def register(directory: str, authors: list[LiveAuthor], *, tries: int = 3) -> None:
    """Submit every author's genesis operation to the directory (one refused on the
    connection is sent again; the directory answers a repeated genesis the same)."""
    async with httpx.AsyncClient(timeout=60) as http:

        async def submit(author: LiveAuthor) -> None:
            for attempt in range(tries):
                try:
                    answer = await http.post(f"{directory}/{author.did}", json=author.genesis)
                except httpx.TransportError:
                    if attempt == tries - 1:
                        raise
                    continue
                if answer.status_code != 200:
                    raise RuntimeError(f"directory refused {author.did}: {answer.text[:200]}")
                return

        for start in range(0, len(authors), 32):
            await asyncio.gather(*(submit(a) for a in authors[start : start + 32]))


async def index_burst(
    indexer: Indexer, directory: str, dids: list[str], frames: list[bytes]
) -> float:
    """Index ``frames`` through the follower's runs; return the seconds it took (the
    identity cache of ``dids`` is filled before the clock starts)."""
    async with httpx.AsyncClient(timeout=60) as http:
        identities = Identities(directory, http)
        await _warm(identities, dids)
        follower = Follower(SOURCE, indexer, identities, http)

        t = time.perf_counter()
        for start in range(0, len(frames), MAX_BATCH):
            await follower.handle_batch(frames[start : start + MAX_BATCH])
        took = time.perf_counter() - t

    if follower.dropped or follower.events != len(frames):
        raise RuntimeError(
            f"live frames not all indexed: {follower.events} of {len(frames)}, "
            f"dropped {dict(follower.dropped)}, runs {follower.runs}"
        )
    return took


async def _warm(identities: Identities, dids: list[str], *, tries: int = 3) -> None:
    """Fill the identity cache (a lookup that fails on the connection is tried again)."""
    left = dids
    for _ in range(tries):
        failed: list[str] = []
        for start in range(0, len(left), 32):
            chunk = left[start : start + 32]
            got = await asyncio.gather(*(identities.get(d) for d in chunk), return_exceptions=True)
            failed += [d for d, g in zip(chunk, got, strict=True) if isinstance(g, Exception)]
        if not failed:
            return
        left = failed
    raise RuntimeError(f"{len(left)} live authors could not be resolved")
