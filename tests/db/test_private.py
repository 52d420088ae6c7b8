"""Store files are owner-only: a SQLite database, its -wal and -shm files and the
directories made for it, whatever the process umask; older loose files are narrowed."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from plaza.db import connect, private_dirs, private_file


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def loose_umask() -> Iterator[None]:
    """The common 022 umask, under which files are made world-readable by default."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_a_new_database_its_wal_and_shm_and_its_directories_are_owner_only(
    tmp_path: Path, loose_umask: None
) -> None:
    path = tmp_path / "data" / "deeper" / "store.db"
    db = connect(f"sqlite://{path}")
    db.executescript("CREATE TABLE t (v TEXT)")
    db.execute("INSERT INTO t VALUES ('secret')")
    wal, shm = path.with_name("store.db-wal"), path.with_name("store.db-shm")
    assert wal.exists() and shm.exists()  # still open: WAL mode keeps both
    assert {p.name: mode(p) for p in (path, wal, shm)} == {
        "store.db": 0o600,
        "store.db-wal": 0o600,
        "store.db-shm": 0o600,
    }
    assert mode(tmp_path / "data") == 0o700
    assert mode(tmp_path / "data" / "deeper") == 0o700
    db.close()


def test_an_existing_loose_database_is_narrowed_when_opened(
    tmp_path: Path, loose_umask: None
) -> None:
    path = tmp_path / "old.db"
    for name in ("old.db", "old.db-wal", "old.db-shm"):
        (tmp_path / name).touch(mode=0o644)
        os.chmod(tmp_path / name, 0o644)
    connect(path).close()
    assert [mode(tmp_path / n) for n in ("old.db", "old.db-wal", "old.db-shm")] == [0o600] * 3


def test_existing_directories_are_left_as_they_are(tmp_path: Path, loose_umask: None) -> None:
    os.chmod(tmp_path, 0o755)
    private_dirs(tmp_path / "new")
    assert mode(tmp_path) == 0o755
    assert mode(tmp_path / "new") == 0o700


def test_private_file_keeps_the_content_of_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"kept")
    os.chmod(path, 0o640)
    private_file(path)
    assert path.read_bytes() == b"kept"
    assert mode(path) == 0o600
