"""The escrow of host passwords: sealed per account, with a key file beside the data."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from plaza.errors import StorageError
from plaza.network.entryway.escrow import KEY_FILE, Escrow


def test_a_sealed_password_opens_for_its_account_only(tmp_path: Path) -> None:
    escrow = Escrow.open(tmp_path)
    sealed = escrow.seal("did:plc:one", "the host password")
    assert b"the host password" not in sealed
    assert escrow.unseal("did:plc:one", sealed) == "the host password"
    with pytest.raises(StorageError):
        escrow.unseal("did:plc:two", sealed)
    # The key file is private and kept: a second open reads the same key.
    assert stat.S_IMODE((tmp_path / KEY_FILE).stat().st_mode) == 0o600
    assert Escrow.open(tmp_path).unseal("did:plc:one", sealed) == "the host password"


def test_a_damaged_key_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / KEY_FILE).write_text("not hex\n")
    with pytest.raises(StorageError, match="escrow key"):
        Escrow.open(tmp_path)
