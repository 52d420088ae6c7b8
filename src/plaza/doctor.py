"""Environment checks behind ``plaza doctor``."""

from __future__ import annotations

import shutil
import sys
from dataclasses import asdict, dataclass
from importlib import metadata
from urllib.parse import urlsplit, urlunsplit

_REQUIRED_PACKAGES = ("cryptography", "coincurve", "libipld", "starlette", "uvicorn", "psycopg")


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    required: bool = True

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _python() -> Check:
    ok = sys.version_info >= (3, 11)
    return Check("python", ok, sys.version.split()[0] + ("" if ok else " (need >= 3.11)"))


def _packages() -> list[Check]:
    out = []
    for name in _REQUIRED_PACKAGES:
        try:
            out.append(Check(f"package {name}", True, metadata.version(name)))
        except metadata.PackageNotFoundError:
            out.append(Check(f"package {name}", False, "not installed"))
    return out


def redact(url: str) -> str:
    """``url`` with any password replaced by ``***`` (safe to print)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _postgres(url: str) -> Check:
    shown = redact(url)
    try:
        import psycopg

        with psycopg.connect(url, connect_timeout=3) as conn:
            version = conn.execute("SHOW server_version").fetchone()
        return Check(
            "postgresql",
            True,
            f"{shown} answers (server {version[0] if version else '?'})",
            required=False,
        )
    except Exception as exc:  # noqa: BLE001 - report any failure to connect
        reason = str(exc).strip()[:120].replace(url, shown)
        return Check("postgresql", False, f"{shown}: {reason}", required=False)


def _tool(name: str, why: str) -> Check:
    path = shutil.which(name)
    return Check(name, path is not None, path or f"not found ({why})", required=False)


def run_checks(pg_url: str) -> list[Check]:
    """Run every check; required ones decide the exit status of ``plaza doctor``."""
    checks = [_python(), *_packages(), _postgres(pg_url)]
    checks.append(_tool("node", "only needed to benchmark the reference PDS"))
    checks.append(_tool("chromium", "only needed for browser tests"))
    return checks
