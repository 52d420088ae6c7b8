"""Simulated hosts for ``plaza bench relay``: accounts, repositories and ``#commit`` frames.

Every simulated host holds ``accounts`` accounts. Each account has its own secp256k1
key, a did:plc from a signed genesis operation listing that key (as rotation key and as
the repository's ``#atproto`` key), and a repository of ``records`` posts made with the
real repository code (:meth:`plaza.atproto.repo.Repo.create`), so its MST has a few
levels. The host's firehose is then pre-built: ``commits`` commits per account, one write
each (mostly creates, some updates and deletes), made with
:meth:`~plaza.atproto.repo.Repo.apply_writes` and encoded exactly as the PDS's
sequencer writes them (:func:`plaza.services.eventstream.encode_frame`, sync v1.1:
CAR slice, ops with ``prev``, ``prevData``). A host's frames interleave its accounts
round-robin and carry the host's ``seq`` 1, 2, 3, ...

Revisions are TIDs from the build time backwards, so at run time they are in the past
and increase per account. The genesis operation names a placeholder endpoint: the ports
are only known at run time, when the harness registers each DID with its genesis and an
update naming the host's real URL; that keeps a fixture reusable across runs.

Building is the expensive part (about 0.3 ms of CPU per commit), so it runs in a process
pool, one host per task, and the result is cached on disk (:func:`ensure_fixture`): a
cached fixture with at least as many commits per account is reused as it is.

On disk, per host: ``host-N.json`` (the accounts and, per frame, its account and rev),
``host-N.frames`` and ``host-N.cars`` (length-prefixed frames and initial repository
CARs).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import struct
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from plaza.atproto.crypto import ES256K, PrivateKey
from plaza.atproto.plc import create_genesis
from plaza.atproto.repo import CommitResult, Repo, Write, export_car
from plaza.atproto.sync import encode_ops
from plaza.atproto.tid import encode_tid, int_to_tid
from plaza.services.eventstream import encode_frame, iso_time
from plaza.services.pds.sequencer import COMMIT

FORMAT: Final = 1
PLACEHOLDER_ENDPOINT: Final = "https://unassigned.bench.invalid"
COLLECTION: Final = "app.bsky.feed.post"
_LEN = struct.Struct(">I")


@dataclass(frozen=True)
class FixtureSpec:
    """The shape of a fixture: ``hosts`` x ``accounts`` repositories of ``records``
    posts, each with ``commits`` pre-built commits; ``seed`` makes it reproducible."""

    hosts: int
    accounts: int
    records: int
    commits: int
    seed: int = 1

    @property
    def frames(self) -> int:
        return self.hosts * self.accounts * self.commits

    def key(self) -> str:
        """The cache directory name: every field but ``commits`` (more is fine)."""
        return f"v{FORMAT}-h{self.hosts}-a{self.accounts}-r{self.records}-s{self.seed}"


@dataclass(frozen=True)
class Account:
    """One simulated account: its DID, key and genesis operation (JSON)."""

    did: str
    key: PrivateKey
    genesis: dict[str, Any]


@dataclass(frozen=True)
class HostFrames:
    """One host's accounts and its firehose: ``frames[k]`` has seq ``k + 1`` and is the
    commit ``revs[k]`` of ``accounts[owners[k]]``."""

    accounts: list[Account]
    owners: list[int]
    revs: list[str]
    frames: list[bytes]
    cars: list[bytes]


def account_key(seed: int, host: int, account: int) -> PrivateKey:
    digest = hashlib.sha256(f"plaza-bench-relay:{seed}:{host}:{account}".encode()).digest()
    return PrivateKey.from_bytes(ES256K, digest)


def _post(rng: random.Random, n: int) -> dict[str, Any]:
    return {
        "$type": COLLECTION,
        "text": f"simulated post {n} " + "lorem ipsum " * rng.randrange(8),
        "createdAt": "2025-05-01T12:00:00.000Z",
        "langs": ["en"],
    }


def _commit_frame(result: CommitResult, seq: int, now: float) -> bytes:
    """The ``#commit`` frame the PDS sequencer writes for ``result`` (same keys, order
    of encoding is canonical)."""
    body: dict[str, Any] = {
        "repo": result.repo.did,
        "commit": result.cid,
        "rev": result.rev,
        "since": result.since,
        "blocks": result.car_slice,
        "ops": encode_ops(result.ops),
        "blobs": [],
        "rebase": False,
        "tooBig": False,
        "seq": seq,
        "time": iso_time(now),
    }
    if result.prev_data is not None:
        body["prevData"] = result.prev_data
    return encode_frame(COMMIT, body)


def build_host(spec: FixtureSpec, host: int, now: float) -> HostFrames:
    """Host ``host``'s accounts, repositories and frames (see the module docstring)."""
    rng = random.Random(f"{spec.seed}:{host}")
    # revs step by 1 ms from a start far enough back that the last one is in the past
    base_us = int(now * 1e6) - (spec.commits + 10) * 1000
    accounts: list[Account] = []
    repos: list[Repo] = []
    live: list[list[str]] = []
    cars: list[bytes] = []
    for a in range(spec.accounts):
        key = account_key(spec.seed, host, a)
        did, op = create_genesis(
            key=key,
            rotation_keys=[key.did_key()],
            signing_key=key.did_key(),
            handle=f"a{a}-h{host}.bench.test",
            pds_endpoint=PLACEHOLDER_ENDPOINT,
        )
        rkeys = [int_to_tid((base_us << 10) + 1_000_000 * a + i) for i in range(spec.records)]
        writes = [Write.create(COLLECTION, k, _post(rng, i)) for i, k in enumerate(rkeys)]
        first = Repo.create(did, key, encode_tid(base_us, a % 1024), writes=writes)
        blocks = first.new_blocks
        accounts.append(Account(did, key, op.to_json()))
        repos.append(first.repo)
        live.append(rkeys)
        cars.append(export_car(blocks, first.cid))
    owners: list[int] = []
    revs: list[str] = []
    frames: list[bytes] = []
    made = [0] * spec.accounts
    for j in range(spec.commits):
        for a in range(spec.accounts):
            repo, rkeys = repos[a], live[a]
            made[a] += 1
            roll = rng.random()
            if roll < 0.1 and len(rkeys) > 1:
                write = Write.delete(COLLECTION, rkeys.pop(rng.randrange(len(rkeys))))
            elif roll < 0.3:
                write = Write.update(COLLECTION, rng.choice(rkeys), _post(rng, made[a]))
            else:
                rkey = int_to_tid((base_us << 10) + 1_000_000 * a + spec.records + j)
                rkeys.append(rkey)
                write = Write.create(COLLECTION, rkey, _post(rng, made[a]))
            rev = encode_tid(base_us + (j + 1) * 1000, a % 1024)
            result = repo.apply_writes([write], accounts[a].key, rev)
            repos[a] = result.repo
            owners.append(a)
            revs.append(rev)
            frames.append(_commit_frame(result, len(frames) + 1, now))
    return HostFrames(accounts, owners, revs, frames, cars)


# -- the on-disk cache ----------------------------------------------------------------


def cache_root() -> Path:
    """Where fixtures are cached: a per-user directory under the system's temp dir."""
    return Path(tempfile.gettempdir()) / f"plaza-bench-relay-{os.getuid()}"


def _write_chunks(path: Path, chunks: list[bytes]) -> None:
    with path.open("wb") as f:
        for chunk in chunks:
            f.write(_LEN.pack(len(chunk)))
            f.write(chunk)


def _read_chunks(path: Path, limit: int | None = None) -> Iterator[bytes]:
    data = path.read_bytes()
    pos = n = 0
    while pos < len(data) and (limit is None or n < limit):
        (size,) = _LEN.unpack_from(data, pos)
        yield data[pos + 4 : pos + 4 + size]
        pos += 4 + size
        n += 1


def _build_and_write(spec: FixtureSpec, host: int, now: float, directory: str) -> None:
    built = build_host(spec, host, now)
    out = Path(directory)
    _write_chunks(out / f"host-{host}.frames", built.frames)
    _write_chunks(out / f"host-{host}.cars", built.cars)
    meta = {
        "accounts": [
            {"did": a.did, "key": a.key.to_bytes().hex(), "genesis": a.genesis}
            for a in built.accounts
        ],
        "owners": built.owners,
        "revs": built.revs,
    }
    (out / f"host-{host}.json").write_text(json.dumps(meta))


def ensure_fixture(spec: FixtureSpec, root: Path | None = None, workers: int = 0) -> Path:
    """The directory of a fixture at least as large as ``spec``, built now (in a pool of
    ``workers`` processes, 0: one per core) unless the cache under ``root`` holds one."""
    root = root or cache_root()
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    directory = root / spec.key()
    manifest = directory / "manifest.json"
    if manifest.exists():
        cached = json.loads(manifest.read_text())
        if cached.get("format") == FORMAT and cached.get("commits", 0) >= spec.commits:
            return directory
    directory.mkdir(exist_ok=True)
    manifest.unlink(missing_ok=True)
    now = time.time()
    with ProcessPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
        jobs = [
            pool.submit(_build_and_write, spec, h, now, str(directory)) for h in range(spec.hosts)
        ]
        for job in jobs:
            job.result()
    manifest.write_text(json.dumps({"format": FORMAT, "commits": spec.commits, "built": now}))
    return directory


def load_host(directory: Path, host: int, *, frames: int | None = None) -> HostFrames:
    """Host ``host`` of a fixture, its firehose cut to the first ``frames`` frames."""
    meta = json.loads((directory / f"host-{host}.json").read_text())
    accounts = [
        Account(a["did"], PrivateKey.from_bytes(ES256K, bytes.fromhex(a["key"])), a["genesis"])
        for a in meta["accounts"]
    ]
    stop = frames if frames is not None else len(meta["revs"])
    return HostFrames(
        accounts,
        meta["owners"][:stop],
        meta["revs"][:stop],
        list(_read_chunks(directory / f"host-{host}.frames", stop)),
        list(_read_chunks(directory / f"host-{host}.cars")),
    )


def load_meta(directory: Path, host: int) -> dict[str, Any]:
    """Host ``host``'s accounts, frame owners and revs, without the frames."""
    meta: dict[str, Any] = json.loads((directory / f"host-{host}.json").read_text())
    return meta
