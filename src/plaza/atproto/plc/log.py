"""A DID's operation log, and the rule that decides whether an operation joins it.

Theory of operation
-------------------
A DID's audit log is every operation the directory ever accepted for it, in the order
accepted, each stamped with ``createdAt`` and a ``nullified`` flag. The entries that are
not nullified form one chain from the genesis operation, each naming the previous one as
``prev``; the last of them is the *head*, and the DID's state is the head's fields (or
nothing, once the head is a tombstone).

A new operation names its ``prev``. There are two cases:

- ``prev`` is the head: a plain update. It must be signed by one of the head's
  rotation keys.
- ``prev`` is an earlier active entry: a fork. It nullifies every active entry after
  ``prev``. That is allowed only as *recovery*: the new operation must be signed by a
  key listed strictly earlier in ``prev``'s ``rotationKeys`` than the key that signed
  the first entry it nullifies, and no later than 72 hours after that entry's
  ``createdAt`` (exactly 72 hours is still in time).

In both cases ``prev`` must exist, must not be nullified, must not be a tombstone, and
the new ``createdAt`` must be later than every earlier one. A genesis operation is
accepted only for a DID with no history, and only when it hashes to that DID.

The same rule serves two callers. A directory calls :func:`apply_operation` with its
clock to accept or refuse a submission (with the stricter shape rules new operations
must meet). An auditor calls :func:`validate_audit_log`, which replays a published log
through the rule using the log's own timestamps and checks that every CID and every
``nullified`` flag it derives equals the published one.

Which key signed each entry (its index among the keys it was checked against) is kept
beside the entries: a later fork is measured against it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from plaza.atproto.errors import PlcError
from plaza.atproto.plc.constraints import check_new_operation
from plaza.atproto.plc.document import PlcData, op_data
from plaza.atproto.plc.errors import (
    PlcAuditLogError,
    PlcDidExistsError,
    PlcDidNotFoundError,
    PlcGenesisError,
    PlcKeyPriorityError,
    PlcLateRecoveryError,
    PlcOrderError,
    PlcPrevNotFoundError,
    PlcPrevNullifiedError,
    PlcTombstonedError,
)
from plaza.atproto.plc.operations import (
    Operation,
    PlcTombstone,
    authority_keys,
    did_for_genesis,
    is_did_plc,
    operation_cid,
    parse_operation,
    verify_operation_signature,
)

RECOVERY_WINDOW: Final = timedelta(hours=72)
_MS: Final = timedelta(milliseconds=1)
_ENTRY_FIELDS: Final = frozenset({"did", "operation", "cid", "nullified", "createdAt"})


def format_timestamp(moment: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SS.sssZ`` in UTC, the directory's ``createdAt`` format."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse_timestamp(text: Any) -> datetime:
    """Parse an RFC 3339 timestamp with a zone; the result is UTC, to the millisecond."""
    if not isinstance(text, str):
        raise PlcError(f"createdAt must be a string, not {type(text).__name__}")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise PlcError(f"createdAt is not an RFC 3339 timestamp: {text!r}") from exc
    if moment.tzinfo is None:
        raise PlcError(f"createdAt must carry a time zone: {text!r}")
    return _to_ms(moment)


def _to_ms(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return moment.astimezone(UTC).replace(microsecond=moment.microsecond // 1000 * 1000)


@dataclass(frozen=True)
class LogEntry:
    """One audit-log entry, as ``GET /{did}/log/audit`` lists it."""

    did: str
    operation: Operation
    cid: str
    nullified: bool
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "did": self.did,
            "operation": self.operation.to_json(),
            "cid": self.cid,
            "nullified": self.nullified,
            "createdAt": format_timestamp(self.created_at),
        }

    @classmethod
    def from_json(cls, value: Any) -> LogEntry:
        """Parse one audit-log entry strictly (the operation as :func:`parse_operation`)."""
        if not isinstance(value, dict) or value.keys() != _ENTRY_FIELDS:
            raise PlcError(
                "an audit-log entry must be exactly {did, operation, cid, nullified, createdAt}"
            )
        if not isinstance(value["did"], str) or not isinstance(value["cid"], str):
            raise PlcError("an audit-log entry's did and cid must be strings")
        if not isinstance(value["nullified"], bool):
            raise PlcError("an audit-log entry's nullified must be a boolean")
        return cls(
            did=value["did"],
            operation=parse_operation(value["operation"]),
            cid=value["cid"],
            nullified=value["nullified"],
            created_at=parse_timestamp(value["createdAt"]),
        )


@dataclass(frozen=True)
class PlcState:
    """A DID's audit log together with what the rule derived from it.

    ``key_indexes[i]`` is the index, among the rotation keys ``entries[i]`` was checked
    against, of the key that signed it. Build one with :meth:`empty` and
    :func:`apply_operation`, or from a published log with :func:`validate_audit_log`;
    a store that persisted both tuples may rebuild it directly.
    """

    did: str
    entries: tuple[LogEntry, ...] = ()
    key_indexes: tuple[int, ...] = ()

    @classmethod
    def empty(cls, did: str) -> PlcState:
        """The state of a DID with no history yet."""
        if not is_did_plc(did):
            raise PlcError(f"not a did:plc identifier: {did[:80]!r}")
        return cls(did)

    @property
    def exists(self) -> bool:
        return bool(self.entries)

    @property
    def active(self) -> tuple[LogEntry, ...]:
        """The entries not nullified: the DID's chain of operations, genesis first."""
        return tuple(e for e in self.entries if not e.nullified)

    @property
    def head(self) -> LogEntry | None:
        """The last active entry, which the next plain update names as ``prev``."""
        for entry in reversed(self.entries):
            if not entry.nullified:
                return entry
        return None

    @property
    def tombstoned(self) -> bool:
        head = self.head
        return head is not None and isinstance(head.operation, PlcTombstone)

    @property
    def data(self) -> PlcData | None:
        """The live state, or ``None`` when the DID is unknown or tombstoned."""
        head = self.head
        return None if head is None else op_data(self.did, head.operation)

    def index_of(self, cid: str) -> int | None:
        for i, entry in enumerate(self.entries):
            if entry.cid == cid:
                return i
        return None


@dataclass(frozen=True)
class AppliedOperation:
    """An accepted operation: the entry to append and the entries it nullifies."""

    entry: LogEntry
    key_index: int
    nullified: tuple[str, ...]
    previous_head: str | None
    state: PlcState


def _apply(state: PlcState, op: Operation, created_at: datetime) -> AppliedOperation:
    did = state.did
    entries = state.entries
    if not entries:
        if not op.is_genesis:
            raise PlcDidNotFoundError(
                f"DID not registered: {did}; only a genesis operation can create it"
            )
        derived = did_for_genesis(op)
        if derived != did:
            raise PlcGenesisError(f"the genesis operation defines {derived}, not {did}")
        index = verify_operation_signature(op, authority_keys(op))
        return _accept(state, op, created_at, index, later=())

    if op.prev is None:
        raise PlcDidExistsError(f"{did} already exists; a new operation must name its prev")
    pos = state.index_of(op.prev)
    if pos is None:
        raise PlcPrevNotFoundError(f"prev {op.prev} is not an operation of {did}")
    prev = entries[pos]
    if prev.nullified:
        raise PlcPrevNullifiedError(f"prev {op.prev} has been nullified by a recovery")
    if isinstance(prev.operation, PlcTombstone):
        raise PlcTombstonedError(f"prev {op.prev} is a tombstone; {did} is deactivated")
    index = verify_operation_signature(op, authority_keys(prev.operation))
    head = state.head
    assert head is not None  # prev is active, so there is a head
    if created_at <= head.created_at:
        raise PlcOrderError(
            f"createdAt {format_timestamp(created_at)} is not after the latest operation's "
            f"({format_timestamp(head.created_at)})"
        )
    later = tuple(i for i in range(pos + 1, len(entries)) if not entries[i].nullified)
    if later:
        first = later[0]
        disputed = state.key_indexes[first]
        if index >= disputed:
            raise PlcKeyPriorityError(
                f"a fork from {op.prev} must be signed by a rotation key before index "
                f"{disputed} (the key that signed {entries[first].cid}); "
                f"it was signed by index {index}"
            )
        lapsed = created_at - entries[first].created_at
        if lapsed > RECOVERY_WINDOW:
            raise PlcLateRecoveryError(
                f"{entries[first].cid} was accepted {lapsed} before this recovery; "
                f"the window is {RECOVERY_WINDOW}"
            )
    return _accept(state, op, created_at, index, later)


def _accept(
    state: PlcState, op: Operation, created_at: datetime, index: int, later: tuple[int, ...]
) -> AppliedOperation:
    entry = LogEntry(state.did, op, str(operation_cid(op)), False, created_at)
    entries = list(state.entries)
    for i in later:
        entries[i] = replace(entries[i], nullified=True)
    head = state.head
    return AppliedOperation(
        entry=entry,
        key_index=index,
        nullified=tuple(state.entries[i].cid for i in later),
        previous_head=None if head is None else head.cid,
        state=PlcState(state.did, (*entries, entry), (*state.key_indexes, index)),
    )


def next_timestamp(state: PlcState, now: datetime) -> datetime:
    """``now`` to the millisecond, moved just past the latest ``createdAt`` if needed.

    ``createdAt`` must strictly increase within a DID's log; a clock that stepped back,
    or two operations in one millisecond, must not make a valid operation invalid.
    """
    moment = _to_ms(now)
    if state.entries:
        latest = max(e.created_at for e in state.entries)
        if moment <= latest:
            moment = latest + _MS
    return moment


def apply_operation(state: PlcState, op: Operation, now: datetime) -> AppliedOperation:
    """Decide whether a directory accepts ``op`` for ``state.did`` at time ``now``.

    On acceptance, returns the entry to append (stamped with :func:`next_timestamp`),
    the CIDs it nullifies and the resulting state; ``state`` itself is unchanged.
    Otherwise raises a :class:`PlcError` subclass naming the rule that failed: the
    shape rules for new operations (:func:`check_new_operation`), then the log rule
    described at the top of this module.
    """
    check_new_operation(op)
    return _apply(state, op, next_timestamp(state, now))


def validate_audit_log(did: str, entries: Sequence[LogEntry | Mapping[str, Any]]) -> PlcState:
    """Re-derive a published audit log and return its state if every entry checks out.

    Each entry is a :class:`LogEntry` or its JSON form. Replays the operations in order
    through the log rule using their ``createdAt``; then checks each entry's DID, CID
    and ``nullified`` flag against what the replay derived. Raises the rule's
    :class:`PlcError` subclass (its message names the entry) or
    :class:`PlcAuditLogError` for an entry that disagrees with the replay.
    """
    if not isinstance(entries, Sequence) or isinstance(entries, str | bytes):
        raise PlcAuditLogError(f"the audit log of {did} must be a list of entries")
    if not entries:
        raise PlcAuditLogError(f"the audit log of {did} is empty")
    parsed = []
    for i, raw in enumerate(entries):
        if isinstance(raw, LogEntry):
            parsed.append(raw)
            continue
        try:
            parsed.append(LogEntry.from_json(raw))
        except PlcError as exc:
            raise type(exc)(f"entry {i}: {exc.message}") from exc
    state = PlcState.empty(did)
    for i, entry in enumerate(parsed):
        if entry.did != did:
            raise PlcAuditLogError(f"entry {i} belongs to {entry.did}, not {did}")
        try:
            applied = _apply(state, entry.operation, entry.created_at)
        except PlcError as exc:
            raise type(exc)(f"entry {i} ({entry.cid}): {exc.message}") from exc
        if applied.entry.cid != entry.cid:
            raise PlcAuditLogError(
                f"entry {i} lists cid {entry.cid} but its operation hashes to {applied.entry.cid}"
            )
        state = applied.state
    for i, (given, derived) in enumerate(zip(parsed, state.entries, strict=True)):
        if given.nullified != derived.nullified:
            raise PlcAuditLogError(
                f"entry {i} ({given.cid}) is listed with nullified={given.nullified}, "
                f"but the log's own history makes it nullified={derived.nullified}"
            )
    return state
