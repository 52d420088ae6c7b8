"""The one-statement PostgreSQL commit does exactly what the statement-by-statement
commit does (on PostgreSQL and on SQLite), for any sequence of commits."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plaza.services.pds.pg_commit import PgCommitter
from plaza.services.pds.store import EventRow, PdsStore, RepoRoot, RepoWrite
from plaza.services.pds.store_repo import pg_commit_statement
from tests.conftest import _PG_MISSING, PG_URL

pytestmark = pytest.mark.skipif(_PG_MISSING is not None, reason=str(_PG_MISSING))


def _cid(n: int) -> bytes:
    return b"\x01\x71\x12\x20" + hashlib.sha256(b"%d" % n).digest()


_KEYS = [("app.bsky.feed.post", k) for k in ("a", "b", "c")] + [("app.bsky.feed.like", "a")]
_URIS = [f"at://did:x/app.bsky.feed.post/{k}" for k in ("a", "b", "c")]

_commit = st.fixed_dictionaries(
    {
        "new": st.lists(st.integers(0, 7), max_size=4),
        "removed": st.lists(st.integers(0, 7), max_size=4),
        "records": st.dictionaries(
            st.sampled_from(_KEYS), st.one_of(st.none(), st.integers(0, 7)), max_size=3
        ),
        "refs": st.dictionaries(
            st.sampled_from(_URIS),
            st.lists(st.integers(100, 103), max_size=3).map(tuple),
            max_size=2,
        ),
    }
)


_SEQ = itertools.count(1, 10)  # event numbers are unique across a store


def _writes(
    did: str, commits: list[dict[str, object]], seq0: int
) -> Iterator[tuple[RepoWrite, EventRow]]:
    for n, c in enumerate(commits, 1):
        rev = f"3aaaaaaaaa{n:03d}"
        root = RepoRoot(_cid(1000 + n), rev, _cid(2000 + n))
        new = [(_cid(i), b"block %d" % i) for i in c["new"]]  # type: ignore[attr-defined]
        removed = [_cid(i) for i in c["removed"]]  # type: ignore[attr-defined]
        records = {
            k: (None if v is None else _cid(v))
            for k, v in c["records"].items()  # type: ignore[attr-defined]
        }
        refs = {u: tuple(_cid(b) for b in bs) for u, bs in c["refs"].items()}  # type: ignore[attr-defined]
        write = RepoWrite(did, root, new, removed, records, refs)
        yield write, EventRow(seq0 + n, did, "#commit", 1_700_000_000 + n, b"frame %d" % n)


def _dump(store: PdsStore, did: str) -> dict[str, list[tuple[object, ...]]]:
    q = {
        "block": "SELECT cid, rev, data FROM pds_block WHERE did = ? ORDER BY cid",
        "record": "SELECT collection, rkey, cid, rev FROM pds_record WHERE did = ? "
        "ORDER BY collection, rkey",
        "ref": "SELECT blob_cid, record_uri FROM pds_record_blob WHERE did = ? "
        "ORDER BY blob_cid, record_uri",
        "root": "SELECT commit_cid, rev, data_cid FROM pds_repo_root WHERE did = ?",
        "event": "SELECT seq, kind, created_s, frame FROM pds_event WHERE did = ? ORDER BY seq",
    }
    return {name: [tuple(r) for r in store.db.query(sql, (did,))] for name, sql in q.items()}


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[PdsStore, ...]]:
    schemas = [f"pgc_{uuid.uuid4().hex[:10]}" for _ in range(2)]
    opened = [PdsStore.open(f"{PG_URL}?schema={s}") for s in schemas]
    opened.append(PdsStore.open(f"sqlite://{tmp_path_factory.mktemp('pgc') / 'pds.db'}"))
    yield tuple(opened)
    for s in opened:
        s.close()
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        for schema in schemas:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(commits=st.lists(_commit, min_size=1, max_size=5))
def test_one_statement_commit_equals_the_statements(
    stores: tuple[PdsStore, PdsStore, PdsStore], commits: list[dict[str, object]]
) -> None:
    one_statement, statements, sqlite = stores
    did = f"did:plc:{uuid.uuid4().hex[:24]}"
    committer = PgCommitter(one_statement.db.url, size=1)
    seq0 = next(_SEQ)

    async def run() -> None:
        try:
            for write, event in _writes(did, commits, seq0):
                await committer.execute(*pg_commit_statement(write, event))
        finally:
            await committer.aclose()

    asyncio.run(run())
    for write, event in _writes(did, commits, seq0):
        statements.apply_write(write, event)
        sqlite.apply_write(write, event)
    expected = _dump(statements, did)
    assert expected["event"], "the commits were stored"
    assert _dump(one_statement, did) == expected
    assert _dump(sqlite, did) == expected
