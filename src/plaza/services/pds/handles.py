"""Handle resolution for one PDS, checked both ways as the AT Protocol requires.

A handle names a DID only when both directions agree: the handle's authority says
which DID holds it (handle → DID), and that DID's document names the handle as its
first ``at://`` alias (DID → handle). For handles in the network's domains (the PDS's
``user_domains``) the authority is the directory, which lets one live DID claim each
such handle (:mod:`plaza.services.directory.handles`); every PDS of the network asks
it, so they all resolve a handle to the same DID. For any other handle (an account
that migrated in with a handle from elsewhere) the authority is this PDS's own
account table.
"""

from __future__ import annotations

from collections.abc import Iterable

from plaza.atproto import syntax
from plaza.atproto.errors import AtprotoError
from plaza.services.pds.errors import InvalidRequestError
from plaza.services.pds.identity import DirectoryClient
from plaza.services.pds.store import PdsStore


class HandleResolver:
    """Resolve and verify handles through the network's handle authority."""

    def __init__(self, *, identity: DirectoryClient, store: PdsStore, domains: Iterable[str]):
        self.identity = identity
        self.store = store
        self.domains = tuple(domains)

    def in_network(self, handle: str) -> bool:
        """True when ``handle`` (lower-cased) is under one of the network's domains."""
        return any(handle.endswith(d) and len(handle) > len(d) for d in self.domains)

    async def holder(self, handle: str) -> str | None:
        """The DID that ``handle``'s authority names (one direction only), or ``None``."""
        if self.in_network(handle):
            return await self.identity.handle_holder(handle)
        row = self.store.get_account_by_handle(handle)
        return None if row is None else row.did

    async def resolve(self, handle: str) -> str | None:
        """The DID ``handle`` names when both directions agree, else ``None``."""
        try:
            handle = syntax.normalize_handle(handle)
        except AtprotoError:
            return None
        did = await self.holder(handle)
        if did is None or not await self._document_names(did, handle):
            return None
        return did

    async def is_correct(self, handle: str, did: str) -> bool:
        """True when ``handle`` resolves, both ways, to ``did``."""
        return await self.resolve(handle) == did

    async def _document_names(self, did: str, handle: str) -> bool:
        try:
            data = await self.identity.data(did)
        except InvalidRequestError:  # not registered, tombstoned or not a did:plc
            return False
        return (data.handle or "").lower() == handle
