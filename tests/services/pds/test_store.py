"""The PDS store contract: the same suite on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest

from plaza.db import IntegrityError
from plaza.services.pds.store import (
    ACTIVE,
    DEACTIVATED,
    AccountRow,
    AppPasswordRow,
    BlobRow,
    EventRow,
    PdsStore,
    RecordRef,
    RefreshTokenRow,
    RepoRoot,
    RepoWrite,
)

DID = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"
OTHER = "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb"


def cid(n: int) -> bytes:
    return b"\x01\x71\x12\x20" + hashlib.sha256(str(n).encode()).digest()


def account(
    did: str = DID, handle: str = "alice.test", email: str | None = "a@x.test"
) -> AccountRow:
    return AccountRow(
        did=did,
        handle=handle,
        email=email,
        password_hash="$argon2id$x",
        signing_key=b"\x01" * 32,
        created_at="2026-01-01T00:00:00.000Z",
        status=ACTIVE,
    )


@pytest.fixture
def store(db_url: str) -> Iterator[PdsStore]:
    s = PdsStore.open(db_url)
    yield s
    s.close()


def test_accounts(store: PdsStore) -> None:
    store.create_account(account())
    got = store.get_account(DID)
    assert got == account()
    assert "signing_key" not in repr(got) and "argon2" not in repr(got)
    assert store.get_account_by_handle("ALICE.test") == got
    assert store.get_account_by_email("a@x.test") == got
    with pytest.raises(IntegrityError):
        store.create_account(account(OTHER, "alice.test", None))
    with pytest.raises(IntegrityError):
        store.create_account(account(DID, "other.test", None))
    store.create_account(account(OTHER, "bob.test", None))
    store.set_status(DID, DEACTIVATED, "2026-01-02T00:00:00.000Z", "2026-02-01T00:00:00.000Z")
    store.set_handle(DID, "Alice2.test")
    a = store.get_account(DID)
    assert a is not None and a.status == DEACTIVATED and a.handle == "alice2.test"
    assert a.delete_after == "2026-02-01T00:00:00.000Z"
    with pytest.raises(ValueError):
        store.set_status(DID, "bogus", None)
    assert [r.did for r in store.list_accounts(None, 10)] == [DID, OTHER]
    assert [r.did for r in store.list_accounts(DID, 10)] == [OTHER]


def test_commit_blocks_records_and_root(store: PdsStore) -> None:
    store.create_account(account())
    assert store.get_root(DID) is None
    r1 = RepoRoot(cid(1), "3aaaaaaaaaaa2", cid(2))
    store.apply_write(
        RepoWrite(
            DID,
            r1,
            [(cid(1), b"c1"), (cid(2), b"n1"), (cid(3), b"r1")],
            [],
            {("app.bsky.feed.post", "3a"): cid(3)},
            {f"at://{DID}/app.bsky.feed.post/3a": (cid(50),)},
        )
    )
    assert store.get_root(DID) == r1
    assert store.get_block(DID, cid(3)) == b"r1"
    assert store.get_block(OTHER, cid(3)) is None
    assert store.get_record_cid(DID, "app.bsky.feed.post", "3a") == cid(3)
    r2 = RepoRoot(cid(4), "3aaaaaaaaaaa3", cid(5))
    store.apply_write(
        RepoWrite(
            DID,
            r2,
            [(cid(4), b"c2"), (cid(5), b"n2"), (cid(6), b"r2"), (cid(7), b"r3")],
            [cid(1), cid(2)],
            {
                ("app.bsky.feed.post", "3b"): cid(6),
                ("app.bsky.feed.like", "3c"): cid(7),
                ("app.bsky.feed.post", "3a"): None,
            },
            {f"at://{DID}/app.bsky.feed.post/3a": ()},
        )
    )
    assert store.get_root(DID) == r2
    assert store.get_block(DID, cid(1)) is None
    assert store.get_record_cid(DID, "app.bsky.feed.post", "3a") is None
    assert sorted(c for c, _ in store.iter_blocks(DID)) == sorted(
        [cid(3), cid(4), cid(5), cid(6), cid(7)]
    )
    assert {c for c, _ in store.iter_blocks(DID, since="3aaaaaaaaaaa2")} == {
        cid(4),
        cid(5),
        cid(6),
        cid(7),
    }
    assert store.get_blocks(DID, [cid(6), cid(99)]) == {cid(6): b"r2"}
    assert store.count_blocks(DID) == 5
    assert store.list_collections(DID) == ["app.bsky.feed.like", "app.bsky.feed.post"]
    assert store.count_records(DID) == 2
    assert store.count_records(DID, "app.bsky.feed.like") == 1
    assert store.repo_bytes(DID) == 2 + 2 + 2 + 2 + 2
    assert store.list_referenced_blobs(DID) == []


def test_list_records_pagination(store: PdsStore) -> None:
    store.create_account(account())
    keys = [f"3k{i:02d}" for i in range(7)]
    store.apply_write(
        RepoWrite(
            DID,
            RepoRoot(cid(0), "3aaaaaaaaaaa2", cid(0)),
            [],
            [],
            {("c.o.l", k): cid(i) for i, k in enumerate(keys)},
            {},
        )
    )
    page = store.list_records(DID, "c.o.l", 3, None, reverse=False)
    assert [r.rkey for r in page] == keys[::-1][:3]
    page2 = store.list_records(DID, "c.o.l", 3, page[-1].rkey, reverse=False)
    assert [r.rkey for r in page2] == keys[::-1][3:6]
    asc = store.list_records(DID, "c.o.l", 4, None, reverse=True)
    assert [r.rkey for r in asc] == keys[:4]
    assert [r.rkey for r in store.list_records(DID, "c.o.l", 9, asc[-1].rkey, True)] == keys[4:]


def test_replace_repo_is_idempotent(store: PdsStore) -> None:
    store.create_account(account())
    root = RepoRoot(cid(1), "3aaaaaaaaaaa2", cid(2))
    blocks = [(cid(1), b"c"), (cid(2), b"n"), (cid(3), b"r")]
    refs = [RecordRef("app.bsky.feed.post", "3x", cid(3))]
    blob_refs = {f"at://{DID}/app.bsky.feed.post/3x": (cid(40), cid(41))}
    for _ in range(2):
        store.replace_repo(DID, root, blocks, refs, blob_refs)
    assert store.count_blocks(DID) == 3 and store.count_records(DID) == 1
    uri = f"at://{DID}/app.bsky.feed.post/3x"
    assert store.list_missing_blobs(DID, None, 10) == sorted([(cid(40), uri), (cid(41), uri)])
    store.add_blob(DID, BlobRow(cid(40), "image/png", 10, "2026-01-01T00:00:00.000Z"))
    store.add_blob(DID, BlobRow(cid(40), "image/png", 10, "2026-01-01T00:00:00.000Z"))
    assert store.list_missing_blobs(DID, None, 10) == [
        (cid(41), f"at://{DID}/app.bsky.feed.post/3x")
    ]
    assert store.blob_counts(DID) == (2, 1)
    assert store.blob_bytes(DID) == 10
    assert store.is_blob_referenced(DID, cid(40))
    assert store.list_blobs(DID, None, 10) == [cid(40)]
    assert store.get_blob(DID, cid(40)) == BlobRow(
        cid(40), "image/png", 10, "2026-01-01T00:00:00.000Z"
    )
    assert store.blob_owner_count(cid(40)) == 1
    assert store.list_referenced_blobs(DID, since="3aaaaaaaaaaa1") == sorted([cid(40), cid(41)])
    assert store.list_referenced_blobs(DID, since="3aaaaaaaaaaa2") == []


def test_sessions_app_passwords_tokens_preferences(store: PdsStore) -> None:
    store.create_account(account())
    store.add_refresh_token(RefreshTokenRow("j1", DID, None, 100))
    store.add_refresh_token(RefreshTokenRow("j2", DID, "phone", 200))
    assert store.get_refresh_token("j2") == RefreshTokenRow("j2", DID, "phone", 200)
    assert store.delete_refresh_token("j1") and not store.delete_refresh_token("j1")
    store.delete_refresh_tokens(DID, "phone")
    assert store.get_refresh_token("j2") is None
    store.add_refresh_token(RefreshTokenRow("j3", DID, None, 50))
    assert store.prune_refresh_tokens(60) == 1
    pw = AppPasswordRow("phone", "$argon2id$y", True, "2026-01-01T00:00:00.000Z")
    store.add_app_password(DID, pw)
    with pytest.raises(IntegrityError):
        store.add_app_password(DID, pw)
    assert store.list_app_passwords(DID) == [pw]
    assert store.delete_app_password(DID, "phone") and store.list_app_passwords(DID) == []
    store.put_email_token(DID, "plc_operation", "h1", 10)
    store.put_email_token(DID, "plc_operation", "h2", 20)
    assert store.get_email_token(DID, "plc_operation") == ("h2", 20)
    store.delete_email_token(DID, "plc_operation")
    assert store.get_email_token(DID, "plc_operation") is None
    assert store.get_preferences(DID) is None
    store.put_preferences(DID, "[1]")
    store.put_preferences(DID, "[2]")
    assert store.get_preferences(DID) == "[2]"


def test_events_and_usage(store: PdsStore) -> None:
    assert store.seq_bounds() == (None, None)
    for seq in (1, 2, 5):
        store.append_event(EventRow(seq, DID, "#commit", 1000 + seq, bytes([seq])))
    with pytest.raises(IntegrityError):
        store.append_event(EventRow(5, DID, "#commit", 0, b""))
    assert store.seq_bounds() == (1, 5)
    assert [e.seq for e in store.events_after(1, 10)] == [2, 5]
    assert store.events_after(0, 1)[0] == EventRow(1, DID, "#commit", 1001, b"\x01")
    assert store.prune_events(1003) == 2
    assert store.prune_events(10_000) == 0  # the newest event always stays
    assert store.seq_bounds() == (5, 5)
    store.create_account(account())
    store.add_usage([(DID, 2, 100)])
    store.add_usage([(DID, 1, 10), (OTHER, 1, 1)])
    assert store.get_usage(DID) == (3, 110)
    (row,) = store.usage_rows(None, 10)
    assert (row.did, row.requests, row.egress_bytes, row.records) == (DID, 3, 110, 0)


def test_delete_account_removes_everything(store: PdsStore) -> None:
    store.create_account(account())
    store.apply_write(
        RepoWrite(
            DID,
            RepoRoot(cid(1), "3aaaaaaaaaaa2", cid(2)),
            [(cid(1), b"c")],
            [],
            {("a.b.c", "k"): cid(1)},
            {},
        )
    )
    store.add_blob(DID, BlobRow(cid(9), "image/png", 1, "2026-01-01T00:00:00.000Z"))
    store.put_preferences(DID, "[]")
    store.delete_account(DID)
    assert store.get_account(DID) is None and store.get_root(DID) is None
    assert store.count_blocks(DID) == 0 and store.count_records(DID) == 0
    assert store.get_blob(DID, cid(9)) is None and store.get_preferences(DID) is None


def test_transaction_rolls_back(store: PdsStore) -> None:
    with pytest.raises(RuntimeError), store.transaction():
        store.create_account(account())
        raise RuntimeError("boom")
    assert store.get_account(DID) is None
