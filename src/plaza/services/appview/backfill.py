"""Backfill: a whole repository from its host, verified, made the index's truth.

:func:`fetch_repo` reads ``com.atproto.sync.getRepo`` from the account's host (up to
``max_bytes``). :func:`verify_repo` checks it fully (:func:`plaza.atproto.repo_verify.
import_car`: every block, the commit's signature against the account's key, the whole
tree). :func:`apply_repo` then makes the index hold exactly the repository's indexed
records, in one transaction: records it lacks, or holds under another CID, are put;
records it holds that the repository no longer has are deleted (so a backfill after a
gap, or on ``#sync``, also catches deletes that were missed). The account's ``rev`` and
state (:data:`~plaza.services.appview.schema.REPO_CURRENT`) are recorded with it. A
repository older than the ``rev`` already indexed (fetched before a commit the firehose
has since delivered) changes nothing, unless a ``#sync`` announced it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import httpx

from plaza.atproto.cid import CID
from plaza.atproto.crypto import PublicKey
from plaza.atproto.repo_verify import VerifiedRepo, import_car
from plaza.errors import PlazaError
from plaza.services.appview import records as rec
from plaza.services.appview.compact import unpack_post
from plaza.services.appview.indexer import Indexer
from plaza.services.appview.schema import REPO_CURRENT, REPO_FAILED

MAX_REPO_BYTES: Final = 200_000_000

# collection -> (table, owner column, has a cid column)
_TABLES: Final = {
    rec.LIKE: ("likes", "actor", False),
    rec.REPOST: ("reposts", "actor", False),
    rec.FOLLOW: ("follows", "actor", False),
    rec.BLOCK: ("blocks", "actor", False),
    rec.LIST: ("lists", "actor", True),
    rec.LISTITEM: ("list_items", "actor", False),
    rec.GENERATOR: ("feed_generators", "actor", True),
}


class BackfillError(PlazaError):
    """A repository could not be fetched from its host."""

    code = "BackfillFailed"
    status = 502


@dataclass(frozen=True)
class Applied:
    """What one backfill changed."""

    did: str
    rev: str | None
    put: int
    deleted: int


async def fetch_repo(
    http: httpx.AsyncClient, pds: str, did: str, *, max_bytes: int = MAX_REPO_BYTES
) -> bytes:
    """``did``'s repository CAR from its host ``pds`` (raises :class:`BackfillError`)."""
    url = f"{pds.rstrip('/')}/xrpc/com.atproto.sync.getRepo"
    try:
        async with http.stream("GET", url, params={"did": did}) as response:
            if response.status_code != 200:
                raise BackfillError(f"{url} answered HTTP {response.status_code} for {did}")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > max_bytes:
                    raise BackfillError(f"the repository of {did} is over {max_bytes} bytes")
    except httpx.HTTPError as exc:
        raise BackfillError(f"could not read the repository of {did}: {exc}") from exc
    return bytes(body)


def verify_repo(car: bytes, did: str, key: PublicKey | None) -> VerifiedRepo:
    """The repository, fully verified (raises an :class:`~plaza.atproto.errors.AtprotoError`)."""
    return import_car(car, did=did, key=key, max_bytes=MAX_REPO_BYTES)


def apply_repo(indexer: Indexer, repo: VerifiedRepo, *, force: bool = False) -> Applied:
    """Make the index hold exactly ``repo``'s records (see the module docstring); with
    ``force`` (a ``#sync``: the host says this is the repository now) even when its
    ``rev`` is older than the one indexed."""
    store = indexer.store
    did = repo.did
    put = deleted = 0
    with store.transaction():
        actor = store.actor_id(did)
        held_rev = indexer.db.scalar("SELECT rev FROM actors WHERE id = ?", (actor,))
        if not force and held_rev is not None and repo.rev is not None and repo.rev < held_rev:
            return Applied(did, held_rev, 0, 0)  # older than what the firehose already gave
        held = _held(indexer, actor)
        wanted: dict[str, CID] = {}
        for path, cid in repo.records.items():
            collection, _, rkey = path.partition("/")
            if collection in rec.INDEXED:
                wanted[path] = cid
        for path, cid in wanted.items():
            have = held.get(path, False)
            if have is None or have == cid:
                continue  # held, and either the same record or one whose CID is not kept
            collection, _, rkey = path.partition("/")
            if indexer.put(did, collection, rkey, cid, repo.blocks[cid]):
                put += 1
        for path in held.keys() - wanted.keys():
            collection, _, rkey = path.partition("/")
            indexer.delete(did, collection, rkey)
            deleted += 1
        indexer.db.execute(
            "UPDATE actors SET rev = ?, repo_state = ? WHERE id = ?",
            (repo.rev, REPO_CURRENT, actor),
        )
    return Applied(did, repo.rev, put, deleted)


def mark_failed(indexer: Indexer, did: str) -> None:
    """Record that ``did``'s backfill failed (it is retried on its next event)."""
    with indexer.store.transaction():
        indexer.db.execute(
            "UPDATE actors SET repo_state = ? WHERE id = ?",
            (REPO_FAILED, indexer.store.actor_id(did)),
        )


def _held(indexer: Indexer, actor: int) -> dict[str, CID | None]:
    """Every indexed record of ``actor`` by path: its CID where the table keeps one."""
    held: dict[str, CID | None] = {}
    db = indexer.db
    for collection, (table, owner, has_cid) in _TABLES.items():
        cols = "rkey, cid" if has_cid else "rkey"
        for row in db.query(f"SELECT {cols} FROM {table} WHERE {owner} = ?", (actor,)):
            held[f"{collection}/{row[0]}"] = CID(row[1]) if has_cid else None
    for rkey, record, text, sort_at in db.query(
        "SELECT rkey, record, text, sort_at FROM posts WHERE author = ?", (actor,)
    ):  # a post's CID hashes its record
        held[f"{rec.POST}/{rkey}"] = CID.compute(unpack_post(bytes(record), text, sort_at))
    profile = db.scalar("SELECT profile_cid FROM actors WHERE id = ?", (actor,))
    if profile is not None:
        held[f"{rec.PROFILE}/self"] = CID(profile)
    return held
