"""The outbox: each message an owner-only file, never written through a planted link."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from plaza.services.pds.mail import Outbox, read_token

DID = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"


def test_messages_are_owner_only_and_newest_wins(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "mail")
    path = box.send(DID, "delete_account", "a@x.test", "AAAAAA-BBBBBB")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    box.send(DID, "delete_account", "a@x.test", "CCCCCC-DDDDDD")
    assert read_token(tmp_path / "mail", DID, "delete_account") == "CCCCCC-DDDDDD"


def test_a_planted_symlink_does_not_receive_a_token(tmp_path: Path) -> None:
    folder = tmp_path / "mail"
    folder.mkdir()
    stolen = tmp_path / "stolen"
    stolen.write_text("")
    os.chmod(stolen, 0o644)
    (folder / f"{DID.replace(':', '_')}-plc_operation.tmp").symlink_to(stolen)
    leftover = folder / f"{DID.replace(':', '_')}-delete_account.tmp"
    leftover.write_text("")
    os.chmod(leftover, 0o666)
    box = Outbox(folder)
    plc = box.send(DID, "plc_operation", None, "SECRET-TOKEN")
    delete = box.send(DID, "delete_account", None, "OTHER-TOKEN")
    assert stolen.read_text() == "", "the token went through the planted symlink"
    for path in (plc, delete):
        assert path.is_file() and not path.is_symlink()
        assert stat.S_IMODE(path.lstat().st_mode) == 0o600
    assert read_token(folder, DID, "plc_operation") == "SECRET-TOKEN"
