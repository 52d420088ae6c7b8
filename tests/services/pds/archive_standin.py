"""A stand-in for the archive service in recovery tests, until the real one is merged.

The recovery flow reads a dead host's accounts from an archive over the standard sync
methods. The archive service (``plaza serve archive``) is being built beside this
code; until it lands, these tests serve the archive's role with this small, real HTTP
service: it answers ``com.atproto.sync.getRepo``, ``getLatestCommit``, ``listBlobs``,
``getBlob`` and ``listRepos`` for the repositories and blobs it was given, which the
tests fetch from the first PDS *before* they stop it. Nothing in the recovery code
knows it is not the archive; once the archive service is merged, the tests point
``archive_url`` at it instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from plaza.atproto.repo_verify import import_car


@dataclass
class ArchivedRepo:
    car: bytes
    blobs: dict[str, tuple[bytes, str]] = field(default_factory=dict)  # cid -> (bytes, mime)


def snapshot(pds: str, did: str) -> ArchivedRepo:
    """The repository and every blob of ``did``, read from the live ``pds``."""
    car = httpx.get(f"{pds}/xrpc/com.atproto.sync.getRepo", params={"did": did}, timeout=30)
    assert car.status_code == 200, car.text
    cids = httpx.get(
        f"{pds}/xrpc/com.atproto.sync.listBlobs", params={"did": did, "limit": 1000}, timeout=30
    ).json()["cids"]
    blobs = {}
    for cid in cids:
        got = httpx.get(
            f"{pds}/xrpc/com.atproto.sync.getBlob", params={"did": did, "cid": cid}, timeout=30
        )
        assert got.status_code == 200, got.text
        blobs[cid] = (got.content, got.headers["content-type"])
    return ArchivedRepo(car.content, blobs)


def _error(status: int, name: str, message: str) -> JSONResponse:
    return JSONResponse({"error": name, "message": message}, status_code=status)


def create_standin(repos: dict[str, ArchivedRepo]) -> Starlette:
    """An ASGI app serving ``repos`` (DID -> copy) the way an archive does."""

    def _repo(request: Request) -> ArchivedRepo | JSONResponse:
        did = request.query_params.get("did", "")
        repo = repos.get(did)
        if repo is None:
            return _error(400, "RepoNotFound", f"Could not find repo for DID: {did}")
        return repo

    async def get_repo(request: Request) -> Response:
        repo = _repo(request)
        if isinstance(repo, JSONResponse):
            return repo
        return Response(repo.car, media_type="application/vnd.ipld.car")

    async def latest(request: Request) -> Response:
        repo = _repo(request)
        if isinstance(repo, JSONResponse):
            return repo
        verified = import_car(repo.car)
        return JSONResponse({"cid": str(verified.commit_cid), "rev": verified.rev})

    async def list_blobs(request: Request) -> Response:
        repo = _repo(request)
        if isinstance(repo, JSONResponse):
            return repo
        out: dict[str, Any] = {"cids": sorted(repo.blobs)}
        return JSONResponse(out)

    async def get_blob(request: Request) -> Response:
        repo = _repo(request)
        if isinstance(repo, JSONResponse):
            return repo
        blob = repo.blobs.get(request.query_params.get("cid", ""))
        if blob is None:
            return _error(400, "BlobNotFound", "Blob not found")
        return Response(blob[0], media_type=blob[1])

    async def list_repos(request: Request) -> Response:
        out = []
        for did, repo in sorted(repos.items()):
            verified = import_car(repo.car)
            out.append({"did": did, "head": str(verified.commit_cid), "rev": verified.rev})
        return JSONResponse({"repos": out})

    return Starlette(
        routes=[
            Route("/xrpc/com.atproto.sync.listRepos", list_repos),
            Route("/xrpc/com.atproto.sync.getRepo", get_repo),
            Route("/xrpc/com.atproto.sync.getLatestCommit", latest),
            Route("/xrpc/com.atproto.sync.listBlobs", list_blobs),
            Route("/xrpc/com.atproto.sync.getBlob", get_blob),
        ]
    )
