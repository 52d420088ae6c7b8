"""The ledger: an event store plus the rules for what may be appended to it.

:class:`Ledger` verifies every event's signature against a key registry before the store
sees it, builds and signs the next event for a writer, signs checkpoints, and serves
Merkle proofs. Positions are claimed optimistically: :meth:`Ledger.build` signs an event
for the current head, and if another writer gets there first :meth:`Ledger.append` raises
:class:`~plaza.ledger.errors.AppendConflictError` (nothing written, nothing lost); the
caller re-reads the head and tries again. :meth:`Ledger.record` does that through the
command core (:mod:`plaza.ledger.command`) for a writer that keeps no state.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from plaza.atproto.crypto import PrivateKey
from plaza.ledger import merkle
from plaza.ledger.checkpoint import Checkpoint, sign_checkpoint
from plaza.ledger.command import RETRY, Commands, Retry
from plaza.ledger.errors import CheckpointError
from plaza.ledger.event import Event, sign_event
from plaza.ledger.keys import DidKeyRegistry, KeyRegistry, verify_event_signature
from plaza.ledger.keystore import Signer
from plaza.ledger.store import EventStore, Head


class _Nothing:
    """The state of a writer that keeps none: every event is legal."""

    def check(self, event: Event) -> None:
        pass

    def apply(self, event: Event) -> None:
        pass

    def fingerprint(self) -> bytes:
        return b""


class Ledger:
    """An append-only, hash-chained, signed event log over an :class:`EventStore`."""

    def __init__(
        self, store: EventStore, registry: KeyRegistry | None = None, *, retry: Retry = RETRY
    ) -> None:
        self.store = store
        self.registry: KeyRegistry = registry if registry is not None else DidKeyRegistry()
        self.retry = retry

    # -- writing -----------------------------------------------------------------------
    def head(self) -> Head:
        return self.store.head()

    def build(
        self,
        key: PrivateKey,
        *,
        author_did: str,
        type: str,
        payload: dict[str, Any],
        time: int,
        head: Head | None = None,
    ) -> Event:
        """Sign the event that would come next after ``head`` (default: the current head).

        ``time`` is raised to the head's time if it is earlier, because ledger time never
        runs backwards.
        """
        at = head if head is not None else self.store.head()
        return sign_event(
            key,
            seq=at.size,
            prev_hash=at.hash,
            time=max(time, at.time),
            author_did=author_did,
            type=type,
            payload=payload,
        )

    def verify(self, event: Event) -> None:
        """Raise unless ``event``'s signature verifies against a key of its author."""
        verify_event_signature(event, self.registry)

    def append(self, event: Event) -> Head:
        """Verify ``event``'s signature, then append it; return the new head."""
        verify_event_signature(event, self.registry)
        return self.store.append([event])

    def append_many(self, events: Sequence[Event]) -> Head:
        """Verify every signature, then append the run atomically."""
        for ev in events:
            verify_event_signature(ev, self.registry)
        return self.store.append(events)

    def record(
        self,
        key: PrivateKey,
        *,
        author_did: str,
        type: str,
        payload: dict[str, Any],
        time: int,
    ) -> Event:
        """Build, sign and append an event at the store's head, rebuilding on a lost race
        as the ledger's retry policy says. Raises the last :class:`AppendConflictError`
        if every attempt lost."""
        core = Commands(self, _Nothing, retry=self.retry, replay=False)
        return core.record(Signer(author_did, key), type, payload, time)

    # -- reading -----------------------------------------------------------------------
    def read(self, start: int = 0, stop: int | None = None) -> Iterator[Event]:
        return self.store.read(start, stop)

    def get(self, seq: int) -> Event:
        return self.store.get(seq)

    def __len__(self) -> int:
        return self.store.head().size

    # -- checkpoints and proofs ----------------------------------------------------------
    def checkpoint(self, key: PrivateKey, *, time: int, size: int | None = None) -> Checkpoint:
        """Sign and store a checkpoint over the first ``size`` events (default: all)."""
        head = self.store.head()
        n = head.size if size is None else size
        if not 0 < n <= head.size:
            raise CheckpointError(f"cannot checkpoint {n} events of a log of {head.size}")
        hashes = self.store.hashes(0, n)
        cp = sign_checkpoint(
            key,
            size=n,
            root=merkle.root([merkle.leaf_hash(h) for h in hashes]),
            head=hashes[-1],
            time=time,
        )
        self.store.add_checkpoint(cp)
        return cp

    def root(self, size: int | None = None) -> bytes:
        """The Merkle root over the first ``size`` events (default: all)."""
        return merkle.root(self._leaves(size))

    def _leaves(self, size: int | None) -> list[bytes]:
        head = self.store.head()
        n = head.size if size is None else size
        if not 0 <= n <= head.size:
            raise CheckpointError(f"the log has {head.size} events, not {n}")
        return [merkle.leaf_hash(h) for h in self.store.hashes(0, n)]

    def inclusion_proof(self, seq: int, size: int | None = None) -> list[bytes]:
        """Audit path proving event ``seq`` is in the tree of the first ``size`` events."""
        return merkle.inclusion_proof(seq, self._leaves(size))

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """Proof that the first ``old_size`` events are a prefix of the first ``new_size``."""
        return merkle.consistency_proof(old_size, self._leaves(new_size))


def event_leaf(event: Event) -> bytes:
    """The Merkle leaf hash of an event (what inclusion proofs start from)."""
    return merkle.leaf_hash(event.hash)
