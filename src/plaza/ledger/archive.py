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
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

from plaza.atproto import cbor, datamodel
from plaza.errors import PlazaError
from plaza.ledger.checkpoint import Checkpoint
from plaza.ledger.errors import ArchiveError
from plaza.ledger.event import Event
from plaza.ledger.store import EventStore

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
    """Parse the header and checkpoints of an export; raise :class:`ArchiveError`."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ArchiveError(f"cannot read {path}: {exc}") from exc
    return parse_archive(lines)


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


def import_archive(archive: Archive, store: EventStore) -> int:
    """Append the archive's events that ``store`` lacks, then its checkpoints.

    The store must hold a prefix of the archive (identical hashes); a replica catches up
    this way. Signatures are not checked here: verify the archive first (``plaza ledger
    import`` does). Returns the number of events appended.
    """
    have = store.hashes()
    batch: list[Event] = []
    added = 0
    for seq, raw in archive.raw_events():
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
    for cp in archive.checkpoints:
        store.add_checkpoint(cp)
    return added
