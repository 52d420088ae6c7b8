"""Values the PDS store reads and writes (frozen rows) and the account statuses."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

ACTIVE = "active"
DEACTIVATED = "deactivated"
TAKENDOWN = "takendown"
DELETED = "deleted"
STATUSES = (ACTIVE, DEACTIVATED, TAKENDOWN, DELETED)


@dataclass(frozen=True)
class AccountRow:
    did: str
    handle: str
    email: str | None
    password_hash: str
    signing_key: bytes
    created_at: str
    status: str
    status_at: str | None = None
    delete_after: str | None = None
    email_confirmed: bool = False

    def __repr__(self) -> str:  # keep secrets out of logs and tracebacks
        return f"AccountRow(did={self.did!r}, handle={self.handle!r}, status={self.status!r})"


@dataclass(frozen=True)
class RepoRoot:
    """The head of a repository: commit CID, its ``rev`` and the MST root it signs."""

    commit_cid: bytes
    rev: str
    data_cid: bytes


@dataclass(frozen=True)
class RecordRef:
    collection: str
    rkey: str
    cid: bytes


@dataclass(frozen=True)
class BlobRow:
    cid: bytes
    mime: str
    size: int
    created_at: str


@dataclass(frozen=True)
class AppPasswordRow:
    name: str
    password_hash: str
    privileged: bool
    created_at: str

    def __repr__(self) -> str:
        return f"AppPasswordRow(name={self.name!r}, privileged={self.privileged})"


@dataclass(frozen=True)
class RefreshTokenRow:
    jti: str
    did: str
    app_password: str | None
    expires_at: int


@dataclass(frozen=True)
class EventRow:
    seq: int
    did: str
    kind: str
    created_s: int
    frame: bytes


@dataclass(frozen=True)
class RepoWrite:
    """Everything one commit changes in the store.

    ``records`` maps ``(collection, rkey)`` to the new record CID, or ``None`` for a
    deletion. ``blob_refs`` maps a record URI to the blob CIDs it references (an empty
    tuple clears them); a URI that is absent keeps its references.
    """

    did: str
    root: RepoRoot
    new_blocks: Sequence[tuple[bytes, bytes]]
    removed_blocks: Sequence[bytes]
    records: dict[tuple[str, str], bytes | None]
    blob_refs: dict[str, tuple[bytes, ...]]


@dataclass(frozen=True)
class UsageRow:
    """What one account costs its host, as stored (requests and egress are flushed counts)."""

    did: str
    records: int
    repo_bytes: int
    blob_bytes: int
    requests: int
    egress_bytes: int
