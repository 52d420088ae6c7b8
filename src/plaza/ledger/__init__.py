"""The ledger: an append-only, hash-chained, signed event log with checkpoints and proofs.

Every governance and market fact in Plaza is an :class:`Event`. A :class:`Ledger` checks
each event's signature against a :class:`KeyRegistry` and appends it to an
:class:`EventStore` (in memory, SQLite or PostgreSQL); state is whatever a
:class:`Projection` derives by replaying the events. :func:`verify_log` re-checks a whole
log from its bytes and names the first bad event.

Packages write through the command core (:class:`Commands`: sync, build at the head,
check, append, apply, with batches and one :class:`Retry` policy) and declare how their
state evolves in one :class:`HandlerTable` of typed handlers.
"""

from plaza.ledger import merkle
from plaza.ledger.archive import (
    Archive,
    VerifiedArchive,
    export_jsonl,
    import_archive,
    import_verified,
    load_archive,
    read_archive,
    verify_archive,
)
from plaza.ledger.checkpoint import Checkpoint, sign_checkpoint
from plaza.ledger.clock import iso_ms
from plaza.ledger.command import RETRY, Batch, Commands, Log, Retry, head_after
from plaza.ledger.errors import (
    AppendConflictError,
    ArchiveError,
    CheckpointError,
    EventNotFoundError,
    EventRejectedError,
    EventSignatureError,
    InvalidEventError,
    KeystoreError,
    LedgerError,
    ProofError,
    UnknownAuthorError,
)
from plaza.ledger.event import GENESIS_PREV, Event, sign_event
from plaza.ledger.handlers import EventPayload, HandlerTable, Mutation, On
from plaza.ledger.identity import prove_binding
from plaza.ledger.keys import (
    DidKeyRegistry,
    KeyRegistry,
    StaticKeyRegistry,
    did_key_keys,
    verify_event_signature,
)
from plaza.ledger.ledger import Ledger, event_leaf
from plaza.ledger.replay import Combined, Projection, replay
from plaza.ledger.sqlstore import SqlEventStore
from plaza.ledger.store import EMPTY_HEAD, EventStore, Head, MemoryEventStore
from plaza.ledger.verify import Problem, VerifyReport, verify_log

__all__ = [
    "EMPTY_HEAD",
    "GENESIS_PREV",
    "RETRY",
    "AppendConflictError",
    "Archive",
    "ArchiveError",
    "Batch",
    "Checkpoint",
    "CheckpointError",
    "Combined",
    "Commands",
    "DidKeyRegistry",
    "Event",
    "EventNotFoundError",
    "EventPayload",
    "EventRejectedError",
    "EventSignatureError",
    "EventStore",
    "HandlerTable",
    "Head",
    "InvalidEventError",
    "KeyRegistry",
    "KeystoreError",
    "Ledger",
    "LedgerError",
    "Log",
    "MemoryEventStore",
    "Mutation",
    "On",
    "Problem",
    "Projection",
    "ProofError",
    "Retry",
    "SqlEventStore",
    "StaticKeyRegistry",
    "UnknownAuthorError",
    "VerifiedArchive",
    "VerifyReport",
    "did_key_keys",
    "event_leaf",
    "export_jsonl",
    "head_after",
    "import_archive",
    "import_verified",
    "iso_ms",
    "load_archive",
    "merkle",
    "prove_binding",
    "read_archive",
    "replay",
    "sign_checkpoint",
    "sign_event",
    "verify_archive",
    "verify_event_signature",
    "verify_log",
]
