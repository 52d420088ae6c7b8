"""A hosted account as the request path needs it, and the cache that loads them.

Every authenticated request and every write needs the account with its signing key
decoded, so accounts are decoded once and kept (:class:`AccountCache`); whoever changes
an account's row invalidates its entry.
"""

from __future__ import annotations

from dataclasses import dataclass

from plaza.atproto.crypto import ES256K, PrivateKey
from plaza.services.pds.errors import RepoNotFoundError
from plaza.services.pds.store import ACTIVE, AccountRow, PdsStore


@dataclass(frozen=True)
class Account:
    """A hosted account as the request path needs it (the signing key decoded once)."""

    did: str
    handle: str
    email: str | None
    status: str
    key: PrivateKey
    created_at: str
    email_confirmed: bool

    @property
    def active(self) -> bool:
        return self.status == ACTIVE

    def __repr__(self) -> str:
        return f"Account(did={self.did!r}, handle={self.handle!r}, status={self.status!r})"


def _from_row(row: AccountRow) -> Account:
    return Account(
        row.did,
        row.handle,
        row.email,
        row.status,
        PrivateKey.from_bytes(ES256K, row.signing_key),
        row.created_at,
        row.email_confirmed,
    )


class AccountCache:
    """Accounts of one store, decoded on first use and kept until invalidated."""

    def __init__(self, store: PdsStore) -> None:
        self.store = store
        self._cache: dict[str, Account] = {}

    def cached(self, did: str) -> Account | None:
        acct = self._cache.get(did)
        if acct is None:
            row = self.store.get_account(did)
            if row is None:
                return None
            acct = self._cache[did] = _from_row(row)
        return acct

    def invalidate(self, did: str) -> None:
        self._cache.pop(did, None)

    def lookup(self, identifier: str) -> Account | None:
        """An account by DID, handle or email."""
        ident = identifier.strip()
        if ident.startswith("did:"):
            return self.cached(ident)
        row = self.store.get_account_by_email(ident) if "@" in ident else None
        if row is None:
            row = self.store.get_account_by_handle(ident.lower())
        return None if row is None else self.cached(row.did)

    def require(self, identifier: str) -> Account:
        """:meth:`lookup`, or :class:`RepoNotFoundError`."""
        acct = self.lookup(identifier)
        if acct is None:
            raise RepoNotFoundError(f"Could not find repo: {identifier}")
        return acct


__all__ = ["Account", "AccountCache"]
