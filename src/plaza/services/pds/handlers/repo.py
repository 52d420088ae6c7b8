"""``com.atproto.repo.*``: record writes and reads, blobs, import."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from plaza.asgi import body_chunks, read_body
from plaza.atproto import datamodel
from plaza.atproto.cid import CID
from plaza.atproto.errors import AtprotoError
from plaza.services.pds.account import Account
from plaza.services.pds.auth import Auth
from plaza.services.pds.blob_gc import drop_unheld_bytes
from plaza.services.pds.components import Call
from plaza.services.pds.errors import (
    BlobQuotaExceededError,
    ForbiddenError,
    InvalidRequestError,
    PayloadTooLargeError,
    RepoInactiveError,
)
from plaza.services.pds.media import SNIFF_BYTES, declared_type, sniff
from plaza.services.pds.repos import (
    CommitOutcome,
    Write,
    WriteResult,
    check_collection,
    check_rkey,
    parse_cid,
)
from plaza.services.pds.sequencer import iso_time
from plaza.services.pds.store import ACTIVE, BlobRow
from plaza.services.pds.xrpc import (
    Method,
    body_too_large,
    procedure,
    query,
)

_PREFIX = "com.atproto.repo.applyWrites#"


def hosted(call: Call, identifier: str, *, active: bool = True) -> Account:
    """The hosted account named by a DID or handle; inactive ones refused if ``active``."""
    acct = call.pds.accounts.require(identifier)
    call.account_did = acct.did
    if active and acct.status != ACTIVE:
        raise RepoInactiveError(
            f"Repo has status {acct.status}: {acct.did}",
            code="RepoTakendown" if acct.status == "takendown" else "RepoDeactivated",
        )
    return acct


def _writer(call: Call) -> Account:
    """The account being written to, which must be the authenticated one."""
    acct = call.pds.accounts.require(call.str_field("repo"))
    assert call.creds is not None
    if call.creds.did != acct.did:
        raise ForbiddenError("Authenticated account does not match the repo")
    call.account_did = acct.did
    return acct


def _validate_flag(call: Call) -> bool | None:
    value: bool | None = call.field("validate", bool, required=False)
    return value


def _record(value: Any, collection: str) -> Any:
    if not isinstance(value, dict):
        raise InvalidRequestError("record must be an object")
    try:
        record = datamodel.from_json(value)
    except AtprotoError as exc:
        raise InvalidRequestError(f"Invalid record: {exc.message}") from exc
    typ = record.get("$type")
    if typ is None:
        record["$type"] = collection
    elif typ != collection:
        raise InvalidRequestError(
            f"Invalid $type: expected {collection}, got {typ}", code="InvalidRecord"
        )
    return record


def _swap(call: Call, name: str) -> tuple[CID | None, bool]:
    body = call.body if isinstance(call.body, dict) else {}
    if name not in body:
        return None, False
    value = body[name]
    return (None, True) if value is None else (parse_cid(value, name), True)


def _result(r: WriteResult) -> dict[str, Any]:
    assert r.cid is not None
    out: dict[str, Any] = {"uri": r.uri, "cid": str(r.cid)}
    if r.validation is not None:
        out["validationStatus"] = r.validation
    return out


def _commit_meta(outcome: CommitOutcome) -> dict[str, str]:
    return {"cid": str(outcome.commit), "rev": outcome.rev}


async def create_record(call: Call) -> dict[str, Any]:
    acct = _writer(call)
    collection = check_collection(call.str_field("collection"))
    rkey = call.opt_str("rkey")
    rkey = check_rkey(rkey) if rkey is not None else call.pds.repos.clock.next()
    swap_commit, _ = _swap(call, "swapCommit")
    record = _record(call.field("record", dict), collection)
    outcome = await call.pds.repos.write(
        acct,
        [Write("create", collection, rkey, record)],
        swap_commit=swap_commit,
        validate=_validate_flag(call),
    )
    return {**_result(outcome.results[0]), "commit": _commit_meta(outcome)}


async def put_record(call: Call) -> dict[str, Any]:
    acct = _writer(call)
    collection = check_collection(call.str_field("collection"))
    rkey = check_rkey(call.str_field("rkey"))
    swap_commit, _ = _swap(call, "swapCommit")
    swap_record, check = _swap(call, "swapRecord")
    record = _record(call.field("record", dict), collection)
    repos = call.pds.repos
    exists = repos.get_record(acct.did, collection, rkey) is not None
    outcome = await repos.write(
        acct,
        [Write("update" if exists else "create", collection, rkey, record, swap_record, check)],
        swap_commit=swap_commit,
        validate=_validate_flag(call),
    )
    return {**_result(outcome.results[0]), "commit": _commit_meta(outcome)}


async def delete_record(call: Call) -> dict[str, Any]:
    acct = _writer(call)
    collection = check_collection(call.str_field("collection"))
    rkey = check_rkey(call.str_field("rkey"))
    swap_commit, _ = _swap(call, "swapCommit")
    swap_record, check = _swap(call, "swapRecord")
    repos = call.pds.repos
    if not check and repos.get_record(acct.did, collection, rkey) is None:
        if swap_commit is not None and swap_commit.raw != repos.latest(acct.did).commit_cid:
            raise InvalidRequestError("Commit was at a different CID", code="InvalidSwap")
        return {}
    outcome = await repos.write(
        acct,
        [Write("delete", collection, rkey, None, swap_record, check)],
        swap_commit=swap_commit,
        validate=False,
    )
    return {"commit": _commit_meta(outcome)}


async def apply_writes(call: Call) -> dict[str, Any]:
    acct = _writer(call)
    raw_writes = call.field("writes", list)
    swap_commit, _ = _swap(call, "swapCommit")
    writes: list[Write] = []
    for i, w in enumerate(raw_writes):
        if not isinstance(w, dict):
            raise InvalidRequestError(f"writes[{i}] must be an object")
        kind = str(w.get("$type", ""))
        if not kind.startswith(_PREFIX) or kind[len(_PREFIX) :] not in (
            "create",
            "update",
            "delete",
        ):
            raise InvalidRequestError(f"writes[{i}] has an unknown $type {kind!r}")
        action = kind[len(_PREFIX) :]
        collection = check_collection(str(w.get("collection", "")))
        rkey_raw = w.get("rkey")
        if rkey_raw is None and action == "create":
            rkey = call.pds.repos.clock.next()
        elif isinstance(rkey_raw, str):
            rkey = check_rkey(rkey_raw)
        else:
            raise InvalidRequestError(f"writes[{i}] needs an rkey")
        value = None if action == "delete" else _record(w.get("value"), collection)
        writes.append(Write(action, collection, rkey, value))
    outcome = await call.pds.repos.write(
        acct, writes, swap_commit=swap_commit, validate=_validate_flag(call)
    )
    results = []
    for r in outcome.results:
        kind = _PREFIX + r.action + "Result"
        results.append({"$type": kind} if r.action == "delete" else {"$type": kind, **_result(r)})
    return {"commit": _commit_meta(outcome), "results": results}


async def get_record(call: Call) -> dict[str, Any]:
    acct = hosted(call, call.req_param("repo"))
    collection = check_collection(call.req_param("collection"))
    rkey = call.req_param("rkey")
    cid, value = call.pds.repos.record_json(acct.did, collection, rkey)
    want = call.param("cid", required=False)
    if want is not None and want != cid:
        raise InvalidRequestError(
            f"Could not locate record: at://{acct.did}/{collection}/{rkey} with cid {want}",
            code="RecordNotFound",
        )
    return {"uri": f"at://{acct.did}/{collection}/{rkey}", "cid": cid, "value": value}


async def list_records(call: Call) -> dict[str, Any]:
    acct = hosted(call, call.req_param("repo"))
    collection = check_collection(call.req_param("collection"))
    limit = call.int_param("limit", 50, 1, 100)
    cursor = call.param("cursor", required=False)
    reverse = call.bool_param("reverse")
    ctx = call.pds
    refs = ctx.store.list_records(acct.did, collection, limit, cursor, reverse)
    records = []
    for ref in refs:
        cid, value = ctx.repos.record_json(acct.did, collection, ref.rkey)
        records.append(
            {"uri": f"at://{acct.did}/{collection}/{ref.rkey}", "cid": cid, "value": value}
        )
    out: dict[str, Any] = {"records": records}
    if len(refs) == limit:
        out["cursor"] = refs[-1].rkey
    return out


async def describe_repo(call: Call) -> dict[str, Any]:
    acct = hosted(call, call.req_param("repo"))
    ctx = call.pds
    doc = await ctx.identity.document(acct.did)
    # The DID names this PDS and key, and the handle resolves to it both ways.
    data_ok = await ctx.repos.did_points_here(acct)
    handle_ok = data_ok and await ctx.handles.is_correct(acct.handle, acct.did)
    return {
        "handle": acct.handle,
        "did": acct.did,
        "didDoc": doc or {},
        "collections": ctx.store.list_collections(acct.did),
        "handleIsCorrect": handle_ok,
    }


_BLOB_TOO_LARGE = body_too_large("blob", code="BlobTooLarge")
_CAR_TOO_LARGE = body_too_large("repository")


async def _keeping_head(chunks: AsyncIterator[bytes], head: bytearray) -> AsyncIterator[bytes]:
    """``chunks`` as they come, their first :data:`SNIFF_BYTES` copied into ``head``."""
    async for chunk in chunks:
        if len(head) < SNIFF_BYTES:
            head += chunk[: SNIFF_BYTES - len(head)]
        yield chunk


async def upload_blob(call: Call) -> dict[str, Any]:
    ctx = call.pds
    assert call.creds is not None and call.creds.did is not None
    did = call.creds.did
    limit = ctx.settings.max_blob_bytes
    body = body_chunks(call.request, limit, _BLOB_TOO_LARGE)
    declared = declared_type(call.request.headers.get("content-type", ""))
    quota = ctx.settings.blob_quota_bytes
    if ctx.store.blob_bytes(did) >= quota:
        raise BlobQuotaExceededError(f"This account's blobs fill its quota of {quota} bytes")
    try:
        head = bytearray()
        cid, size = await ctx.blobs.put_stream(_keeping_head(body, head), limit)
    except PayloadTooLargeError as exc:
        raise PayloadTooLargeError(exc.message, code="BlobTooLarge") from exc
    # From here to the row's insertion nothing yields: another upload of this account
    # cannot slip in between the quota check and the insertion.
    store = ctx.store
    if store.get_blob(did, cid.raw) is None and store.blob_bytes(did) + size > quota:
        drop_unheld_bytes(store, ctx.blobs, cid.raw)  # unless another account holds the same bytes
        raise BlobQuotaExceededError(
            f"This blob ({size} bytes) would pass this account's quota of {quota} bytes"
        )
    mime = declared or sniff(bytes(head))
    store.add_blob(did, BlobRow(cid.raw, mime, size, iso_time(time.time())))
    return {"blob": {"$type": "blob", "ref": {"$link": str(cid)}, "mimeType": mime, "size": size}}


async def import_repo(call: Call) -> None:
    ctx = call.pds
    assert call.creds is not None and call.creds.did is not None
    acct = ctx.accounts.require(call.creds.did)
    ctype = call.request.headers.get("content-type", "").split(";", 1)[0].strip()
    if ctype and ctype != "application/vnd.ipld.car":
        raise InvalidRequestError(f"Wrong request encoding (Content-Type): {ctype}")
    data = await read_body(call.request, ctx.settings.max_car_bytes, _CAR_TOO_LARGE)
    async with ctx.repos.lock(acct.did):
        await ctx.repos.import_car(acct, data)


async def list_missing_blobs(call: Call) -> dict[str, Any]:
    assert call.creds is not None and call.creds.did is not None
    limit = call.int_param("limit", 500, 1, 1000)
    cursor = call.param("cursor", required=False)
    after = parse_cid(cursor, "cursor").raw if cursor else None
    rows = call.pds.store.list_missing_blobs(call.creds.did, after, limit)
    out: dict[str, Any] = {"blobs": [{"cid": str(CID(c)), "recordUri": uri} for c, uri in rows]}
    if len(rows) == limit:
        out["cursor"] = str(CID(rows[-1][0]))
    return out


METHODS: list[Method] = [
    procedure("com.atproto.repo.createRecord", create_record, Auth.ACCESS),
    procedure("com.atproto.repo.putRecord", put_record, Auth.ACCESS),
    procedure("com.atproto.repo.deleteRecord", delete_record, Auth.ACCESS),
    procedure("com.atproto.repo.applyWrites", apply_writes, Auth.ACCESS),
    query("com.atproto.repo.getRecord", get_record),
    query("com.atproto.repo.listRecords", list_records),
    query("com.atproto.repo.describeRepo", describe_repo),
    procedure("com.atproto.repo.uploadBlob", upload_blob, Auth.ACCESS, body="raw"),
    procedure("com.atproto.repo.importRepo", import_repo, Auth.FULL, body="raw"),
    query("com.atproto.repo.listMissingBlobs", list_missing_blobs, Auth.ACCESS),
]
