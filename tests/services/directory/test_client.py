"""The directory client trusts a directory for nothing it could forge: logs are re-validated."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from plaza.atproto.plc import PLAZA_KEY, create_update
from plaza.services.directory import DirectorySettings, create_app
from plaza.services.directory.client import (
    MAX_RESPONSE_BYTES,
    DirectoryLookupError,
    active_chain,
    current_head,
    fetch_state,
)
from plaza.services.runner import ServedApp, ServerThread
from tests.services.directory.helpers import identity, key


@pytest.fixture
def directory(tmp_path: Path, free_port: int) -> Iterator[str]:
    settings = DirectorySettings(db_url=f"sqlite:///{tmp_path / 'directory.db'}")
    app = create_app(settings)
    with ServerThread([ServedApp("directory", app, "127.0.0.1", free_port)]) as (url,):
        yield url


def test_a_verified_log_from_a_real_directory(directory: str) -> None:
    ident = identity("client")
    assert httpx.post(f"{directory}/{ident.did}", json=ident.genesis.to_json()).status_code == 200
    update = create_update(
        ident.genesis, ident.recovery, verification_methods={PLAZA_KEY: key("p").did_key()}
    )
    assert httpx.post(f"{directory}/{ident.did}", json=update.to_json()).status_code == 200
    state = fetch_state(directory, ident.did)
    assert [e.operation for e in state.active] == active_chain(directory, ident.did)
    assert current_head(directory, ident.did) == state.head.cid  # type: ignore[union-attr]
    with pytest.raises(DirectoryLookupError, match="does not know"):
        fetch_state(directory, "did:plc:" + "b" * 24)


def _serve(body: Any) -> ServerThread:
    async def audit(request: Request) -> Response:
        if isinstance(body, bytes):
            return Response(body, media_type="application/json")
        return JSONResponse(body)

    app = Starlette(routes=[Route("/{did}/log/audit", audit)])
    return ServerThread([ServedApp("liar", app, "127.0.0.1", 0)])  # any free port


@pytest.mark.parametrize("lie", ["edited-key", "other-did", "not-a-list", "huge", "deep"])
def test_a_lying_directory_is_caught(lie: str, directory: str) -> None:
    ident = identity("liar")
    httpx.post(f"{directory}/{ident.did}", json=ident.genesis.to_json())
    log: Any = httpx.get(f"{directory}/{ident.did}/log/audit").json()
    if lie == "edited-key":
        log[0]["operation"]["verificationMethods"] = {PLAZA_KEY: key("thief").did_key()}
    elif lie == "other-did":
        other = identity("other")
        httpx.post(f"{directory}/{other.did}", json=other.genesis.to_json())
        log = httpx.get(f"{directory}/{other.did}/log/audit").json()
    elif lie == "not-a-list":
        log = {"log": log}
    elif lie == "huge":
        log = b"[" + b" " * (MAX_RESPONSE_BYTES + 1) + b"]"
    elif lie == "deep":
        log = b"[" * 100_000
    with _serve(log) as (url,), pytest.raises(DirectoryLookupError):
        fetch_state(url, ident.did)
