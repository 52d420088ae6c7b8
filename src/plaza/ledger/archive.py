"""Export and import a ledger as JSON lines (``.jsonl``), readable and re-verifiable.

Format (one JSON value per line, UTF-8)::

    {"format": "plaza-ledger", "version": 1, "events": N, "checkpoints": M}
    {"hash": "<hex sha-256 of the event bytes>", "event": <event in atproto JSON>}
    ... N event lines, in seq order ...
    {"checkpoint": <checkpoint in atproto JSON>}
    ... M checkpoint lines, by size ...

An event in atproto JSON is the map ``{seq, prev, time, author, type, payload, sig}`` with
byte strings written ``{"$bytes": base64}``; its DAG-CBOR encoding is the exact bytes the
ledger stored and hashed, so the file needs nothing else to be verified. The ``hash``
field is redundant on purpose: a reader that sees it disagree knows which line was
edited without knowing any keys. JSON lines rather than CAR because a person auditing a
DAO can read, grep and diff it.

Importing reads the file once (it may be a pipe): :func:`verify_archive` keeps the bytes
of every event as verification walks them, and :func:`import_verified` appends exactly
those bytes, so what is stored is what was verified even if the file changes meanwhile.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

from plaza.atproto import cbor, datamodel
from plaza.errors import PlazaError
from plaza.ledger.checkpoint import Checkpoint
from plaza.ledger.errors import ArchiveError
from plaza.ledger.event import Event
from plaza.ledger.replay import Projection
from plaza.ledger.store import EventStore
from plaza.ledger.verify import VerifyReport, verify_log

FORMAT: Final = "plaza-ledger"
VERSION: Final = 1
_IMPORT_BATCH: Final = 1000


def export_jsonl(store: EventStore, out: IO[str]) -> tuple[int, int]:
    """Write the whole store to ``out``; return ``(events, checkpoints)`` written."""
    head = store.head()
    cps = store.checkpoints()
    out.write(
        json.dumps(
            {"format": FORMAT, "version": VERSION, "events": head.size, "checkpoints": len(cps)}
        )
        + "\n"
    )
    n = 0
    for seq, raw in store.read_raw(0, head.size):
        value = cbor.decode(raw)
        line = {"hash": hashlib.sha256(raw).hexdigest(), "event": datamodel.to_json(value)}
        out.write(json.dumps(line, separators=(",", ":"), sort_keys=True) + "\n")
        n = seq + 1
    for cp in cps:
        line = {"checkpoint": datamodel.to_json(cp.to_map())}
        out.write(json.dumps(line, separators=(",", ":"), sort_keys=True) + "\n")
    return n, len(cps)


@dataclass(frozen=True)
class Archive:
    """A parsed export: event lines are decoded lazily by :meth:`raw_events`."""

    events: int
    checkpoints: list[Checkpoint]
    _lines: list[str]

    def raw_events(self) -> Iterator[tuple[int, bytes]]:
        """``(seq, bytes)`` per event line, in file order. A line that is not a
        well-formed event, or whose stated hash differs from its bytes, raises
        :class:`ArchiveError` naming that event's position."""
        for pos, line in enumerate(self._lines):
            yield pos, _event_bytes(pos, line)


def _json(line: str) -> Any:
    # The stdlib parser recurses once per nesting level: a hostile line could crash it.
    try:
        return json.loads(line)
    except RecursionError as exc:
        raise ValueError("nested too deeply") from exc


def _event_bytes(pos: int, line: str) -> bytes:
    try:
        obj = _json(line)
    except ValueError as exc:
        raise ArchiveError(f"line for event {pos} is not JSON: {exc}", seq=pos) from exc
    if not isinstance(obj, dict) or set(obj) != {"hash", "event"}:
        raise ArchiveError(f"line for event {pos} must have exactly 'hash' and 'event'", seq=pos)
    try:
        raw = cbor.encode(datamodel.from_json(obj["event"]))
    except PlazaError as exc:
        raise ArchiveError(f"event {pos} is not a data-model value: {exc}", seq=pos) from exc
    if hashlib.sha256(raw).hexdigest() != obj["hash"]:
        raise ArchiveError(
            f"event {pos}'s bytes do not match the hash stated on its line (edited)", seq=pos
        )
    return raw


def read_archive(path: Path) -> Archive:
    """Read an export (a file or a pipe, opened once) and parse its header and
    checkpoints; raise :class:`ArchiveError`."""
    try:
        with path.open("rb") as f:
            return load_archive(f, str(path))
    except OSError as exc:
        raise ArchiveError(f"cannot read {path}: {exc}") from exc


def load_archive(stream: IO[bytes], name: str = "input", *, prefix: bytes = b"") -> Archive:
    """Parse an export read once from ``stream`` (``prefix``: bytes already read from it,
    such as the first one a caller peeked at); raise :class:`ArchiveError`."""
    try:
        text = (prefix + stream.read()).decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ArchiveError(f"cannot read {name}: {exc}") from exc
    return parse_archive(text.splitlines())


def parse_archive(lines: list[str]) -> Archive:
    if not lines:
        raise ArchiveError("empty file: no plaza-ledger header")
    try:
        header: Any = _json(lines[0])
    except ValueError as exc:
        raise ArchiveError(f"header is not JSON: {exc}") from exc
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ArchiveError("not a plaza-ledger export (bad header)")
    if header.get("version") != VERSION:
        raise ArchiveError(f"unsupported export version {header.get('version')!r}")
    n_events, n_cps = header.get("events"), header.get("checkpoints")
    if type(n_events) is not int or type(n_cps) is not int or n_events < 0 or n_cps < 0:
        raise ArchiveError("header must state integer counts of events and checkpoints")
    body = [ln for ln in lines[1:] if ln.strip()]
    if len(body) != n_events + n_cps:
        # Count mismatch alone does not say which event went missing; verification of the
        # events and checkpoints that are present will name it.
        n_events = max(0, len(body) - n_cps)
    event_lines, cp_lines = body[:n_events], body[n_events:]
    cps = []
    for i, line in enumerate(cp_lines):
        try:
            obj = _json(line)
            cps.append(Checkpoint.from_map(datamodel.from_json(obj["checkpoint"])))
        except (ValueError, KeyError, TypeError, PlazaError) as exc:
            raise ArchiveError(f"checkpoint line {i} is malformed: {exc}") from exc
    return Archive(events=n_events, checkpoints=cps, _lines=event_lines)


@dataclass(frozen=True)
class VerifiedArchive:
    """An archive as :func:`verify_archive` walked it: the report, and the bytes of the
    events it checked, in order (all of them when the report is ok)."""

    report: VerifyReport
    events: tuple[bytes, ...]
    checkpoints: tuple[Checkpoint, ...]


def verify_archive(archive: Archive, *, projection: Projection | None = None) -> VerifiedArchive:
    """Verify the archive (see :func:`~plaza.ledger.verify.verify_log`), keeping the bytes
    of each event as it is checked, so that importing them needs no second reading."""
    seen: list[bytes] = []

    def keep() -> Iterator[tuple[int, bytes]]:
        for seq, raw in archive.raw_events():
            seen.append(raw)
            yield seq, raw

    report = verify_log(keep(), archive.checkpoints, projection=projection)
    return VerifiedArchive(report, tuple(seen), tuple(archive.checkpoints))


def import_verified(verified: VerifiedArchive, store: EventStore) -> int:
    """Append the verified events ``store`` lacks — the very bytes that were verified —
    then the checkpoints; refuse (:class:`ArchiveError`, nothing stored) an archive that
    did not verify. Returns the number of events appended."""
    problem = verified.report.problem
    if problem is not None:
        raise ArchiveError(f"the archive did not verify: {problem.describe()}", seq=problem.seq)
    return _append_missing(enumerate(verified.events), verified.checkpoints, store)


def import_archive(archive: Archive, store: EventStore) -> int:
    """Append the archive's events that ``store`` lacks, then its checkpoints.

    The store must hold a prefix of the archive (identical hashes); a replica catches up
    this way. Signatures are not checked here: to import only what verifies, use
    :func:`verify_archive` and :func:`import_verified` (``plaza ledger import`` does).
    Returns the number of events appended.
    """
    return _append_missing(archive.raw_events(), archive.checkpoints, store)


def _append_missing(
    raw_events: Iterable[tuple[int, bytes]], checkpoints: Iterable[Checkpoint], store: EventStore
) -> int:
    have = store.hashes()
    batch: list[Event] = []
    added = 0
    for seq, raw in raw_events:
        ev = Event.decode(raw)
        if seq < len(have):
            if have[seq] != ev.hash:
                raise ArchiveError(f"event {seq} differs from the one already stored", seq=seq)
            continue
        batch.append(ev)
        if len(batch) >= _IMPORT_BATCH:
            store.append(batch)
            added += len(batch)
            batch = []
    if batch:
        store.append(batch)
        added += len(batch)
    for cp in checkpoints:
        store.add_checkpoint(cp)
    return added
