"""The read half of the repository manager: records, heads, exports, blocks and proofs.

A mixin of :class:`plaza.services.pds.repos.RepoManager` (one manager, split by
concept); it needs ``self.store``, ``self.identity``, ``self.settings`` and
``self._tree``, the repository's committed head and MST as the write path keeps them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

from plaza.atproto import cbor, datamodel
from plaza.atproto.car import car_header, car_section
from plaza.atproto.cid import CID
from plaza.atproto.errors import AtprotoError
from plaza.atproto.mst import MST
from plaza.services.pds.errors import (
    ExportInterruptedError,
    InvalidRequestError,
    RecordNotFoundError,
)
from plaza.services.pds.repo_parts import car_bytes
from plaza.services.pds.store import PdsStore, RepoRoot
from plaza.services.pds.store_repo import BLOCK_PAGE

if TYPE_CHECKING:
    from plaza.services.pds.account import Account
    from plaza.services.pds.identity import DirectoryClient
    from plaza.services.pds.settings import PdsSettings


class RepoReads:
    store: PdsStore
    identity: DirectoryClient
    settings: PdsSettings

    def _tree(self, did: str) -> tuple[RepoRoot, MST]:
        raise NotImplementedError

    def get_record(self, did: str, collection: str, rkey: str) -> tuple[CID, Any] | None:
        found = self.store.get_record_block(did, collection, rkey)
        if found is None:
            return None
        return CID(found[0]), cbor.decode(found[1])

    def record_json(self, did: str, collection: str, rkey: str) -> tuple[str, Any]:
        found = self.get_record(did, collection, rkey)
        if found is None:
            raise RecordNotFoundError(f"Could not locate record: at://{did}/{collection}/{rkey}")
        return str(found[0]), datamodel.to_json(found[1])

    def latest(self, did: str) -> RepoRoot:
        root, _ = self._tree(did)
        return root

    def export(self, did: str, since: str | None = None) -> bytes:
        """The repository (or the blocks added after ``since``) as a CAR, in memory: the
        bytes :meth:`export_stream` sends."""
        return b"".join(self._export_chunks(did, since))

    def export_stream(self, did: str, since: str | None = None) -> AsyncIterator[bytes]:
        """The CAR of :meth:`export`, as it is read: the header and the commit, then one
        chunk per page of blocks from the store. The repository is resolved now (a
        missing or empty one raises before anything is sent); each page is read on the
        event loop between two sends."""
        chunks = self._export_chunks(did, since)
        first = next(chunks)  # the header and the commit block, or the error

        async def stream() -> AsyncIterator[bytes]:
            yield first
            for chunk in chunks:
                yield chunk

        return stream()

    def _export_chunks(self, did: str, since: str | None) -> Iterator[bytes]:
        """Commit first, then the blocks (all, or added after ``since``) in CID order.

        A commit removes the blocks it made unreachable, so a page read after the
        repository moved on could lack blocks of the commit being exported: after every
        page the stored head is read again (the page's query came first, so a head still
        unchanged proves the page predates any commit), and if it moved the export stops
        with :class:`ExportInterruptedError` instead of ending short.
        """
        root, _ = self._tree(did)
        start = root.commit_cid
        commit_cid = CID(start)
        commit = self.store.get_block(did, start)
        assert commit is not None
        yield car_header([commit_cid]) + car_section(commit_cid, commit)
        after = b""
        while True:
            rows = self.store.block_page(did, since, after, BLOCK_PAGE)
            head = self.store.get_root(did)
            if head is None or head.commit_cid != start:
                raise ExportInterruptedError(
                    f"{did} changed while its repository was being exported; ask again"
                )
            chunk = b"".join(car_section(CID(cid), data) for cid, data in rows if cid != start)
            if chunk:
                yield chunk
            if len(rows) < BLOCK_PAGE:
                return
            after = rows[-1][0]

    def blocks_car(self, did: str, cids: list[CID]) -> bytes:
        root, _ = self._tree(did)
        found = self.store.get_blocks(did, [c.raw for c in cids])
        missing = [str(c) for c in cids if c.raw not in found]
        if missing:
            raise InvalidRequestError(f"Could not find blocks: {', '.join(missing[:5])}")
        return car_bytes(CID(root.commit_cid), ((c, found[c.raw]) for c in cids))

    def record_proof(self, did: str, collection: str, rkey: str) -> bytes:
        """Commit, MST path and (if present) the record: a proof of presence or absence."""
        root, tree = self._tree(did)
        path = f"{collection}/{rkey}"
        commit = self.store.get_block(did, root.commit_cid)
        assert commit is not None
        blocks: list[tuple[CID, bytes]] = [(CID(root.commit_cid), commit)]
        blocks.extend(tree.proof_blocks(path).items())
        cid = tree.get(path)
        if cid is not None:
            data = self.store.get_block(did, cid.raw)
            if data is not None:
                blocks.append((cid, data))
        return car_bytes(CID(root.commit_cid), blocks)

    async def did_points_here(self, acct: Account, *, refresh: bool = False) -> bool:
        """True when the DID names this PDS and the account's key (so it may be active)."""
        try:
            data = await self.identity.data(acct.did, refresh=refresh)
        except AtprotoError:
            return False
        except InvalidRequestError:
            return False
        endpoint = (data.pds_endpoint or "").rstrip("/")
        return (
            endpoint == self.settings.public_url.rstrip("/")
            and data.signing_key == acct.key.did_key()
        )
