"""Outgoing mail. This PDS sends no email: messages land as files in an outbox folder.

Confirmation tokens (for PLC operations and account deletion) reach the member the way
email would: through a channel the PDS does not answer on. Locally that channel is
``DATA_DIR/mail/``, one JSON file per message, readable only by the owner (written
through :func:`~plaza.services.pds.files.write_private`); an operator
who wants real email forwards the folder. ``plaza account migrate`` can read it with
``--mail-dir``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from plaza.services.pds.files import write_private


class Outbox:
    """Writes messages to ``DIR/<did>-<purpose>.json`` (newest wins)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def send(self, did: str, purpose: str, to: str | None, token: str) -> Path:
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = self.folder / f"{did.replace(':', '_')}-{purpose}.json"
        body = {"to": to, "did": did, "purpose": purpose, "token": token, "sent": time.time()}
        write_private(path, json.dumps(body).encode())
        return path


def read_token(folder: Path, did: str, purpose: str) -> str | None:
    """The newest token in an outbox for ``did`` and ``purpose``, or ``None``."""
    path = folder / f"{did.replace(':', '_')}-{purpose}.json"
    try:
        token = json.loads(path.read_text()).get("token")
    except (OSError, ValueError):
        return None
    return token if isinstance(token, str) else None
