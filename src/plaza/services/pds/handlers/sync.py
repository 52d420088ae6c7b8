"""``com.atproto.sync.*`` over HTTP (``subscribeRepos`` is in :mod:`..firehose`)."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response, StreamingResponse

from plaza.atproto.cid import CID
from plaza.services.pds.components import Call
from plaza.services.pds.errors import BlobNotFoundError, InvalidRequestError
from plaza.services.pds.handlers.repo import hosted
from plaza.services.pds.repos import check_collection, parse_cid
from plaza.services.pds.store import ACTIVE
from plaza.services.pds.xrpc import Method, query

CAR_TYPE = "application/vnd.ipld.car"


async def get_repo(call: Call) -> Response:
    acct = hosted(call, call.req_param("did"))
    since = call.tid_param("since")
    # Streamed as it is read from the store: a repository is never held whole in memory.
    return StreamingResponse(call.pds.repos.export_stream(acct.did, since), media_type=CAR_TYPE)


async def get_latest_commit(call: Call) -> dict[str, Any]:
    acct = hosted(call, call.req_param("did"))
    root = call.pds.repos.latest(acct.did)
    return {"cid": str(CID(root.commit_cid)), "rev": root.rev}


async def get_record(call: Call) -> Response:
    acct = hosted(call, call.req_param("did"))
    collection = check_collection(call.req_param("collection"))
    rkey = call.req_param("rkey")
    return Response(call.pds.repos.record_proof(acct.did, collection, rkey), media_type=CAR_TYPE)


async def get_blocks(call: Call) -> Response:
    acct = hosted(call, call.req_param("did"))
    cids = [parse_cid(c, "cids") for c in call.request.query_params.getlist("cids")]
    if not cids:
        raise InvalidRequestError("cids is required")
    return Response(call.pds.repos.blocks_car(acct.did, cids), media_type=CAR_TYPE)


def _repo_status(call: Call, did: str) -> dict[str, Any]:
    acct = hosted(call, did, active=False)
    out: dict[str, Any] = {"did": acct.did, "active": acct.status == ACTIVE}
    if acct.status != ACTIVE:
        out["status"] = acct.status
    root = call.pds.store.get_root(acct.did)
    if root is not None:
        out["rev"] = root.rev
    return out


async def get_repo_status(call: Call) -> dict[str, Any]:
    return _repo_status(call, call.req_param("did"))


async def list_repos(call: Call) -> dict[str, Any]:
    limit = call.int_param("limit", 500, 1, 1000)
    cursor = call.param("cursor", required=False)
    store = call.pds.store
    rows = store.list_accounts(cursor, limit)
    repos = []
    for row in rows:
        root = store.get_root(row.did)
        if root is None:
            continue
        item: dict[str, Any] = {
            "did": row.did,
            "head": str(CID(root.commit_cid)),
            "rev": root.rev,
            "active": row.status == ACTIVE,
        }
        if row.status != ACTIVE:
            item["status"] = row.status
        repos.append(item)
    out: dict[str, Any] = {"repos": repos}
    if len(rows) == limit:
        out["cursor"] = rows[-1].did
    return out


async def get_blob(call: Call) -> Response:
    acct = hosted(call, call.req_param("did"))
    cid = parse_cid(call.req_param("cid"), "cid")
    ctx = call.pds
    row = ctx.store.get_blob(acct.did, cid.raw)
    if row is None:
        raise BlobNotFoundError(f"Blob not found: {cid}")
    try:
        chunks = ctx.blobs.read(cid)
    except FileNotFoundError as exc:
        raise BlobNotFoundError(f"Blob not found: {cid}") from exc
    return StreamingResponse(
        chunks,
        media_type=row.mime,
        headers={
            "content-length": str(row.size),
            "x-content-type-options": "nosniff",
            "content-security-policy": "default-src 'none'; sandbox",
        },
    )


async def list_blobs(call: Call) -> dict[str, Any]:
    acct = hosted(call, call.req_param("did"))
    limit = call.int_param("limit", 500, 1, 1000)
    cursor = call.param("cursor", required=False)
    since = call.tid_param("since")
    store = call.pds.store
    if since is not None:
        cids = [
            c
            for c in store.list_referenced_blobs(acct.did, since)
            if store.get_blob(acct.did, c) is not None
        ]
        after = parse_cid(cursor, "cursor").raw if cursor else b""
        cids = [c for c in cids if c > after][:limit]
    else:
        after_raw = parse_cid(cursor, "cursor").raw if cursor else None
        cids = store.list_blobs(acct.did, after_raw, limit)
    out: dict[str, Any] = {"cids": [str(CID(c)) for c in cids]}
    if len(cids) == limit:
        out["cursor"] = str(CID(cids[-1]))
    return out


METHODS: list[Method] = [
    query("com.atproto.sync.getRepo", get_repo),
    query("com.atproto.sync.getLatestCommit", get_latest_commit),
    query("com.atproto.sync.getRecord", get_record),
    query("com.atproto.sync.getBlocks", get_blocks),
    query("com.atproto.sync.getRepoStatus", get_repo_status),
    query("com.atproto.sync.listRepos", list_repos),
    query("com.atproto.sync.getBlob", get_blob),
    query("com.atproto.sync.listBlobs", list_blobs),
]
