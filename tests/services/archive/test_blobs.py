"""Blob files: only bytes that hash to the CID, within the limit, ever land; the files
are owner-only."""

from __future__ import annotations

import asyncio
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from plaza.atproto.cid import CID, RAW
from plaza.services.archive.blobs import BlobFiles, BlobMismatchError, BlobTooLargeError


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


def put(files: BlobFiles, cid: CID, *parts: bytes, limit: int = 1000) -> int:
    return asyncio.run(files.put_stream(cid, chunks(*parts), limit))


def leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def test_the_right_bytes_land_owner_only(tmp_path: Path) -> None:
    files = BlobFiles(tmp_path / "blobs")
    data = b"hello blob"
    cid = CID.compute(data, RAW)
    assert put(files, cid, b"hello ", b"blob") == len(data)
    assert b"".join(files.read(cid)) == data
    assert stat.S_IMODE(files.path(cid).stat().st_mode) == 0o600
    assert stat.S_IMODE(files.path(cid).parent.stat().st_mode) == 0o700


def test_wrong_or_oversized_bytes_leave_nothing(tmp_path: Path) -> None:
    files = BlobFiles(tmp_path / "blobs")
    cid = CID.compute(b"the real bytes", RAW)
    with pytest.raises(BlobMismatchError):
        put(files, cid, b"other bytes")
    with pytest.raises(BlobTooLargeError):
        put(files, cid, b"the real bytes", limit=5)
    with pytest.raises(BlobMismatchError):
        put(files, CID.compute(b"\xa0"), b"\xa0")  # a dag-cbor CID is no blob
    assert not files.has(cid)
    assert leftovers(tmp_path) == []
    with pytest.raises(FileNotFoundError):
        files.read(cid)
