"""The entryway's accounts store on both backends: accounts by DID, handle and email;
a taken handle or email is refused and changes nothing; migrations are recorded."""

from __future__ import annotations

import pytest

from plaza.db import connect, schema_version
from plaza.network.entryway.errors import HandleNotAvailableError, InvalidRequestError
from plaza.network.entryway.schema import MIGRATIONS
from plaza.network.entryway.store import AccountRow, AccountStore


def _row(n: int, **changes: object) -> AccountRow:
    fields: dict[str, object] = {
        "did": f"did:plc:{'a' * 23}{n}",
        "handle": f"m{n}.test",
        "email": f"m{n}@example.com",
        "password_hash": "scrypt$...",
        "host_password": b"sealed-" + bytes([n]),
    }
    fields.update(changes)
    return AccountRow(**fields)  # type: ignore[arg-type]


def test_accounts_are_found_by_did_handle_and_email(db_url: str) -> None:
    store = AccountStore.open(db_url)
    store.add(_row(1))
    store.add(_row(2, email=None))
    one = store.get(_row(1).did)
    assert one is not None and one.handle == "m1.test" and one.host_password == b"sealed-\x01"
    assert store.by_handle("m2.test") == store.get(_row(2).did)
    assert store.by_email("m1@example.com") == one
    assert store.get("did:plc:nobody") is None and store.count() == 2
    assert "sealed" not in repr(one) and "scrypt" not in repr(one)
    store.close()


def test_a_taken_handle_or_email_is_refused_and_changes_nothing(db_url: str) -> None:
    store = AccountStore.open(db_url)
    store.add(_row(1))
    with pytest.raises(HandleNotAvailableError):
        store.add(_row(2, handle="m1.test"))
    with pytest.raises(InvalidRequestError):
        store.add(_row(3, email="m1@example.com"))
    assert store.count() == 1
    store.close()


def test_migrations_are_recorded_and_reopening_changes_nothing(db_url: str) -> None:
    store = AccountStore.open(db_url)
    store.add(_row(1))
    store.close()
    again = AccountStore.open(db_url)
    assert schema_version(again.db, "entryway") == MIGRATIONS.latest == 1
    assert again.count() == 1
    again.close()
    db = connect(db_url)
    rows = db.query("SELECT version, name FROM schema_migrations WHERE store = 'entryway'")
    assert [tuple(r) for r in rows] == [(1, "accounts")]
    db.close()
