"""The PDS store upgrades a database made before its schema was versioned, on SQLite
and PostgreSQL: adopted at version 1, brought to the latest, its rows intact."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from plaza.db import SchemaTooNewError, connect
from plaza.services.pds.store import (
    ACTIVE,
    MIGRATIONS,
    BlobRow,
    EventRow,
    PdsStore,
    RecordRef,
    RepoRoot,
    RepoWrite,
)
from tests.db.helpers import frozen_schema, index_names, recorded

UNVERSIONED = frozen_schema(Path(__file__).with_name("schema_unversioned.sql"))
DID = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"
OTHER = "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb"
POST = f"at://{DID}/app.bsky.feed.post/3a"


def cid(n: int) -> bytes:
    return b"\x01\x71\x12\x20" + hashlib.sha256(str(n).encode()).digest()


def make_unversioned(url: str) -> None:
    """A database as the unversioned store left it: its tables, some rows, no record."""
    db = connect(url)
    db.executescript(UNVERSIONED)
    with db.transaction():
        db.execute(
            "INSERT INTO pds_account (did, handle, email, password_hash, signing_key, "
            "created_at, status, status_at, delete_after, email_confirmed) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, NULL, NULL, 1)",
            (DID, "alice.test", "a@x.test", "$argon2id$x", b"\x01" * 32,
             "2026-01-01T00:00:00.000Z", ACTIVE),
        )  # fmt: skip
        db.execute(
            "INSERT INTO pds_repo_root (did, commit_cid, rev, data_cid) VALUES (?, ?, ?, ?)",
            (DID, cid(1), "3aaaaaaaaaaa2", cid(2)),
        )
        db.executemany(
            "INSERT INTO pds_block (did, cid, rev, data) VALUES (?, ?, ?, ?)",
            [(DID, cid(n), "3aaaaaaaaaaa2", f"block{n}".encode()) for n in (1, 2, 3)],
        )
        db.execute(
            "INSERT INTO pds_record (did, collection, rkey, cid, rev) VALUES (?, ?, ?, ?, ?)",
            (DID, "app.bsky.feed.post", "3a", cid(3), "3aaaaaaaaaaa2"),
        )
        db.execute(
            "INSERT INTO pds_blob (did, cid, mime, size, created_at) VALUES (?, ?, ?, ?, ?)",
            (DID, cid(50), "image/png", 1234, "2026-01-01T00:00:01.000Z"),
        )
        db.execute(
            "INSERT INTO pds_record_blob (did, blob_cid, record_uri) VALUES (?, ?, ?)",
            (DID, cid(50), POST),
        )
        db.execute(
            "INSERT INTO pds_event (seq, did, kind, created_s, frame) VALUES (?, ?, ?, ?, ?)",
            (1, DID, "commit", 1767225600, b"frame1"),
        )
        db.execute("INSERT INTO pds_preferences (did, body) VALUES (?, ?)", (DID, '{"p":1}'))
        db.execute(
            "INSERT INTO pds_usage (did, requests, egress_bytes) VALUES (?, ?, ?)", (DID, 5, 900)
        )
    db.close()


def test_version_1_is_the_unversioned_schema() -> None:
    step = MIGRATIONS.steps[0].step
    assert isinstance(step, str) and step.strip() == UNVERSIONED.strip()


def test_an_unversioned_database_is_upgraded_and_keeps_its_rows(db_url: str) -> None:
    make_unversioned(db_url)
    store = PdsStore.open(db_url)
    try:
        assert recorded(store.db, "pds") == [(m.version, m.name) for m in MIGRATIONS.steps]
        assert MIGRATIONS.latest == 3
        assert {"pds_record_blob_uri", "pds_blob_cid"} <= index_names(store.db)
        assert {"pds_reserved_key_did", "pds_reserved_key_expires"} <= index_names(store.db)

        acct = store.get_account_by_handle("alice.test")
        assert acct is not None and acct.did == DID and acct.email_confirmed
        assert store.get_root(DID) == RepoRoot(cid(1), "3aaaaaaaaaaa2", cid(2))
        assert store.get_record_block(DID, "app.bsky.feed.post", "3a") == (cid(3), b"block3")
        assert store.list_records(DID, "app.bsky.feed.post", 10, None, False) == [
            RecordRef("app.bsky.feed.post", "3a", cid(3))
        ]
        assert store.get_blob(DID, cid(50)) == BlobRow(
            cid(50), "image/png", 1234, "2026-01-01T00:00:01.000Z"
        )
        assert store.list_referenced_blobs(DID) == [cid(50)]
        assert store.events_after(0, 10) == [EventRow(1, DID, "commit", 1767225600, b"frame1")]
        assert store.get_preferences(DID) == '{"p":1}'
        assert store.get_usage(DID) == (5, 900)

        # The store works on the upgraded tables: a commit that drops the post's blob
        # reference (deleted by record URI), and a second holder of the blob.
        root = RepoRoot(cid(4), "3aaaaaaaaaaa3", cid(5))
        store.apply_write(
            RepoWrite(
                DID,
                root,
                [(cid(4), b"c2"), (cid(5), b"n2"), (cid(6), b"r2")],
                [cid(1), cid(2)],
                {("app.bsky.feed.post", "3a"): cid(6)},
                {POST: ()},
            ),
            EventRow(2, DID, "commit", 1767225601, b"frame2"),
        )
        assert store.get_root(DID) == root
        assert not store.is_blob_referenced(DID, cid(50))
        assert store.seq_bounds() == (1, 2)
        store.add_blob(OTHER, BlobRow(cid(50), "image/png", 1234, "2026-01-02T00:00:00.000Z"))
        assert store.blob_owner_count(cid(50)) == 2
        # Step 3's table: a signing key reserved for a DID, found until it expires.
        store.add_reserved_key("did:key:zQ3sA", OTHER, b"\x02" * 32, 100, 200)
        assert store.reserved_key_for(OTHER, 150) == "did:key:zQ3sA"
        assert store.reserved_key("did:key:zQ3sA", OTHER, 150) == b"\x02" * 32
        assert store.reserved_key("did:key:zQ3sA", DID, 150) is None
        assert store.reserved_key_for(OTHER, 200) is None
        assert store.prune_reserved_keys(200) == 1
    finally:
        store.close()


def test_reopening_applies_nothing_again(db_url: str) -> None:
    make_unversioned(db_url)
    sql = "SELECT store, version, applied_at FROM schema_migrations ORDER BY version"
    first = PdsStore.open(db_url)
    before = first.db.query(sql)
    first.close()
    second = PdsStore.open(db_url)
    try:
        assert second.db.query(sql) == before
        assert len(before) == MIGRATIONS.latest
    finally:
        second.close()


def test_a_database_from_a_newer_plaza_is_refused(db_url: str) -> None:
    PdsStore.open(db_url).close()
    db = connect(db_url)
    db.execute(
        "INSERT INTO schema_migrations (store, version, name, applied_at) VALUES (?, ?, ?, ?)",
        ("pds", MIGRATIONS.latest + 1, "a later step", "2030-01-01T00:00:00+00:00"),
    )
    db.close()
    with pytest.raises(SchemaTooNewError) as info:
        PdsStore.open(db_url)
    assert info.value.code == "SchemaTooNew"
