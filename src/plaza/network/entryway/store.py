"""The entryway's accounts, over :mod:`plaza.db` (SQLite by default, PostgreSQL by URL).

One table, ``entryway_account`` (made by :data:`plaza.network.entryway.schema.MIGRATIONS`):
per account its DID, the handle and email it signed up with (each unique), the scrypt
hash of the member's password (:mod:`plaza.network.entryway.passwords`) and the host
password sealed by the escrow (:mod:`plaza.network.entryway.escrow`). The handle is the
one the account was made with; a member who changes it at their host is found by the
new one through the directory (:meth:`AccountStore.find` takes DIDs too).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from plaza.db import Database, IntegrityError, Row, connect, migrate
from plaza.network.entryway.errors import HandleNotAvailableError, InvalidRequestError
from plaza.network.entryway.schema import MIGRATIONS


@dataclass(frozen=True)
class AccountRow:
    """One account the entryway made."""

    did: str
    handle: str
    email: str | None
    password_hash: str = field(repr=False)
    host_password: bytes = field(repr=False)  # sealed
    created_at: str = ""


_COLUMNS = "did, handle, email, password_hash, host_password, created_at"


def _row(row: Row) -> AccountRow:
    return AccountRow(
        did=str(row[0]),
        handle=str(row[1]),
        email=None if row[2] is None else str(row[2]),
        password_hash=str(row[3]),
        host_password=bytes(row[4]),
        created_at=str(row[5]),
    )


class AccountStore:
    """The accounts table (see the module docstring)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        migrate(db, MIGRATIONS)

    @classmethod
    def open(cls, url: str | Path) -> AccountStore:
        return cls(connect(url))

    def close(self) -> None:
        self.db.close()

    def check(self) -> None:
        """Raise :class:`~plaza.errors.StorageError` if the database does not answer."""
        self.db.scalar("SELECT 1")

    def add(self, account: AccountRow) -> None:
        """Store a new account; a handle or email already held is refused."""
        created = account.created_at or datetime.now(UTC).isoformat()
        try:
            with self.db.transaction():
                self.db.execute(
                    f"INSERT INTO entryway_account ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        account.did,
                        account.handle,
                        account.email,
                        account.password_hash,
                        account.host_password,
                        created,
                    ),
                )
        except IntegrityError as exc:
            if self.by_handle(account.handle) is not None:
                raise HandleNotAvailableError(f"Handle already taken: {account.handle}") from exc
            raise InvalidRequestError("This email address or DID already has an account") from exc

    def get(self, did: str) -> AccountRow | None:
        row = self.db.one(f"SELECT {_COLUMNS} FROM entryway_account WHERE did = ?", (did,))
        return None if row is None else _row(row)

    def by_handle(self, handle: str) -> AccountRow | None:
        row = self.db.one(f"SELECT {_COLUMNS} FROM entryway_account WHERE handle = ?", (handle,))
        return None if row is None else _row(row)

    def by_email(self, email: str) -> AccountRow | None:
        row = self.db.one(f"SELECT {_COLUMNS} FROM entryway_account WHERE email = ?", (email,))
        return None if row is None else _row(row)

    def count(self) -> int:
        return int(self.db.scalar("SELECT COUNT(*) FROM entryway_account"))
