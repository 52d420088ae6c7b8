"""The archive's ``com.atproto.sync.*`` reads, answered from the store alone.

Every method works for every archived DID whatever its host's state: nothing here calls
a host. Parameters are checked as a PDS checks them, and errors have a PDS's names and
shape (``{"error", "message"}``): ``RepoNotFound`` for a DID with no archived
repository, ``BlobNotFound``, ``InvalidRequest`` for a malformed parameter.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from plaza.atproto import syntax
from plaza.atproto.car import car_header, car_section
from plaza.atproto.cid import CID
from plaza.atproto.errors import AtprotoError
from plaza.atproto.repo_verify import record_proof_car
from plaza.errors import PlazaError
from plaza.services.archive.blobs import BlobFiles
from plaza.services.archive.errors import (
    BlobNotFoundError,
    ExportInterruptedError,
    InvalidRequestError,
    RepoNotFoundError,
)
from plaza.services.archive.store import HELD, PAGE, ArchiveStore, RepoHead
from plaza.services.pds.xrpc import error_response, is_ascii_digits, json_response

log = logging.getLogger("plaza.archive")

CAR_TYPE: Final = "application/vnd.ipld.car"


@dataclass(frozen=True)
class Reads:
    """What the read methods use: the store and the blob files."""

    store: ArchiveStore
    blobs: BlobFiles


Handler = Callable[[Reads, Request], Awaitable[Any]]


# -- parameters ---------------------------------------------------------------------------
def _param(request: Request, name: str) -> str | None:
    value = request.query_params.get(name)
    return None if value is None or value == "" else value


def _required(request: Request, name: str) -> str:
    value = _param(request, name)
    if value is None:
        raise InvalidRequestError(f'Error: Params must have the property "{name}"')
    return value


def _checked(check: Callable[[str], str], value: str, what: str) -> str:
    try:
        return check(value)
    except AtprotoError as exc:
        raise InvalidRequestError(f"{what}: {exc.message}") from exc


def _cid(value: str, name: str) -> CID:
    try:
        return CID.decode(value)
    except AtprotoError as exc:
        raise InvalidRequestError(f"{name} is not a valid CID: {exc.message}") from exc


def _since(request: Request) -> str | None:
    raw = _param(request, "since")
    return None if raw is None else _checked(syntax.validate_tid, raw, "since must be a rev")


def _limit(request: Request, default: int = 500, hi: int = 1000) -> int:
    raw = _param(request, "limit")
    if raw is None:
        return default
    if not is_ascii_digits(raw) or not 1 <= int(raw) <= hi:
        raise InvalidRequestError(f"limit must be an integer between 1 and {hi}")
    return int(raw)


def _repo(reads: Reads, request: Request) -> RepoHead:
    did = _checked(syntax.validate_did, _required(request, "did"), "Invalid did")
    head = reads.store.head(did)
    if head is None or head.commit_cid is None:
        raise RepoNotFoundError(f"Could not find repo for DID: {did}")
    return head


# -- methods ------------------------------------------------------------------------------
async def get_repo(reads: Reads, request: Request) -> Response:
    head = _repo(reads, request)
    chunks = _export(reads.store, head, _since(request))
    first = next(chunks)

    async def stream() -> AsyncIterator[bytes]:
        yield first
        for chunk in chunks:
            yield chunk

    return StreamingResponse(stream(), media_type=CAR_TYPE)


def _export(store: ArchiveStore, head: RepoHead, since: str | None) -> Iterator[bytes]:
    """The commit, then the repository's blocks (all, or those that arrived after rev
    ``since``) a page at a time in CID order. If the head moves between two pages
    (blocks may have left), the export stops with an error instead of ending short."""
    assert head.commit_cid is not None
    commit = store.block(head.id, head.commit_cid)
    if commit is None:
        raise RepoNotFoundError(f"Could not find repo for DID: {head.did}")
    yield car_header([head.commit_cid]) + car_section(head.commit_cid, commit)
    after = b""
    while True:
        rows = store.block_page(head.id, since, after, PAGE)
        now = store.head(head.did)
        if now is None or now.commit_cid != head.commit_cid:
            raise ExportInterruptedError(f"{head.did} moved during its export; ask again")
        start = head.commit_cid.raw
        chunk = b"".join(car_section(CID(c), d) for c, d in rows if c != start)
        if chunk:
            yield chunk
        if len(rows) < PAGE:
            return
        after = rows[-1][0]


class _Source:
    """One archived repository's blocks, as an MST block source."""

    def __init__(self, store: ArchiveStore, repo: int) -> None:
        self.store = store
        self.repo = repo

    def get(self, cid: CID, /) -> bytes | None:
        return self.store.block(self.repo, cid)


async def get_record(reads: Reads, request: Request) -> Response:
    head = _repo(reads, request)
    collection = _checked(
        syntax.validate_nsid, _required(request, "collection"), "Invalid collection"
    )
    rkey = _checked(syntax.validate_record_key, _required(request, "rkey"), "Invalid record key")
    assert head.commit_cid is not None
    car = record_proof_car(_Source(reads.store, head.id), head.commit_cid, collection, rkey)
    return Response(car, media_type=CAR_TYPE)


async def get_latest_commit(reads: Reads, request: Request) -> dict[str, Any]:
    head = _repo(reads, request)
    return {"cid": str(head.commit_cid), "rev": head.rev}


def _status(head: RepoHead) -> dict[str, Any]:
    out: dict[str, Any] = {"did": head.did, "active": head.active, "rev": head.rev}
    if not head.active and head.status:
        out["status"] = head.status
    return out


async def get_repo_status(reads: Reads, request: Request) -> dict[str, Any]:
    return _status(_repo(reads, request))


async def list_repos(reads: Reads, request: Request) -> dict[str, Any]:
    limit = _limit(request)
    rows = reads.store.list_repos(_param(request, "cursor") or "", limit)
    repos = [{**_status(h), "head": str(h.commit_cid)} for h in rows]
    out: dict[str, Any] = {"repos": repos}
    if len(rows) == limit:
        out["cursor"] = rows[-1].did
    return out


async def get_blob(reads: Reads, request: Request) -> Response:
    head = _repo(reads, request)
    cid = _cid(_required(request, "cid"), "cid")
    row = reads.store.blob(head.did, cid)
    if row is None or row.state != HELD or row.size is None:
        raise BlobNotFoundError(f"Blob not found: {cid}")
    try:
        chunks = reads.blobs.read(cid)
    except FileNotFoundError as exc:
        raise BlobNotFoundError(f"Blob not found: {cid}") from exc
    return StreamingResponse(
        _iterate(chunks),
        media_type=row.mime,
        headers={
            "content-length": str(row.size),
            "x-content-type-options": "nosniff",
            "content-security-policy": "default-src 'none'; sandbox",
        },
    )


async def _iterate(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


async def list_blobs(reads: Reads, request: Request) -> dict[str, Any]:
    head = _repo(reads, request)
    limit = _limit(request)
    cursor = _param(request, "cursor")
    after = b"" if cursor is None else _cid(cursor, "cursor").raw
    cids = reads.store.list_blobs(head.id, _since(request), after, limit)
    out: dict[str, Any] = {"cids": [str(c) for c in cids]}
    if len(cids) == limit:
        out["cursor"] = str(cids[-1])
    return out


METHODS: Final[dict[str, Handler]] = {
    "com.atproto.sync.getRepo": get_repo,
    "com.atproto.sync.getRecord": get_record,
    "com.atproto.sync.getBlob": get_blob,
    "com.atproto.sync.listBlobs": list_blobs,
    "com.atproto.sync.getLatestCommit": get_latest_commit,
    "com.atproto.sync.getRepoStatus": get_repo_status,
    "com.atproto.sync.listRepos": list_repos,
}


async def dispatch(reads: Reads, request: Request) -> Response:
    """``GET /xrpc/{nsid}``: the method's answer, or its XRPC error."""
    nsid: str = request.path_params["nsid"]
    handler = METHODS.get(nsid)
    try:
        if handler is None:
            raise PlazaError("Method Not Implemented", code="MethodNotImplemented", status=501)
        if request.method not in ("GET", "HEAD"):
            raise InvalidRequestError(f"Incorrect HTTP method ({request.method}) expected GET")
        result = await handler(reads, request)
    except PlazaError as err:
        return error_response(err)
    except Exception:
        log.exception("archive: XRPC %s failed", nsid)
        return json_response(
            {"error": "InternalServerError", "message": "Internal Server Error"}, 500
        )
    return result if isinstance(result, Response) else json_response(result)
