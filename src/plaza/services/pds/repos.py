"""Repositories: the write path, reads, export, import and proofs.

Theory of operation. Each hosted repository is an MST of record CIDs plus a signed
commit, and every commit is made by the core's one write operation,
:meth:`plaza.atproto.repo.Repo.apply_writes` (:func:`plaza.atproto.repo.apply_writes`
over the store's blocks). The manager keeps, per repository, the head as last
committed (a :class:`~plaza.atproto.repo.Repo`); decoded MST nodes live in a node cache
shared by every repository (keyed by CID, so sharing is safe), in front of the store's
block table. A write therefore reads only the nodes on its keys' paths that are not
cached yet, and never re-reads the whole repository. The manager adds what is the
host's own: XRPC write semantics (``swapRecord``, ``putRecord`` creating, a delete of
an absent record doing nothing), Lexicon and blob checks, the record index and blob
references, and which dropped record blocks no other record still links.

A write (:meth:`RepoManager.write`) holds its repository's lock from the check of
``swapCommit`` to the publication of its firehose event, so writes to one repository
are serialized; everything a commit changes — blocks, the record index, blob
references, the new root and its ``#commit`` event — lands in one store transaction.
On SQLite that transaction runs in place (it does not wait for the disk); on
PostgreSQL it runs on a connection of its own (:mod:`plaza.services.pds.pg_commit`)
while the event loop serves other requests, and the in-memory head moves only once it
has committed. The ``#commit`` carries the sync v1.1 fields: ops with ``prev``,
``prevData``, and a CAR slice with the nodes a consumer needs to invert the ops.

Revisions. Record keys and new revisions come from one TID generator the whole host
shares (:attr:`RepoManager.clock`), and only the host's clock moves it. A repository's
own floor — its next ``rev`` must exceed its last — is kept per repository
(:meth:`RepoManager.next_rev`), so a repository whose ``rev`` is ahead of the clock
gets revisions after its own and every other repository's stay at the clock. A
``rev`` from elsewhere (an imported repository) is refused when it is more than
``rev_skew_s`` (:data:`MAX_REV_SKEW_S` by default) ahead of the host's clock.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from plaza.atproto import cbor
from plaza.atproto import repo as core
from plaza.atproto.cid import CID
from plaza.atproto.commit import Commit, SignedCommit, sign_commit
from plaza.atproto.crypto import PrivateKey, parse_did_key
from plaza.atproto.errors import AtprotoError, InvalidSyntaxError
from plaza.atproto.mst import MST, NodeCache
from plaza.atproto.repo_verify import import_car
from plaza.atproto.sync import sync_event_car
from plaza.atproto.tid import TidClock, tid_after, tid_timestamp
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
    check_collection,
    check_rkey,
    find_blobs,
    parse_cid,
)
from plaza.services.pds.repo_reads import RepoReads
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
    "MAX_REV_SKEW_S",
    "CommitOutcome",
    "RepoManager",
    "Write",
    "WriteResult",
    "check_collection",
    "check_rkey",
    "parse_cid",
]

TREE_CACHE = 2_000
MAX_REV_SKEW_S = 300.0
"""How far ahead of this host's clock an imported repository's ``rev`` may be, in seconds."""


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
    repo: core.Repo
    outcome: CommitOutcome


class RepoManager(RepoReads):
    """Reads and writes the repositories of one PDS (see the module docstring).

    Reads, exports and proofs come from :class:`RepoReads`. ``clock`` (seconds since
    the epoch) times new record keys and revisions; ``rev_skew_s`` bounds how far
    ahead of it an imported ``rev`` may be.
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
        clock: Callable[[], float] = time.time,
        rev_skew_s: float = MAX_REV_SKEW_S,
    ) -> None:
        self.store = store
        self.sequencer = sequencer
        self.lexicons = lexicons
        self.identity = identity
        self.accounts = accounts
        self.settings = settings
        self.nodes = NodeCache(200_000)
        self.blocks = BlockCache()
        self._heads: collections.OrderedDict[str, tuple[RepoRoot, core.Repo]] = (
            collections.OrderedDict()
        )
        self._time = clock
        self.rev_skew_s = rev_skew_s
        self.clock = TidClock(self._now_us, random.randrange(1024))
        self._locks: dict[str, _RepoLock] = {}
        db = store.db
        self.committer = PgCommitter(db.url) if db.dialect == "postgresql" else None

    # -- helpers ---------------------------------------------------------------------
    @staticmethod
    def cid_str(raw: bytes) -> str:
        return str(CID(raw))

    def forget(self, did: str) -> None:
        self._heads.pop(did, None)

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
        root, head = self._head(did)
        return root, head.mst

    def _head(self, did: str) -> tuple[RepoRoot, core.Repo]:
        hit = self._heads.get(did)
        if hit is not None:
            self._heads.move_to_end(did)
            return hit
        root = self.store.get_root(did)
        if root is None:
            raise RepoInactiveError(f"Repo has no commit yet: {did}", code="RepoNotFound")
        head = core.Repo.load(self._source(did), CID(root.commit_cid), did=did, cache=self.nodes)
        self._remember(did, root, head)
        return root, head

    def _source(self, did: str) -> StoreSource:
        return StoreSource(self.store, did, self.blocks)

    def _remember(self, did: str, root: RepoRoot, head: core.Repo) -> None:
        self._heads[did] = (root, head)
        self._heads.move_to_end(did)
        while len(self._heads) > TREE_CACHE:
            self._heads.popitem(last=False)

    def _now_us(self) -> int:
        return int(self._time() * 1_000_000)

    def next_rev(self, after: str | None) -> str:
        """The ``rev`` of a repository's next commit: the shared clock's next TID, or,
        when the repository's last ``rev`` (``after``) is ahead of it, the next TID
        after that one. The shared clock never moves to a repository's ``rev``."""
        rev = self.clock.next()
        if after is None or rev > after:
            return rev
        try:
            return tid_after(after, self._now_us(), self.clock.clock_id)
        except InvalidSyntaxError as exc:
            raise InvalidRequestError(
                f"No revision follows this repository's last rev {after}; "
                "import a repository with an earlier rev"
            ) from exc

    def check_rev(self, rev: str) -> None:
        """Refuse a ``rev`` from elsewhere dated more than ``rev_skew_s`` ahead of the clock."""
        ahead_us = tid_timestamp(rev) - self._now_us()
        if ahead_us > self.rev_skew_s * 1_000_000:
            when = datetime.fromtimestamp(tid_timestamp(rev) / 1_000_000, UTC)
            raise InvalidRequestError(
                f"Repository rev {rev} is dated {when.isoformat(timespec='seconds')}, "
                f"more than {self.rev_skew_s:g} s ahead of this host's clock"
            )

    # -- creation --------------------------------------------------------------------
    def create_repo(self, did: str, key: PrivateKey, now: float, *, emit: bool) -> EventRow | None:
        """Store an empty repository (inside the caller's transaction)."""
        result = core.apply_writes(
            self._source(did), None, [], key, self.next_rev(None), did=did, cache=self.nodes
        )
        root = _root_of(result)
        self.store.apply_write(RepoWrite(did, root, _raw_blocks(result), [], {}, {}))
        self._remember(did, root, result.repo)
        if not emit:
            return None
        return self.sequencer.commit(
            did=did,
            commit=result.cid,
            rev=result.rev,
            since=None,
            blocks=result.car_slice,
            ops=[],
            prev_data=None,
            now=now,
        )

    def empty_commit(self, acct: Account, now: float) -> EventRow:
        """A new commit over the same data, signed with the account's current key.

        Sent after activation, so consumers see a commit from this host with its key.
        """
        old_root, head = self._head(acct.did)
        result = head.apply_writes([], acct.key, self.next_rev(old_root.rev))
        root = _root_of(result)
        self.store.apply_write(
            RepoWrite(acct.did, root, _raw_blocks(result), [old_root.commit_cid], {}, {})
        )
        self._remember(acct.did, root, result.repo)
        return self.sequencer.commit(
            did=acct.did,
            commit=result.cid,
            rev=result.rev,
            since=result.since,
            blocks=result.car_slice,
            ops=[],
            prev_data=result.prev_data,
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
        """Check the request against the head, turn it into the core's writes, commit."""
        if acct.status == TAKENDOWN:
            raise AccountTakedownError("Account has been taken down")
        if acct.status != ACTIVE:
            raise AccountDeactivatedError("Account is deactivated")
        if not 1 <= len(writes) <= core.MAX_WRITES:
            raise InvalidRequestError(f"Between 1 and {core.MAX_WRITES} writes are allowed")
        did = acct.did
        old_root, head = self._head(did)
        if swap_commit is not None and swap_commit.raw != old_root.commit_cid:
            raise InvalidSwapError(f"Commit was at {CID(old_root.commit_cid)}")
        planned: list[tuple[Write, str, str | None]] = []  # (write, uri, validation status)
        changes: list[core.Write] = []
        blob_refs: dict[str, tuple[bytes, ...]] = {}
        seen: set[str] = set()
        for w in writes:
            path = f"{w.collection}/{w.rkey}"
            if path in seen:
                raise InvalidRequestError(f"More than one write to {path}")
            seen.add(path)
            uri = f"at://{did}/{path}"
            # A plain create need not look: the core refuses one over an existing record.
            plain_create = w.action == "create" and not w.check_swap
            current = None if plain_create else head.mst.get(path)
            if w.check_swap and current != w.swap_record:
                raise InvalidSwapError(f"Record was at {current}")
            if w.action == "delete":
                if current is None:
                    if w.check_swap:
                        raise InvalidSwapError("Record does not exist")
                    continue
                changes.append(core.Write.delete(w.collection, w.rkey))
                blob_refs[uri] = ()
                planned.append((w, uri, None))
                continue
            if w.action == "create" and current is not None:
                raise InvalidRequestError(f"Record already exists: {uri}")
            status = self.lexicons.check_record(w.collection, w.rkey, w.value, validate)
            blobs = find_blobs(w.value)
            for blob in blobs:
                if self.store.get_blob(did, blob.raw) is None:
                    raise InvalidRequestError(f"Could not find blob: {blob}", code="BlobNotFound")
            if blobs or current is not None:
                blob_refs[uri] = tuple(b.raw for b in blobs)
            make = core.Write.create if current is None else core.Write.update
            changes.append(make(w.collection, w.rkey, w.value))
            planned.append((w, uri, status))
        result = head.apply_writes(changes, acct.key, self.next_rev(old_root.rev))
        records: dict[tuple[str, str], bytes | None] = {}
        results: list[WriteResult] = []
        for (w, uri, status), op in zip(planned, result.ops, strict=True):
            records[(w.collection, w.rkey)] = None if op.cid is None else op.cid.raw
            results.append(WriteResult(w.action, uri, op.cid, status))
        removed = [c.raw for c in result.removed_nodes]
        removed.append(old_root.commit_cid)
        for cid in result.dropped_records:
            # Records are content-addressed: another record may hold the same block.
            if not self._record_block_in_use(did, cid, records):
                removed.append(cid.raw)
        root = _root_of(result)
        write = RepoWrite(did, root, _raw_blocks(result), removed, records, blob_refs)
        event = self.sequencer.commit(
            in_flight=True,
            did=did,
            commit=result.cid,
            rev=result.rev,
            since=result.since,
            blocks=result.car_slice,
            ops=result.ops,
            prev_data=result.prev_data,
            now=time.time(),
        )
        return _PendingCommit(
            write, event, result.repo, CommitOutcome(result.cid, result.rev, results)
        )

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
        self._remember(commit.write.did, commit.write.root, commit.repo)
        return commit.outcome

    # -- import ----------------------------------------------------------------------
    async def _signed_by_current_key(self, acct: Account, commit: Commit) -> bool:
        if acct.key.public_key.verify(commit.unsigned_bytes(), commit.sig):
            return True
        current = await self.identity.signing_key(acct.did, refresh=True)
        return current.verify(commit.unsigned_bytes(), commit.sig)

    async def _signed_by_earlier_key(self, did: str, commit: Commit) -> None:
        """Refuse (``InvalidRequest``) a commit no earlier ``#atproto`` key of ``did`` signed."""
        for did_key in await self.identity.past_signing_keys(did):
            with contextlib.suppress(AtprotoError):
                if parse_did_key(did_key).verify(commit.unsigned_bytes(), commit.sig):
                    return
        raise InvalidRequestError(
            "The repository's commit is not signed by this account's key, nor by a key "
            "the DID has named"
        )

    async def import_car(self, acct: Account, data: bytes) -> None:
        """Replace the repository with a verified CAR export of the same DID.

        Every block is re-hashed, the commit must be the account's and signed by the
        DID's current key or this host's key for the account, its ``rev`` not ahead of
        the clock by more than ``rev_skew_s`` (:meth:`check_rev`), and every MST node
        and record must be present. A commit signed by an earlier ``#atproto`` key of
        the DID (its active PLC log says so) — a copy of the repository as the DID's old
        host signed it, from an archive when that host is gone — is accepted too, and
        stored re-signed by the account's key with the next ``rev``: same MST root,
        same records. Idempotent; an active account announces it with ``#sync``. The
        shared TID clock is left alone: the imported ``rev`` is only the floor of this
        repository's next revision.
        """
        repo = import_car(data, did=acct.did, max_bytes=self.settings.max_car_bytes)
        commit = repo.commit
        if commit.rev is None:
            raise InvalidRequestError("Only version-3 commits can be imported")
        self.check_rev(commit.rev)
        commit_cid, commit_block = repo.commit_cid, repo.blocks[repo.commit_cid]
        if not await self._signed_by_current_key(acct, commit):
            await self._signed_by_earlier_key(acct.did, commit)
            # A copy of a dead host's repository (from an archive): the same records,
            # under a commit this account's key signs.
            resigned = sign_commit(acct.did, commit.data, self.next_rev(commit.rev), acct.key)
            commit, commit_cid, commit_block = resigned.commit, resigned.cid, resigned.bytes
        assert commit.rev is not None
        blocks = [(cid.raw, data) for cid, data in repo.blocks.items() if cid != repo.commit_cid]
        blocks.append((commit_cid.raw, commit_block))
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
        root = RepoRoot(commit_cid.raw, commit.rev, commit.data.raw)
        now = time.time()
        with self.store.transaction():
            self.store.replace_repo(acct.did, root, blocks, refs, blob_refs)
            event = (
                self.sequencer.sync(
                    acct.did,
                    commit.rev,
                    sync_event_car(SignedCommit(commit, commit_cid, commit_block)),
                    now,
                )
                if acct.active
                else None
            )
        self.forget(acct.did)
        if event is not None:
            self.sequencer.publish([event])


def _root_of(result: core.CommitResult) -> RepoRoot:
    return RepoRoot(result.cid.raw, result.rev, result.data.raw)


def _raw_blocks(result: core.CommitResult) -> list[tuple[bytes, bytes]]:
    return [(cid.raw, block) for cid, block in result.new_blocks.items()]
