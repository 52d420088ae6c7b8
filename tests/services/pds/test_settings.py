"""The PDS's secrets file: created owner-only, never through a leftover or planted
temporary file."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from plaza.services.pds.settings import load_or_create_secrets


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_secrets_are_owner_only(tmp_path: Path) -> None:
    secrets = load_or_create_secrets(tmp_path)
    path = tmp_path / "secrets.json"
    assert path.is_file() and not path.is_symlink() and _mode(path) == 0o600
    assert bytes.fromhex(json.loads(path.read_text())["jwt_secret"]) == secrets.jwt_secret
    again = load_or_create_secrets(tmp_path)
    assert again.jwt_secret == secrets.jwt_secret  # a restart keeps them
    assert "jwt_secret" not in repr(again) and secrets.admin_password not in repr(again)


def test_a_planted_symlink_does_not_receive_the_secrets(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    stolen = tmp_path / "stolen"
    stolen.write_text("")
    os.chmod(stolen, 0o644)
    (data / "secrets.tmp").symlink_to(stolen)
    secrets = load_or_create_secrets(data)
    assert stolen.read_text() == "", "the secrets went through the planted symlink"
    path = data / "secrets.json"
    assert path.is_file() and not path.is_symlink() and _mode(path) == 0o600
    assert secrets.jwt_secret.hex() in path.read_text()
    assert not (data / "secrets.tmp").exists()


def test_a_leftover_temporary_does_not_lend_its_mode(tmp_path: Path) -> None:
    leftover = tmp_path / "secrets.tmp"
    leftover.write_text("partial")
    os.chmod(leftover, 0o666)
    load_or_create_secrets(tmp_path)
    assert _mode(tmp_path / "secrets.json") == 0o600


def test_a_new_data_dir_its_store_and_blob_folder_are_owner_only(tmp_path: Path) -> None:
    from plaza.services.pds import PdsSettings, create_app

    data = tmp_path / "new" / "pds"
    old = os.umask(0o022)
    try:
        app = create_app(
            PdsSettings(data_dir=data, public_url="http://127.0.0.1:1", directory_url="-")
        )
    finally:
        os.umask(old)
    modes = {p: _mode(data / p) for p in ("", "pds.db", "pds.db-wal", "pds.db-shm", "blobs")}
    assert modes == {
        "": 0o700,
        "pds.db": 0o600,
        "pds.db-wal": 0o600,
        "pds.db-shm": 0o600,
        "blobs": 0o700,
    }
    assert _mode(tmp_path / "new") == 0o700
    app.state.pds.store.close()
