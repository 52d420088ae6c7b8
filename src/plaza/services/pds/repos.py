"""Repositories: the write path, reads, export, import and proofs.

Theory of operation. Each hosted repository is an MST of record CIDs plus a signed
commit (:mod:`plaza.atproto.mst`, :mod:`plaza.atproto.commit`). The manager keeps, per
repository, the current root and the MST as last committed; decoded MST nodes live in a
node cache shared by every repository (keyed by CID, so sharing is safe), in front of
the store's block table. A write therefore reads only the nodes on its keys' paths that
are not cached yet, and never re-reads the whole repository.

A write (:meth:`RepoManager.write`) holds its repository's lock from the check of
``swapCommit`` to the publication of its firehose event, so writes to one repository
are serialized; everything a commit changes — blocks, the record index, blob
references, the new root and its ``#commit`` event — lands in one store transaction.
On SQLite that transaction runs in place (it does not wait for the disk); on
PostgreSQL it runs on a connection of its own (:mod:`plaza.services.pds.pg_commit`)
while the event loop serves other requests, and the in-memory head moves only once it
has committed. The ``#commit`` carries the sync v1.1 fields: ops with ``prev``,
``prevData``, and a CAR slice with the nodes a consumer needs to invert the ops.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from plaza.atproto import cbor
from plaza.atproto.cid import CID
from plaza.atproto.commit import verify_commit
from plaza.atproto.crypto import PrivateKey
from plaza.atproto.mst import MST, NodeCache, Op
from plaza.atproto.repo_verify import import_car
from plaza.atproto.tid import TidClock
from plaza.errors import StorageError
from plaza.services.pds.errors import (
    AccountDeactivatedError,
    AccountTakedownError,
    InvalidRequestError,
    InvalidSwapError,
    RepoInactiveError,
    RepoNotFoundError,
)
from plaza.services.pds.pg_commit import PgCommitter
from plaza.services.pds.repo_parts import (
    BlockCache,
    StoreSource,
    car_bytes,
    check_collection,
    check_rkey,
    find_blobs,
    parse_cid,
    signed_commit,
)
from plaza.services.pds.repo_reads import RepoReads
from plaza.services.pds.sequencer import RepoOp
from plaza.services.pds.store import (
    ACTIVE,
    TAKENDOWN,
    EventRow,
    PdsStore,
    RecordRef,
    RepoRoot,
    RepoWrite,
)
from plaza.services.pds.store_repo import pg_commit_statement

if TYPE_CHECKING:
    from plaza.services.pds.account import Account, AccountCache
    from plaza.services.pds.identity import DirectoryClient
    from plaza.services.pds.lexicons import LexiconCheck
    from plaza.services.pds.sequencer import Sequencer
    from plaza.services.pds.settings import PdsSettings

__all__ = [
    "CommitOutcome",
    "RepoManager",
    "Write",
    "WriteResult",
    "check_collection",
    "check_rkey",
    "parse_cid",
]

MAX_RECORD_BYTES = 1_000_000
MAX_WRITES = 200
TREE_CACHE = 2_000


@dataclass(frozen=True)
class Write:
    """One requested change: ``value`` is the record (data model) for create/update."""

    action: str  # create | update | delete
    collection: str
    rkey: str
    value: Any = None
    swap_record: CID | None = None
    check_swap: bool = False  # distinguishes "swapRecord: null" from "no swapRecord"


@dataclass(frozen=True)
class WriteResult:
    action: str
    uri: str
    cid: CID | None
    validation: str | None


@dataclass(frozen=True)
class CommitOutcome:
    commit: CID
    rev: str
    results: list[WriteResult]


class _RepoLock:
    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0


@dataclass(frozen=True)
class _PendingCommit:
    """A commit built and signed but not stored yet; its event is in flight."""

    write: RepoWrite
    event: EventRow
    tree: MST
    outcome: CommitOutcome


class RepoManager(RepoReads):
    """Reads and writes the repositories of one PDS (see the module docstring).

    Reads, exports and proofs come from :class:`RepoReads`.
    """

    def __init__(
        self,
        *,
        store: PdsStore,
        sequencer: Sequencer,
        lexicons: LexiconCheck,
        identity: DirectoryClient,
        accounts: AccountCache,
        settings: PdsSettings,
    ) -> None:
        self.store = store
        self.sequencer = sequencer
        self.lexicons = lexicons
        self.identity = identity
        self.accounts = accounts
        self.settings = settings
        self.nodes = NodeCache(200_000)
        self.blocks = BlockCache()
        self._trees: collections.OrderedDict[str, tuple[RepoRoot, MST]] = collections.OrderedDict()
        self.clock = TidClock(lambda: time.time_ns() // 1000, random.randrange(1024))
        self._locks: dict[str, _RepoLock] = {}
        db = store.db
        self.committer = PgCommitter(db.url) if db.dialect == "postgresql" else None

    # -- helpers ---------------------------------------------------------------------
    @staticmethod
    def cid_str(raw: bytes) -> str:
        return str(CID(raw))

    def forget(self, did: str) -> None:
        self._trees.pop(did, None)

    @contextlib.asynccontextmanager
    async def lock(self, did: str) -> AsyncIterator[None]:
        """Hold the repository of ``did``: writes, imports and status changes to one
        repository take turns (a PostgreSQL commit yields to the loop mid-write)."""
        entry = self._locks.get(did)
        if entry is None:
            entry = self._locks[did] = _RepoLock()
        entry.users += 1  # holders and waiters: the lock is dropped only when none is left
        try:
            async with entry.lock:
                yield
        finally:
            entry.users -= 1
            if entry.users == 0:
                del self._locks[did]

    async def start(self) -> None:
        if self.committer is not None:
            await self.committer.open()

    async def aclose(self) -> None:
        if self.committer is not None:
            await self.committer.aclose()

    def _tree(self, did: str) -> tuple[RepoRoot, MST]:
        hit = self._trees.get(did)
        if hit is not None:
            self._trees.move_to_end(did)
            return hit
        root = self.store.get_root(did)
        if root is None:
            raise RepoInactiveError(f"Repo has no commit yet: {did}", code="RepoNotFound")
        tree = MST.load(StoreSource(self.store, did, self.blocks), CID(root.data_cid), self.nodes)
        self._remember(did, root, tree)
        return root, tree

    def _remember(self, did: str, root: RepoRoot, tree: MST) -> None:
        self._trees[did] = (root, tree)
        self._trees.move_to_end(did)
        while len(self._trees) > TREE_CACHE:
            self._trees.popitem(last=False)

    def next_rev(self, after: str | None) -> str:
        rev = self.clock.next()
        if after is not None and rev <= after:
            rev = self.clock.next_after(after)
        return rev

    # -- creation --------------------------------------------------------------------
    def create_repo(self, did: str, key: PrivateKey, now: float, *, emit: bool) -> EventRow | None:
        """Store an empty repository (inside the caller's transaction)."""
        tree = MST.empty(StoreSource(self.store, did, self.blocks), self.nodes)
        data = tree.root()
        rev = self.next_rev(None)
        commit_cid, commit = signed_commit(did, data, rev, key)
        blocks = [(commit_cid, commit), *tree.new_blocks().items()]
        root = RepoRoot(commit_cid.raw, rev, data.raw)
        self.store.apply_write(RepoWrite(did, root, [(c.raw, b) for c, b in blocks], [], {}, {}))
        self._remember(did, root, tree.committed())
        if not emit:
            return None
        return self.sequencer.commit(
            did=did,
            commit=commit_cid,
            rev=rev,
            since=None,
            blocks=car_bytes(commit_cid, blocks),
            ops=[],
            prev_data=None,
            now=now,
        )

    def empty_commit(self, acct: Account, now: float) -> EventRow:
        """A new commit over the same data, signed with the account's current key.

        Sent after activation, so consumers see a commit from this host with its key.
        """
        old_root, tree = self._tree(acct.did)
        data = tree.root()
        rev = self.next_rev(old_root.rev)
        commit_cid, commit = signed_commit(acct.did, data, rev, acct.key)
        root = RepoRoot(commit_cid.raw, rev, data.raw)
        self.store.apply_write(
            RepoWrite(acct.did, root, [(commit_cid.raw, commit)], [old_root.commit_cid], {}, {})
        )
        self._remember(acct.did, root, tree)
        return self.sequencer.commit(
            did=acct.did,
            commit=commit_cid,
            rev=rev,
            since=old_root.rev,
            blocks=car_bytes(commit_cid, [(commit_cid, commit)]),
            ops=[],
            prev_data=data,
            now=now,
        )

    # -- writes ----------------------------------------------------------------------
    async def write(
        self,
        acct: Account,
        writes: list[Write],
        *,
        swap_commit: CID | None,
        validate: bool | None,
    ) -> CommitOutcome:
        """Apply ``writes`` as one commit (see the module docstring)."""
        async with self.lock(acct.did):
            current = self.accounts.cached(acct.did)  # it may have changed meanwhile
            if current is None:
                raise RepoNotFoundError(f"Could not find repo: {acct.did}")
            acct = current
            commit = self._prepare(acct, writes, swap_commit=swap_commit, validate=validate)
            if self.committer is None:
                return await self._land(commit)  # runs through without yielding
            # A commit sent to PostgreSQL may land even if this request is cancelled
            # (at shutdown): let it finish, and hold the lock until the head has moved.
            landing = asyncio.ensure_future(self._land(commit))
            try:
                return await asyncio.shield(landing)
            except asyncio.CancelledError:
                with contextlib.suppress(Exception):
                    await asyncio.shield(landing)
                raise

    def _prepare(
        self,
        acct: Account,
        writes: list[Write],
        *,
        swap_commit: CID | None,
        validate: bool | None,
    ) -> _PendingCommit:
        if acct.status == TAKENDOWN:
            raise AccountTakedownError("Account has been taken down")
        if acct.status != ACTIVE:
            raise AccountDeactivatedError("Account is deactivated")
        if not 1 <= len(writes) <= MAX_WRITES:
            raise InvalidRequestError(f"Between 1 and {MAX_WRITES} writes are allowed")
        did = acct.did
        old_root, old_tree = self._tree(did)
        if swap_commit is not None and swap_commit.raw != old_root.commit_cid:
            raise InvalidSwapError(f"Commit was at {CID(old_root.commit_cid)}")
        tree = old_tree
        ops: list[Op] = []
        results: list[WriteResult] = []
        record_blocks: list[tuple[CID, bytes]] = []
        records: dict[tuple[str, str], bytes | None] = {}
        blob_refs: dict[str, tuple[bytes, ...]] = {}
        dropped: set[CID] = set()
        seen: set[str] = set()
        for w in writes:
            path = f"{w.collection}/{w.rkey}"
            if path in seen:
                raise InvalidRequestError(f"More than one write to {path}")
            seen.add(path)
            uri = f"at://{did}/{path}"
            current = tree.get(path)
            if w.check_swap and current != w.swap_record:
                raise InvalidSwapError(f"Record was at {current}")
            if w.action == "delete":
                if current is None:
                    if w.check_swap:
                        raise InvalidSwapError("Record does not exist")
                    continue
                tree = tree.delete(path)
                ops.append(Op("delete", path, None, current))
                records[(w.collection, w.rkey)] = None
                blob_refs[uri] = ()
                dropped.add(current)
                results.append(WriteResult("delete", uri, None, None))
                continue
            if w.action == "create" and current is not None:
                raise InvalidRequestError(f"Record already exists: {uri}")
            status = self.lexicons.check_record(w.collection, w.rkey, w.value, validate)
            cid, data = cbor.encode_with_cid(w.value)
            if len(data) > MAX_RECORD_BYTES:
                raise InvalidRequestError(f"Record is larger than {MAX_RECORD_BYTES} bytes")
            blobs = find_blobs(w.value)
            for blob in blobs:
                if self.store.get_blob(did, blob.raw) is None:
                    raise InvalidRequestError(f"Could not find blob: {blob}", code="BlobNotFound")
            record_blocks.append((cid, data))
            records[(w.collection, w.rkey)] = cid.raw
            if blobs or current is not None:
                blob_refs[uri] = tuple(b.raw for b in blobs)
            if current is None:
                tree = tree.put(path, cid)
                ops.append(Op("create", path, cid, None))
            else:
                if current != cid:
                    tree = tree.put(path, cid)
                    dropped.add(current)
                ops.append(Op("update", path, cid, current))
            results.append(WriteResult(w.action, uri, cid, status))
        return self._build(
            acct,
            old_root,
            old_tree,
            tree,
            ops=ops,
            record_blocks=record_blocks,
            records=records,
            blob_refs=blob_refs,
            dropped=dropped,
            results=results,
        )

    def _build(
        self,
        acct: Account,
        old_root: RepoRoot,
        old_tree: MST,
        tree: MST,
        *,
        ops: list[Op],
        record_blocks: list[tuple[CID, bytes]],
        records: dict[tuple[str, str], bytes | None],
        blob_refs: dict[str, tuple[bytes, ...]],
        dropped: set[CID],
        results: list[WriteResult],
    ) -> _PendingCommit:
        did = acct.did
        now = time.time()
        data = tree.root()
        prev_data = CID(old_root.data_cid)
        rev = self.next_rev(old_root.rev)
        commit_cid, commit = signed_commit(did, data, rev, acct.key)
        nodes = tree.new_blocks()
        for cid, block in nodes.items():
            self.blocks.put(cid, block)
        removed = [c.raw for c in tree.removed_nodes(old_tree)]
        removed.append(old_root.commit_cid)
        new_cids = {c for c, _ in record_blocks}
        for cid in dropped:
            # Records are content-addressed: another record may hold the same block.
            if cid not in new_cids and not self._record_block_in_use(did, cid, records):
                removed.append(cid.raw)
        blocks = [(commit_cid.raw, commit)]
        blocks.extend((c.raw, b) for c, b in nodes.items())
        blocks.extend((c.raw, b) for c, b in record_blocks)
        slice_blocks = [(commit_cid, commit)]
        slice_blocks.extend(tree.inversion_blocks(ops).items())
        slice_blocks.extend(record_blocks)
        root = RepoRoot(commit_cid.raw, rev, data.raw)
        write = RepoWrite(did, root, blocks, removed, records, blob_refs)
        event = self.sequencer.commit(
            in_flight=True,
            did=did,
            commit=commit_cid,
            rev=rev,
            since=old_root.rev,
            blocks=car_bytes(commit_cid, slice_blocks),
            ops=[RepoOp(o.action, o.path, o.cid, o.prev) for o in ops],
            prev_data=prev_data,
            now=now,
        )
        return _PendingCommit(write, event, tree, CommitOutcome(commit_cid, rev, results))

    def _record_block_in_use(
        self, did: str, cid: CID, changed: dict[tuple[str, str], bytes | None]
    ) -> bool:
        """True if a record this commit leaves alone still points at block ``cid``."""
        holders = self.store.records_with_cid(did, cid.raw, len(changed) + 1)
        return any(key not in changed for key in holders)

    async def _land(self, commit: _PendingCommit) -> CommitOutcome:
        """Store a prepared commit in one transaction, then move the head and publish."""
        committed = False
        try:
            if self.committer is None:
                self.store.apply_write(commit.write, commit.event)
            else:
                await self.committer.execute(*pg_commit_statement(commit.write, commit.event))
            committed = True
        except StorageError:
            # A lost connection leaves the outcome unknown: read the head back next time.
            self.forget(commit.write.did)
            raise
        finally:
            self.sequencer.settle(commit.event, committed=committed)
        self._remember(commit.write.did, commit.write.root, commit.tree.committed())
        return commit.outcome

    # -- import ----------------------------------------------------------------------
    async def import_car(self, acct: Account, data: bytes) -> None:
        """Replace the repository with a verified CAR export of the same DID.

        Every block is re-hashed, the commit must be the account's and signed by the
        DID's current key (or this host's key for the account), and every MST node and
        record must be present. Idempotent; an active account announces it with ``#sync``.
        """
        repo = import_car(data, did=acct.did, max_bytes=self.settings.max_car_bytes)
        commit = repo.commit
        if commit.rev is None:
            raise InvalidRequestError("Only version-3 commits can be imported")
        if not acct.key.public_key.verify(commit.unsigned_bytes(), commit.sig):
            verify_commit(commit, await self.identity.signing_key(acct.did, refresh=True))
        blocks = [(cid.raw, data) for cid, data in repo.blocks.items()]
        refs: list[RecordRef] = []
        blob_refs: dict[str, tuple[bytes, ...]] = {}
        for path, cid in repo.records.items():
            collection, _, rkey = path.partition("/")
            refs.append(RecordRef(collection, rkey, cid.raw))
            block = repo.blocks[cid]
            # A blob reference is a map with "$type": "blob"; without those bytes there is none.
            blobs = find_blobs(cbor.decode(block)) if b"blob" in block else []
            if blobs:
                blob_refs[f"at://{acct.did}/{path}"] = tuple(b.raw for b in blobs)
        commit_block = repo.blocks[repo.commit_cid]
        root = RepoRoot(repo.commit_cid.raw, commit.rev, commit.data.raw)
        now = time.time()
        with self.store.transaction():
            self.store.replace_repo(acct.did, root, blocks, refs, blob_refs)
            event = (
                self.sequencer.sync(
                    acct.did,
                    commit.rev,
                    car_bytes(repo.commit_cid, [(repo.commit_cid, commit_block)]),
                    now,
                )
                if acct.active
                else None
            )
        self.forget(acct.did)
        if event is not None:
            self.sequencer.publish([event])
        self.clock.observe(commit.rev)
