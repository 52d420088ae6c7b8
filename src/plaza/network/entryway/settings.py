"""What one entryway needs to run, read once at the edge (``plaza serve entryway``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

DB_FILE: Final = "entryway.db"
DEFAULT_PORT: Final = 2591


@dataclass(frozen=True)
class EntrywaySettings:
    """Where the entryway keeps its accounts and how it is reached.

    ``db_url`` None: SQLite at ``data_dir/entryway.db``. ``user_domains``: the handle
    domains members may sign up under (the hosts' own). Per client address, logins:
    ``login_burst`` at once, then ``login_per_s``; sign-ups: ``signup_burst`` at once,
    then ``signup_per_s``.
    """

    data_dir: Path
    public_url: str
    directory_url: str
    db_url: str | None = None
    user_domains: tuple[str, ...] = (".test",)
    login_burst: int = 10
    login_per_s: float = 0.5
    signup_burst: int = 100
    signup_per_s: float = 1.0
    max_body_bytes: int = 64 * 1024

    @property
    def did(self) -> str:
        """The ``did:web`` the entryway calls itself (the port percent-encoded)."""
        return "did:web:" + urlsplit(self.public_url).netloc.replace(":", "%3A")

    @property
    def database(self) -> str:
        return self.db_url or f"sqlite:///{Path(self.data_dir).resolve() / DB_FILE}"
