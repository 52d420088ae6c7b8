"""A live network for the archive's tests: a directory, a PDS and an archive following
the PDS's firehose, each served by uvicorn on a free loopback port (in background
threads, so one can be stopped while the others run). Clients are the atproto SDK and
httpx; nothing is mocked.
"""

from __future__ import annotations

import secrets
import socket
import struct
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from atproto import Client, models
from plaza.services.archive import ArchiveSettings, create_app
from plaza.services.directory import DirectorySettings
from plaza.services.directory import create_app as create_directory
from plaza.services.pds import PdsSettings
from plaza.services.pds import create_app as create_pds
from plaza.services.runner import ServedApp, ServerThread

DEADLINE_S = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(what: str, check: Callable[[], Any], deadline_s: float = DEADLINE_S) -> Any:
    """Poll ``check`` (another thread's server does the work) until it returns a true
    value; fail naming ``what`` after the deadline."""
    end = time.monotonic() + deadline_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


@contextmanager
def serve(name: str, app: Any, port: int = 0) -> Iterator[tuple[str, ServerThread]]:
    thread = ServerThread([ServedApp(name, app, port=port)])
    with thread as (url,):
        yield url, thread


@contextmanager
def directory(root: Path) -> Iterator[str]:
    app = create_directory(DirectorySettings.for_data_dir(root / "directory"))
    with serve("directory", app) as (url, _):
        yield url


@contextmanager
def pds(
    root: Path, directory_url: str, name: str = "pds", port: int | None = None
) -> Iterator[tuple[str, ServerThread]]:
    """A PDS keeping its data in ``root/name`` (on ``port``, else a free one): the same
    arguments again start the same PDS after it stopped."""
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    settings = PdsSettings(data_dir=root / name, public_url=url, directory_url=directory_url)
    with serve(name, create_pds(settings), port) as served:
        yield served


def archive_settings(root: Path, source: str, directory_url: str, **extra: Any) -> ArchiveSettings:
    """Settings of an archive in ``root/archive`` that retries quickly (tests may
    override any field)."""
    fields: dict[str, Any] = {"retry_base_s": 0.05, "retry_max_s": 0.5, **extra}
    return ArchiveSettings(
        data_dir=root / "archive", relay_url=source, directory_url=directory_url, **fields
    )


@contextmanager
def archive(settings: ArchiveSettings) -> Iterator[tuple[str, Any]]:
    """An archive served from a thread; yields its URL and its app (its parts are at
    ``app.state.archive``)."""
    app = create_app(settings)
    with serve("archive", app) as (url, _):
        yield url, app


@dataclass
class Member:
    did: str
    handle: str
    password: str
    client: Client


def member(pds_url: str) -> Member:
    """A new account on ``pds_url``, signed in through the atproto SDK."""
    handle = f"m{secrets.token_hex(4)}.test"
    password = "pw-" + secrets.token_hex(8)
    Client(base_url=pds_url).com.atproto.server.create_account(
        models.ComAtprotoServerCreateAccount.Data(
            handle=handle, password=password, email=f"{handle}@example.com"
        )
    )
    client = Client(base_url=pds_url)
    client.login(handle, password)
    assert client.me is not None
    return Member(client.me.did, handle, password, client)


def latest(url: str, did: str) -> dict[str, Any] | None:
    r = httpx.get(f"{url}/xrpc/com.atproto.sync.getLatestCommit", params={"did": did}, timeout=10)
    return r.json() if r.status_code == 200 else None


def caught_up(archive_url: str, pds_url: str, did: str) -> Callable[[], bool]:
    """True once the archive's head of ``did`` is the PDS's."""

    def check() -> bool:
        want = latest(pds_url, did)
        return want is not None and latest(archive_url, did) == want

    return check


def blobs(url: str, did: str) -> set[str] | None:
    """The CIDs ``listBlobs`` names for ``did`` at ``url`` (one page), or None."""
    r = httpx.get(
        f"{url}/xrpc/com.atproto.sync.listBlobs", params={"did": did, "limit": 1000}, timeout=10
    )
    return set(r.json()["cids"]) if r.status_code == 200 else None


def holds(archive_url: str, pds_url: str, did: str) -> Callable[[], bool]:
    """True once the archive's head of ``did`` is the PDS's and it holds every blob the
    PDS lists for it: the archive alone can then stand in for the host."""

    def check() -> bool:
        want = blobs(pds_url, did)
        return (
            caught_up(archive_url, pds_url, did)()
            and want is not None
            and blobs(archive_url, did) == want
        )

    return check


def png_1x1() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\x00\x80\xff")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def image_blob(client: Client, did: str, uri: str) -> str:
    rkey = uri.rsplit("/", 1)[1]
    post = client.get_post(rkey, did)
    return str(post.value.embed.images[0].image.ref.link)
