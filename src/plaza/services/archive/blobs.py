"""Blob bytes on disk, content-addressed, written atomically and only when verified.

A blob is one file ``ROOT/<last two characters of its CID>/<CID>`` however many DIDs
hold it (which DID holds which blob is in the store). :meth:`BlobFiles.put_stream`
writes the bytes into a fresh temporary file while hashing and counting them; only if
the sha-256 is the CID's digest and the size within the limit is the file flushed to
disk and renamed into place, so a reader never sees a partial or wrong blob and a crash
leaves at most a stray temporary file (removed on the next start). Directories are
owner-only (0700) and so is each file (0600).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import AsyncIterable, Iterator
from pathlib import Path
from typing import Final

from plaza.atproto.cid import CID, RAW
from plaza.db import private_dirs
from plaza.services.archive.errors import FetchError

CHUNK: Final = 64 * 1024


class BlobTooLargeError(FetchError):
    """The blob passes the archive's size limit: it is not kept."""

    code = "BlobTooLarge"


class BlobMismatchError(FetchError):
    """The bytes a host sent do not hash to the blob's CID."""

    code = "BlobMismatch"


class BlobFiles:
    """Verified blob files under ``root`` (see the module docstring)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._tmp = root / "tmp"
        private_dirs(self._tmp)
        for stray in self._tmp.iterdir():
            stray.unlink(missing_ok=True)

    def path(self, cid: CID) -> Path:
        text = str(cid)
        return self.root / text[-2:] / text

    def has(self, cid: CID) -> bool:
        return self.path(cid).is_file()

    async def put_stream(self, cid: CID, chunks: AsyncIterable[bytes], max_bytes: int) -> int:
        """Store the bytes of ``cid`` from ``chunks``; return their size.

        Raises :class:`BlobTooLargeError` past ``max_bytes`` and
        :class:`BlobMismatchError` when the bytes are not the CID's; then nothing is
        stored.
        """
        if cid.codec != RAW:
            raise BlobMismatchError(f"{cid} is not a blob CID (raw codec)")
        fd, tmp = tempfile.mkstemp(dir=self._tmp)
        hasher = hashlib.sha256()
        size = 0
        try:
            with os.fdopen(fd, "wb") as fh:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > max_bytes:
                        raise BlobTooLargeError(f"blob {cid} is larger than {max_bytes} bytes")
                    hasher.update(chunk)
                    fh.write(chunk)
                if hasher.digest() != cid.digest:
                    raise BlobMismatchError(f"the bytes received do not hash to {cid}")
                fh.flush()
                os.fsync(fh.fileno())
            final = self.path(cid)
            private_dirs(final.parent)
            os.replace(tmp, final)
            _fsync_dir(final.parent)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return size

    def read(self, cid: CID) -> Iterator[bytes]:
        """The bytes in chunks; ``FileNotFoundError`` (at the call) if absent."""
        fh = self.path(cid).open("rb")

        def chunks() -> Iterator[bytes]:
            with fh:
                while block := fh.read(CHUNK):
                    yield block

        return chunks()

    def delete(self, cid: CID) -> None:
        self.path(cid).unlink(missing_ok=True)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
