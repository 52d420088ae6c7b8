"""Settings of one hosting service, and the secrets it keeps in its data directory.

Settings are read once at the edge (``plaza serve pds`` flags, then the environment,
then these defaults) and passed to :func:`plaza.services.pds.create_app`. The server's
own secrets — its PLC rotation key, the HMAC secret of its session tokens and the admin
password — are generated on first start and kept in ``DATA_DIR/secrets.json`` (mode
0600), so a restart keeps every session and every DID it manages valid.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from plaza.atproto.crypto import ES256K, PrivateKey
from plaza.db import private_dirs
from plaza.services.pds.files import write_private
from plaza.services.pds.throttle import DEFAULT_BACKOFF, Backoff

SECRETS_FILE = "secrets.json"


def service_did_for(public_url: str) -> str:
    """The ``did:web`` this PDS calls itself (the port, if any, percent-encoded)."""
    netloc = urlsplit(public_url).netloc
    return "did:web:" + netloc.replace(":", "%3A")


@dataclass(frozen=True)
class PdsSettings:
    """Everything one PDS needs to run; see the module docstring for where it comes from."""

    data_dir: Path
    public_url: str
    directory_url: str
    db_url: str | None = None
    service_did: str | None = None
    user_domains: tuple[str, ...] = (".test",)
    appview_url: str | None = None
    appview_did: str | None = None
    moderation_did: str | None = None  # createReport without atproto-proxy goes to its labeler
    # Forwarded calls (plaza.services.pds.proxy): origins trusted like the app view, and
    # whether any http URL and private address may be a target (local networks, tests).
    proxy_allowed_origins: tuple[str, ...] = ()
    proxy_allow_private: bool = False
    proxy_timeout_s: float = 30.0
    proxy_max_response_bytes: int = 10_000_000
    admin_password: str | None = None
    max_blob_bytes: int = 5_000_000
    blob_quota_bytes: int = 5_000_000_000  # every blob an account holds, referenced or not
    blob_grace_s: int = 3600  # an unreferenced blob is collected after this long
    blob_gc_every_s: float = 600.0
    max_json_bytes: int = 1_000_000
    max_car_bytes: int = 100_000_000
    access_ttl_s: int = 2 * 3600
    refresh_ttl_s: int = 90 * 24 * 3600
    login_ip_limit: tuple[int, int] = (100, 300)  # password attempts per client address
    create_account_limit: tuple[int, int] = (100, 300)  # per client address per window
    reserve_key_limit: tuple[int, int] = (100, 300)  # reserveSigningKey per client address
    reserved_key_ttl_s: int = 7 * 24 * 3600  # a reserved signing key unused this long expires
    # Failed password checks (sign-in, account deletion, the admin's login) back off per
    # client address and account; no number of them locks an account for everyone.
    password_backoff: Backoff = DEFAULT_BACKOFF
    event_retention_s: int = 72 * 3600
    # Open subscribeRepos connections at once; one more is refused (TooManySubscribers,
    # close code 1013) so idle or slow sockets cannot pile up without end.
    max_firehose_subscribers: int = 1000
    invite_code_required: bool = False
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def database_url(self) -> str:
        return self.db_url or f"sqlite://{self.data_dir / 'pds.db'}"

    @property
    def did(self) -> str:
        return self.service_did or service_did_for(self.public_url)

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def mail_dir(self) -> Path:
        """Where outgoing mail (confirmation tokens) is written: this PDS sends no email."""
        return self.data_dir / "mail"


@dataclass(frozen=True)
class ServerSecrets:
    """The PDS's own keys. ``repr`` never shows them."""

    rotation_key: PrivateKey
    jwt_secret: bytes
    admin_password: str

    def __repr__(self) -> str:
        return f"ServerSecrets(rotation_key={self.rotation_key.did_key()})"


def load_or_create_secrets(data_dir: Path, admin_password: str | None = None) -> ServerSecrets:
    """Read ``DATA_DIR/secrets.json``, creating it (mode 0600) on first use."""
    private_dirs(data_dir)
    path = data_dir / SECRETS_FILE
    if path.exists():
        raw = json.loads(path.read_text())
    else:
        raw = {
            "rotation_key": PrivateKey.generate(ES256K).to_bytes().hex(),
            "jwt_secret": secrets.token_hex(32),
            "admin_password": secrets.token_urlsafe(18),
        }
        write_private(path, json.dumps(raw).encode())
    return ServerSecrets(
        rotation_key=PrivateKey.from_bytes(ES256K, bytes.fromhex(raw["rotation_key"])),
        jwt_secret=bytes.fromhex(raw["jwt_secret"]),
        admin_password=admin_password or raw["admin_password"],
    )
