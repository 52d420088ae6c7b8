"""Blob bytes, content-addressed on disk behind a small interface.

A blob is stored once under its raw-codec CID no matter how many accounts hold it; which
account holds which blob is metadata in the store (:mod:`plaza.services.pds.store`).
Uploads stream into a temporary file while being hashed and measured, and are renamed
into place only when complete, so a reader never sees a partial blob and a crash leaves
at most a stray temporary file. The folders are owner-only (0700) and so is each file
(0600, as ``mkstemp`` creates it).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import AsyncIterable, Iterator
from pathlib import Path
from typing import Protocol

from plaza.atproto.cid import CID, RAW
from plaza.db import private_dirs
from plaza.services.pds.errors import PayloadTooLargeError

CHUNK = 64 * 1024


class BlobStore(Protocol):
    """Where blob bytes live. Implementations must be safe to call from one event loop."""

    async def put_stream(self, chunks: AsyncIterable[bytes], max_bytes: int) -> tuple[CID, int]:
        """Store the bytes; return their CID and size. Over ``max_bytes`` stores nothing and
        raises :class:`PayloadTooLargeError`."""
        ...

    def put_bytes(self, data: bytes) -> CID: ...

    def has(self, cid: CID) -> bool: ...

    def size(self, cid: CID) -> int | None: ...

    def read(self, cid: CID) -> Iterator[bytes]:
        """The bytes in chunks; ``FileNotFoundError`` if absent."""
        ...

    def delete(self, cid: CID) -> None: ...

    def prune_temporary(self, before: float) -> int:
        """Remove partial uploads untouched since ``before`` (unix seconds), left by a
        crash; return how many."""
        ...


class DiskBlobStore:
    """Blobs as files ``ROOT/<last two chars of the CID>/<CID>``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._tmp = root / "tmp"
        private_dirs(self._tmp)

    def _path(self, cid: CID) -> Path:
        text = str(cid)
        return self.root / text[-2:] / text

    def _finish(self, tmp_path: str, digest: bytes) -> CID:
        cid = CID(bytes((0x01, RAW, 0x12, 0x20)) + digest)
        final = self._path(cid)
        final.parent.mkdir(mode=0o700, exist_ok=True)
        os.replace(tmp_path, final)
        return cid

    async def put_stream(self, chunks: AsyncIterable[bytes], max_bytes: int) -> tuple[CID, int]:
        fd, tmp_path = tempfile.mkstemp(dir=self._tmp)
        hasher = hashlib.sha256()
        size = 0
        try:
            with os.fdopen(fd, "wb") as fh:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > max_bytes:
                        raise PayloadTooLargeError(
                            f"blob is larger than the limit of {max_bytes} bytes"
                        )
                    hasher.update(chunk)
                    fh.write(chunk)
            return self._finish(tmp_path, hasher.digest()), size
        except BaseException:
            Path(tmp_path).unlink(missing_ok=True)
            raise

    def put_bytes(self, data: bytes) -> CID:
        fd, tmp_path = tempfile.mkstemp(dir=self._tmp)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            return self._finish(tmp_path, hashlib.sha256(data).digest())
        except BaseException:
            Path(tmp_path).unlink(missing_ok=True)
            raise

    def has(self, cid: CID) -> bool:
        return self._path(cid).is_file()

    def size(self, cid: CID) -> int | None:
        try:
            return self._path(cid).stat().st_size
        except FileNotFoundError:
            return None

    def read(self, cid: CID) -> Iterator[bytes]:
        fh = self._path(cid).open("rb")  # raises FileNotFoundError before the first chunk

        def chunks() -> Iterator[bytes]:
            with fh:
                while block := fh.read(CHUNK):
                    yield block

        return chunks()

    def delete(self, cid: CID) -> None:
        self._path(cid).unlink(missing_ok=True)

    def prune_temporary(self, before: float) -> int:
        removed = 0
        for path in self._tmp.iterdir():
            try:
                if path.lstat().st_mtime < before:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:
                continue
        return removed
