"""Owner-only storage paths: a store's directories are created 0700, its files 0600.

A store holds what other users of the host must not read: the PDS's database has every
account's signing key and password hash. Modes are set on the path itself, never
through the process umask, which is process-wide state a library must not change and
which other threads would see.

SQLite creates a database's ``-wal`` and ``-shm`` files later, on its own, with the
permissions of the database file, so :func:`private_file` on the database before SQLite
opens it covers all three. :func:`narrow` takes an existing file's group and other
permissions away, for a store created before these rules (its ``-wal`` and ``-shm``
too, if they are there).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from plaza.errors import StorageError

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dirs(path: Path) -> None:
    """Create ``path`` and each missing parent with mode 0700; existing directories are
    left as they are. Raises :class:`~plaza.errors.StorageError` when one cannot be made."""
    missing: list[Path] = []
    current = path
    while not current.exists() and current.parent != current:
        missing.append(current)
        current = current.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=DIR_MODE)
        except FileExistsError:
            continue  # made at this moment by someone else: theirs to set
        except OSError as exc:
            raise StorageError(f"cannot create {directory}: {exc.strerror or exc}") from exc
        os.chmod(directory, DIR_MODE)  # the umask may have taken more than group and other


def private_file(path: Path) -> None:
    """Make sure ``path`` exists (created empty if absent) with mode 0600 or narrower."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
    except OSError as exc:
        raise StorageError(f"cannot create {path}: {exc.strerror or exc}") from exc
    try:
        mode = stat.S_IMODE(os.fstat(fd).st_mode)
        if mode & 0o077:
            os.fchmod(fd, mode & FILE_MODE)
    finally:
        os.close(fd)


def narrow(path: Path) -> None:
    """Take group and other permissions off ``path`` if it exists."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            os.chmod(path, mode & FILE_MODE)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise StorageError(f"cannot restrict {path}: {exc.strerror or exc}") from exc
