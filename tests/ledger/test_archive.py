"""Export to JSON lines, import into another backend, and find edits in the file."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from plaza.atproto.crypto import PrivateKey
from plaza.ledger import (
    ArchiveError,
    EventStore,
    Ledger,
    MemoryEventStore,
    export_jsonl,
    import_archive,
    import_verified,
    load_archive,
    read_archive,
    verify_archive,
    verify_log,
)


def _export(store: EventStore, path: Path) -> list[str]:
    buf = io.StringIO()
    export_jsonl(store, buf)
    path.write_text(buf.getvalue())
    return buf.getvalue().splitlines()


@pytest.fixture
def source(alice: PrivateKey, bob: PrivateKey) -> MemoryEventStore:
    store = MemoryEventStore()
    ledger = Ledger(store)
    for i in range(6):
        ledger.record(
            alice,
            author_did=alice.did_key(),
            type="test.note",
            payload={"n": i, "blob": bytes([i]) * 3},
            time=i,
        )
    ledger.checkpoint(bob, time=10)
    return store


def test_round_trip_into_every_backend(
    source: MemoryEventStore, store: EventStore, tmp_path: Path
) -> None:
    lines = _export(source, tmp_path / "l.jsonl")
    assert json.loads(lines[0]) == {
        "format": "plaza-ledger",
        "version": 1,
        "events": 6,
        "checkpoints": 1,
    }
    first = json.loads(lines[1])
    assert first["event"]["payload"]["blob"] == {"$bytes": "AAAA"}
    archive = read_archive(tmp_path / "l.jsonl")
    assert verify_log(archive.raw_events(), archive.checkpoints).ok
    assert import_archive(archive, store) == 6
    assert store.hashes() == source.hashes()
    assert store.checkpoints() == source.checkpoints()
    # Importing again is idempotent: the store already holds the whole archive.
    assert import_archive(archive, store) == 0


def test_replica_catches_up(source: MemoryEventStore, alice: PrivateKey, tmp_path: Path) -> None:
    replica = MemoryEventStore()
    replica.append(list(source.read(0, 3)))
    _export(source, tmp_path / "l.jsonl")
    assert import_archive(read_archive(tmp_path / "l.jsonl"), replica) == 3
    assert replica.hashes() == source.hashes()
    diverged = MemoryEventStore()
    Ledger(diverged).record(
        alice, author_did=alice.did_key(), type="test.other", payload={}, time=0
    )
    with pytest.raises(ArchiveError, match="differs"):
        import_archive(read_archive(tmp_path / "l.jsonl"), diverged)


def test_edited_line_is_named(source: MemoryEventStore, tmp_path: Path) -> None:
    lines = _export(source, tmp_path / "l.jsonl")
    lines[4] = lines[4].replace('"n":3', '"n":4')  # event 3
    (tmp_path / "e.jsonl").write_text("\n".join(lines))
    archive = read_archive(tmp_path / "e.jsonl")
    report = verify_log(archive.raw_events(), archive.checkpoints)
    assert report.problem is not None and report.problem.seq == 3
    assert "hash" in report.problem.reason


def test_edited_event_with_fixed_hash_is_named(source: MemoryEventStore, tmp_path: Path) -> None:
    """An editor who also recomputes the line's hash still breaks the signature."""
    import hashlib

    from plaza.atproto import cbor, datamodel

    lines = _export(source, tmp_path / "l.jsonl")
    obj = json.loads(lines[3])
    obj["event"]["payload"]["n"] = 99
    obj["hash"] = hashlib.sha256(cbor.encode(datamodel.from_json(obj["event"]))).hexdigest()
    lines[3] = json.dumps(obj)
    (tmp_path / "e.jsonl").write_text("\n".join(lines))
    archive = read_archive(tmp_path / "e.jsonl")
    report = verify_log(archive.raw_events(), archive.checkpoints)
    assert report.problem is not None
    assert (report.problem.seq, report.problem.code) == (2, "BadSignature")


@pytest.mark.parametrize(
    "text",
    ["", "not json\n", '{"format": "other"}\n', '{"format": "plaza-ledger", "version": 9}\n'],
    ids=["empty", "garbage", "other-format", "future-version"],
)
def test_bad_files(tmp_path: Path, text: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(text)
    with pytest.raises(ArchiveError):
        read_archive(path)


HEADER = '{"format": "plaza-ledger", "version": 1, "events": 1, "checkpoints": %d}'
DEEP = "[" * 100_000


@pytest.mark.parametrize(
    "lines",
    [[DEEP], [HEADER % 1, '{"hash": "00", "event": {}}', DEEP], [HEADER % 0, DEEP]],
    ids=["header", "checkpoint", "event"],
)
def test_deeply_nested_json_is_an_archive_error(tmp_path: Path, lines: list[str]) -> None:
    """The stdlib parser recurses once per nesting level: a hostile file must not crash it."""
    path = tmp_path / "deep.jsonl"
    path.write_text("\n".join(lines))
    with pytest.raises(ArchiveError):
        list(read_archive(path).raw_events())


def test_import_verified_stores_the_bytes_it_verified(
    source: MemoryEventStore, store: EventStore, tmp_path: Path
) -> None:
    import hashlib

    from plaza.atproto import cbor, datamodel

    path = tmp_path / "l.jsonl"
    lines = _export(source, path)
    verified = verify_archive(read_archive(path))
    assert verified.report.ok and len(verified.events) == 6
    # The file changes after it was read and verified: nothing reads it again.
    obj = json.loads(lines[3])
    obj["event"]["payload"]["n"] = 99
    obj["hash"] = hashlib.sha256(cbor.encode(datamodel.from_json(obj["event"]))).hexdigest()
    lines[3] = json.dumps(obj)
    path.write_text("\n".join(lines))
    assert import_verified(verified, store) == 6
    assert store.hashes() == source.hashes()
    assert store.checkpoints() == source.checkpoints()
    # The changed file does not verify, and import_verified refuses it.
    forged = verify_archive(read_archive(path))
    assert forged.report.problem is not None and forged.report.problem.code == "BadSignature"
    other = MemoryEventStore()
    with pytest.raises(ArchiveError, match="did not verify"):
        import_verified(forged, other)
    assert len(other) == 0


def test_an_archive_is_read_once_from_a_pipe(source: MemoryEventStore) -> None:
    import os
    import threading

    buf = io.StringIO()
    export_jsonl(source, buf)
    r, w = os.pipe()
    writer = threading.Thread(target=lambda: (os.write(w, buf.getvalue().encode()), os.close(w)))
    writer.start()
    with os.fdopen(r, "rb") as pipe:
        archive = load_archive(pipe, "a pipe")
    writer.join(10)
    verified = verify_archive(archive)
    assert verified.report.ok and verified.report.events == 6
