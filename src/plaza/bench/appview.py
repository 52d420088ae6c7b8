"""App view speed on a synthetic network: indexing, backfill, getTimeline, index size.

The network: ``accounts`` accounts (account 0 is the viewer, a real ``did:plc`` in a
real directory; the others have synthetic DIDs), ``posts`` posts spread round-robin
over the other accounts, one like per ``like_every`` posts, and the viewer following
``follows`` accounts. Records are real DAG-CBOR with their CIDs; each account's
records form one repository.

* ``backfill_records_per_s``: every repository but the last ``live`` posts' goes
  through the bulk backfill of never-seen repositories (made :data:`REPO_GROUP` at a
  time before the clock runs: making the synthetic records is not the index's work)
  (:class:`plaza.services.appview.bulk.BulkLoader`: ``COPY`` on PostgreSQL, one
  prepared ``INSERT`` per table on SQLite, written every :data:`BULK_ROWS` records,
  counts recomputed once at the end): the index side of a backfill; the CAR's
  verification is ``plaza bench repo``'s import figure;
* ``index_records_per_s``: then the last ``live`` posts arrive as a burst of signed
  ``#commit`` frames (their authors are real ``did:plc`` accounts in a real directory)
  and go through the firehose follower's runs, verification included
  (:mod:`plaza.bench.appview_live`);
* ``timeline_p95_ms``: the app view is served on a real socket and the viewer's
  ``app.bsky.feed.getTimeline`` (limit 50) is called ``timeline_calls`` times over
  HTTP, each with a fresh inter-service token verified against the directory, as a PDS
  forwards it; the 95th percentile of the wall time of a call;
* ``bytes_per_record``: the database's size (SQLite: the file after a checkpoint;
  PostgreSQL: every relation of the schema, indexes included) over the records
  indexed; ``posts_indexed`` counts the ``posts`` table.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from plaza.atproto import cbor
from plaza.atproto.cid import CID
from plaza.atproto.commit import Commit
from plaza.atproto.crypto import PrivateKey
from plaza.atproto.plc import create_genesis
from plaza.atproto.repo_verify import VerifiedRepo
from plaza.atproto.tid import encode_tid
from plaza.bench.appview_live import (
    BACKFILLED_REV,
    LiveAuthor,
    build_frames,
    index_burst,
    make_authors,
    register,
)
from plaza.services.appview import AppviewSettings
from plaza.services.appview import create_app as create_appview
from plaza.services.appview.bulk import BulkLoader
from plaza.services.appview.indexer import Indexer
from plaza.services.appview.store import AppviewStore
from plaza.services.appview.times import format_time_us
from plaza.services.directory import DirectorySettings
from plaza.services.directory import create_app as create_directory
from plaza.services.runner import ServedApp, ServerThread
from plaza.services.service_jwt import mint_service_jwt

POST = "app.bsky.feed.post"
LIKE = "app.bsky.feed.like"
FOLLOW = "app.bsky.graph.follow"
TIMELINE = "app.bsky.feed.getTimeline"
START_US = 1_780_000_000_000_000  # synthetic createdAt of the first post
STEP_US = 1_000  # between posts
BULK_ROWS = 100_000  # records the bulk loader buffers before it writes them
REPO_GROUP = 1_000  # synthetic repositories made at a time, before the clock runs


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _did(i: int) -> str:
    return "did:plc:" + f"{i:024d}".translate(_LETTERS)


_LETTERS = str.maketrans("0123456789", "abcdefghij")


class Network:
    """The synthetic records, account by account (see the module docstring)."""

    def __init__(self, viewer: str, accounts: int, posts: int, follows: int, like_every: int):
        self.viewer = viewer
        self.accounts = accounts
        self.posts = posts
        self.follows = min(follows, accounts - 1)
        self.like_every = like_every
        self.dids = [viewer] + [_did(i) for i in range(1, accounts)]

    def author_of(self, n: int) -> int:
        """The account index of post ``n``'s author."""
        return 1 + n % (self.accounts - 1)

    def post(self, n: int) -> tuple[str, str, bytes]:
        """Post ``n``: (author DID, rkey, DAG-CBOR)."""
        author = self.author_of(n)
        t = START_US + n * STEP_US
        value = {
            "$type": POST,
            "text": f"post {n} about topic{n % 97} and more words here",
            "createdAt": format_time_us(t),
            "langs": ["en"],
        }
        return self.dids[author], encode_tid(t, n % 1024), cbor.encode(value)

    def repo_records(self, i: int, upto: int) -> dict[str, bytes]:
        """Account ``i``'s records among the first ``upto`` posts (and its likes and
        follows), by path."""
        out: dict[str, bytes] = {}
        if i == 0:
            for j in range(1, self.follows + 1):
                follow = {
                    "$type": FOLLOW,
                    "subject": self.dids[j],
                    "createdAt": format_time_us(START_US),
                }
                out[f"{FOLLOW}/{encode_tid(START_US + j, 0)}"] = cbor.encode(follow)
            return out
        for n in range(i - 1, upto, self.accounts - 1):
            _, rkey, block = self.post(n)
            out[f"{POST}/{rkey}"] = block
            if n % self.like_every == 0 and n >= 1:
                author, subject_rkey, subject = self.post(n - 1)
                like = {
                    "$type": LIKE,
                    "subject": {
                        "uri": f"at://{author}/{POST}/{subject_rkey}",
                        "cid": str(cbor.cid_of(cbor.decode(subject))),
                    },
                    "createdAt": format_time_us(START_US + n * STEP_US),
                }
                out[f"{LIKE}/{rkey}"] = cbor.encode(like)
        return out


def live_authors(
    key: PrivateKey, net: Network, backfilled: int
) -> tuple[list[int], dict[int, LiveAuthor]]:
    """The accounts that write the posts after the first ``backfilled``, each given a
    real ``did:plc`` signed with ``key`` (their indices in order, and the authors)."""
    live_indices = sorted({net.author_of(n) for n in range(backfilled, net.posts)})
    authors = make_authors(key, live_indices)
    for i, author in authors.items():
        net.dids[i] = author.did
    return live_indices, authors


def live_frames(
    key: PrivateKey, net: Network, live_indices: list[int], backfilled: int
) -> tuple[list[tuple[str, str, bytes]], list[bytes]]:
    """The posts after the first ``backfilled`` (DID, rkey, record block) and their
    signed ``#commit`` frames, each over its author's backfilled repository."""
    index_of = {net.dids[i]: i for i in live_indices}
    blocks = [net.post(n) for n in range(backfilled, net.posts)]
    frames = build_frames(
        key,
        blocks,
        lambda did: net.repo_records(index_of[did], backfilled),
        START_US + net.posts * STEP_US,
    )
    return blocks, frames


def _repo(did: str, records: dict[str, bytes]) -> VerifiedRepo:
    """A repository as the backfill path receives it once verified."""
    blocks: dict[CID, bytes] = {}
    paths: dict[str, CID] = {}
    for path, block in records.items():
        cid = CID.compute(block)
        blocks[cid] = block
        paths[path] = cid
    root = CID.compute(cbor.encode({"bench": did}))
    commit = Commit(did=did, version=3, data=root, rev=BACKFILLED_REV, prev=None, sig=b"")
    return VerifiedRepo(did, commit.rev, root, commit, paths, blocks, signature_checked=False)


def _db_bytes(store: AppviewStore, path: Path | None) -> int:
    db = store.db
    if db.dialect == "sqlite":
        assert path is not None
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
    return int(
        db.scalar(
            "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'm')"
        )
    )


def run(
    *,
    accounts: int = 100_000,
    posts: int = 1_000_000,
    follows: int = 1_000,
    live: int = 20_000,
    like_every: int = 4,
    timeline_calls: int = 200,
    db: str | None = None,
) -> dict[str, Any]:
    """Build the network, measure, and return the figures (see the module docstring).
    ``db``: a PostgreSQL URL (a fresh schema is made in it and dropped after); SQLite in
    a temporary directory when None."""
    if accounts < 2 or posts < 1:
        raise ValueError("the network needs at least 2 accounts and 1 post")
    live = min(live, posts)
    with tempfile.TemporaryDirectory(prefix="plaza-bench-av-") as tmp:
        root = Path(tmp)
        schema = f"bench_av_{uuid.uuid4().hex[:10]}" if db else None
        url = f"{db}{'&' if '?' in db else '?'}schema={schema}" if db else None
        try:
            return _run(root, url, accounts, posts, follows, live, like_every, timeline_calls)
        finally:
            if schema is not None and db is not None:
                import psycopg

                with psycopg.connect(db, autocommit=True) as conn:
                    conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _run(  # noqa: PLR0917 - the run's parameters, passed on
    root: Path,
    url: str | None,
    accounts: int,
    posts: int,
    follows: int,
    live: int,
    like_every: int,
    timeline_calls: int,
) -> dict[str, Any]:
    dport, aport = _free_port(), _free_port()
    directory = f"http://127.0.0.1:{dport}"
    key = PrivateKey.generate()
    viewer, genesis = create_genesis(
        key=key,
        rotation_keys=[key.did_key()],
        signing_key=key.did_key(),
        handle="viewer.test",
        pds_endpoint="https://pds.example",
    )
    net = Network(viewer, accounts, posts, follows, like_every)
    backfilled = posts - live
    live_indices, authors = live_authors(key, net, backfilled)
    av_dir = root / "appview"
    av_dir.mkdir()
    store = AppviewStore.for_data_dir(av_dir, url)
    indexer = Indexer(store)

    # backfill: every repository never seen before, through the bulk loader
    # (the synthetic repositories are made a group at a time, outside the clock)
    loader = BulkLoader(indexer)
    records = 0
    elapsed = 0.0
    for start in range(0, accounts, REPO_GROUP):
        repos = [
            _repo(net.dids[i], net.repo_records(i, backfilled))
            for i in range(start, min(start + REPO_GROUP, accounts))
        ]
        t = time.perf_counter()
        for repo in repos:
            loader.add_repo(repo)
            if loader.buffered >= BULK_ROWS:
                records += loader.flush(recount=False)
        elapsed += time.perf_counter() - t
    t = time.perf_counter()
    records += loader.flush(recount=False)
    loader.recount()
    elapsed += time.perf_counter() - t
    backfill_rate = records / elapsed if elapsed else 0.0

    # live: the last posts as a burst of firehose commits, through the follower's runs
    _, frames = live_frames(key, net, live_indices, backfilled)
    base = DirectorySettings.for_data_dir(root / "d")
    new_dids = len(authors) + 1  # the live authors and the viewer, all at once
    dsettings = DirectorySettings(
        db_url=base.db_url, genesis_burst=new_dids, genesis_per_s=new_dids
    )
    dapp = ServedApp("directory", create_directory(dsettings), port=dport)
    with ServerThread([dapp]):
        asyncio.run(register(directory, [*authors.values()]))
        live_s = asyncio.run(
            index_burst(indexer, directory, [a.did for a in authors.values()], frames)
        )
        records += len(frames)
        db_path = None if url else av_dir / "appview.db"
        size = _db_bytes(store, db_path)
        posts_indexed = int(store.db.scalar("SELECT COUNT(*) FROM posts"))
        store.close()
        p95 = _timelines(root, url, directory, aport, key, viewer, genesis, timeline_calls)
    return {
        "index_records_per_s": round(len(frames) / live_s, 1) if live_s else 0.0,
        "backfill_records_per_s": round(backfill_rate, 1),
        "timeline_p95_ms": round(p95 * 1000, 2),
        "posts_indexed": posts_indexed,
        "bytes_per_record": round(size / records, 1) if records else 0.0,
        "records_indexed": records,
        "accounts": accounts,
        "follows": net.follows,
        "database": "postgresql" if url else "sqlite",
    }


def _timelines(  # noqa: PLR0917 - the served network's parts
    root: Path,
    url: str | None,
    directory: str,
    aport: int,
    key: PrivateKey,
    viewer: str,
    genesis: Any,
    timeline_calls: int,
) -> float:
    """The 95th percentile of ``timeline_calls`` getTimeline calls, in seconds."""
    # getTimeline over HTTP, with service auth verified against the directory
    av_url = f"http://127.0.0.1:{aport}"
    settings = AppviewSettings(
        data_dir=root / "appview",
        public_url=av_url,
        directory_url=directory,
        db=url,
        follow=False,
    )
    apps = [ServedApp("appview", create_appview(settings), port=aport)]
    times: list[float] = []
    with ServerThread(apps), httpx.Client(timeout=60) as http:
        r = http.post(f"{directory}/{viewer}", json=genesis.to_json())
        r.raise_for_status()
        for n in range(timeline_calls + 5):
            now = int(time.time())
            token = mint_service_jwt(
                key,
                iss=viewer,
                aud=settings.did,
                lxm=TIMELINE,
                now=now,
                exp=now + 60,
                jti=secrets.token_hex(8),
            )
            t = time.perf_counter()
            r = http.get(
                f"{av_url}/xrpc/{TIMELINE}",
                params={"limit": 50},
                headers={"authorization": f"Bearer {token}"},
            )
            took = time.perf_counter() - t
            if r.status_code != 200 or len(r.json()["feed"]) == 0:
                raise RuntimeError(f"getTimeline failed: {r.status_code} {r.text[:200]}")
            if n >= 5:  # the first calls warm the caches (identity, prepared statements)
                times.append(took)
    return statistics.quantiles(times, n=20)[-1] if len(times) >= 2 else times[0]
