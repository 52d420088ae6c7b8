"""Owner-only files written whole: the PDS's secrets and its outbox.

:func:`write_private` replaces a file atomically through a temporary next to it, the
way :mod:`plaza.ledger.keystore` does: the temporary is always a fresh file (a leftover
or planted one is removed first, and ``O_EXCL | O_NOFOLLOW`` refuses whatever appears
in its place), so its mode is the ``0600`` asked for, and no symlink can carry the
bytes elsewhere. The data reaches the disk before the rename, and the rename before
the call returns.
"""

from __future__ import annotations

import os
from pathlib import Path

from plaza.errors import StorageError

_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def write_private(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``, mode 0600, atomically and durably.

    Raises :class:`plaza.errors.StorageError` when the file cannot be written.
    """
    tmp = path.with_suffix(".tmp")
    try:
        tmp.unlink(missing_ok=True)  # a symlink is removed, not followed
        fd = os.open(tmp, _FLAGS, 0o600)
    except OSError as exc:
        raise StorageError(f"cannot write {path}: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise StorageError(f"cannot write {path}: {exc.strerror or exc}") from exc
