"""``plaza bench archive``: the storage the archive takes per record, and how fast it
lands verified commits.

A repository of ``records`` posts is written with :mod:`plaza.atproto.repo`, one commit
per ``per_commit`` posts, and every commit goes through the archive's own path for a
firehose ``#commit``: the first becomes the base
(:func:`~plaza.atproto.repo_verify.import_car`), each later one is verified with
:func:`~plaza.atproto.sync.verify_commit_body` (signature and inversion), turned into a
change (:func:`~plaza.services.archive.changes.commit_change`) and applied by
:meth:`~plaza.services.archive.store.ArchiveStore.apply_commit` with its cursor. Then
the store's size is read (:meth:`ArchiveStore.store_bytes`: the SQLite file's used
pages, or the PostgreSQL relations with indexes and TOAST), once as the commits left it
and once after a ``VACUUM`` (``VACUUM FULL`` on PostgreSQL) has given back the space of
the blocks each commit replaced, and divided by the records.
"""

from __future__ import annotations

import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from plaza.atproto.cid import CID
from plaza.atproto.crypto import ES256K, PrivateKey
from plaza.atproto.repo import CommitResult, Repo, Write
from plaza.atproto.repo_verify import import_car
from plaza.atproto.sync import encode_ops, verify_commit_body
from plaza.atproto.tid import int_to_tid
from plaza.db import connect
from plaza.services.archive.changes import commit_change, repo_base
from plaza.services.archive.store import ArchiveStore

_DID = "did:plc:benchbenchbenchbenchbenc"


def _post(i: int) -> dict[str, Any]:
    return {
        "$type": "app.bsky.feed.post",
        "text": f"post number {i}: " + "a plaza for everyone " * (1 + i % 4),
        "createdAt": "2026-01-01T00:00:00.000Z",
        "langs": ["en"],
    }


def _commits(records: int, per_commit: int, key: PrivateKey) -> Iterator[CommitResult]:
    blocks: dict[CID, bytes] = {}
    repo: Repo | None = None
    start = 1_700_000_000_000_000 << 10
    for n, first in enumerate(range(0, records, per_commit)):
        writes = [
            Write.create("app.bsky.feed.post", int_to_tid(start + i), _post(i))
            for i in range(first, min(records, first + per_commit))
        ]
        rev = int_to_tid(start + n)
        if repo is None:
            result = Repo.create(_DID, key, rev, blocks, writes=writes)
        else:
            result = repo.apply_writes(writes, key, rev)
        blocks.update(result.new_blocks)
        repo = result.repo
        yield result


def _body(result: CommitResult, seq: int) -> dict[str, Any]:
    body: dict[str, Any] = {
        "repo": _DID,
        "commit": result.cid,
        "rev": result.rev,
        "blocks": result.car_slice,
        "ops": encode_ops(result.ops),
        "seq": seq,
    }
    if result.prev_data is not None:
        body["prevData"] = result.prev_data
    return body


def _land(store: ArchiveStore, key: PrivateKey, result: CommitResult, seq: int) -> None:
    """What the follower does with one ``#commit`` of the benchmark DID."""
    if seq == 1:
        base = repo_base(import_car(result.car_slice, did=_DID, key=key.public_key))
        store.rebase(base, None, seq)
        return
    head = store.head(_DID)
    assert head is not None and head.data is not None and head.commit_cid is not None
    verified = verify_commit_body(_body(result, seq), key.public_key)
    change = commit_change(
        verified,
        head.data,
        lambda c: store.block(head.id, c),
        lambda cids: store.blocks_among(head.id, cids),
    )
    store.apply_commit(change, head.commit_cid, seq)


def measure(url: str, records: int, per_commit: int) -> dict[str, Any]:
    """Archive the benchmark repository into the store at ``url`` (empty) and report."""
    key = PrivateKey.generate(ES256K)
    store = ArchiveStore(connect(url), "bench")
    spent = 0.0
    commits = 0
    try:
        for seq, result in enumerate(_commits(records, per_commit, key), start=1):
            began = time.perf_counter()
            _land(store, key, result, seq)
            spent += time.perf_counter() - began
            commits += 1
        counts = store.counts()
        before = store.store_bytes()
        # Space freed by the blocks each commit replaced: SQLite keeps it on its free
        # list (not counted), PostgreSQL in the tables until a VACUUM makes it reusable.
        store.db.execute("VACUUM FULL" if store.db.dialect == "postgresql" else "VACUUM")
        size = store.store_bytes()
    finally:
        store.close()
    return {
        "records": counts.records,
        "commits": commits,
        "blocks": counts.blocks,
        "store_bytes": size,
        "bytes_per_record": round(size / counts.records, 1),
        "store_bytes_before_vacuum": before,
        "block_bytes_per_record": round(counts.block_bytes / counts.records, 1),
        "verified_commits_per_s": round(commits / spent, 1),
    }


@contextmanager
def _pg_schema(url: str) -> Iterator[str]:
    import psycopg

    schema = f"bench_archive_{uuid.uuid4().hex[:10]}"
    joiner = "&" if "?" in url else "?"
    try:
        yield f"{url}{joiner}schema={schema}"
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def run(*, records: int, per_commit: int, pg_url: str | None) -> dict[str, Any]:
    """The measurement on SQLite (a temporary file) and, given ``pg_url``, on PostgreSQL
    (a temporary schema)."""
    out: dict[str, Any] = {"records": records, "per_commit": per_commit}
    with tempfile.TemporaryDirectory() as tmp:
        out["sqlite"] = measure(f"sqlite://{Path(tmp) / 'archive.db'}", records, per_commit)
    if pg_url is not None:
        with _pg_schema(pg_url) as url:
            out["postgresql"] = measure(url, records, per_commit)
    return out
