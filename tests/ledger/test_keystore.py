"""The local keystore: secrets in a file only its owner can read, never shown."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from plaza.ledger.errors import KeystoreError
from plaza.ledger.keystore import Keystore


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_file_is_private_even_over_a_stale_temporary(tmp_path: Path) -> None:
    """A leftover (or planted) keys.tmp keeps its mode when reopened with O_CREAT: the
    secrets would land in a world-readable file that then replaces keys.json."""
    ks = Keystore(tmp_path / "keys.json")
    stale = tmp_path / "keys.tmp"
    stale.write_text("{}")
    os.chmod(stale, 0o644)
    ks.create("alice")
    assert _mode(tmp_path / "keys.json") == 0o600
    os.chmod(tmp_path / "keys.json", 0o644)  # say, copied in by hand
    ks.create("bob")
    assert _mode(tmp_path / "keys.json") == 0o600


def test_secrets_never_show(tmp_path: Path) -> None:
    ks = Keystore(tmp_path / "keys.json")
    signer = ks.create("carol")
    secret = signer.key.to_bytes().hex()
    assert secret not in repr(signer) and secret not in str(ks.public())
    with pytest.raises(KeystoreError, match="already exists"):
        ks.create("carol")


def test_a_planted_symlink_does_not_receive_the_secrets(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.txt"
    elsewhere.write_text("")
    (tmp_path / "keys.tmp").symlink_to(elsewhere)
    Keystore(tmp_path / "keys.json").create("dave")
    assert elsewhere.read_text() == ""
    assert not (tmp_path / "keys.json").is_symlink()
    assert _mode(tmp_path / "keys.json") == 0o600
