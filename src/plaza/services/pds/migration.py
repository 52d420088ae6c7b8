"""Account migration between two hosting services, by the AT Protocol's documented flow.

This is the member's side of the flow (a client of both PDSs and of the directory); it
needs no cooperation beyond what any PDS must offer. Steps, in order:

 1. log in to the old PDS; read the new PDS's description and DID;
 2. old ``getServiceAuth`` (``lxm=createAccount``, ``aud`` = new PDS) →
    new ``createAccount`` with the existing DID (the account starts deactivated);
 3. old ``sync.getRepo`` → new ``repo.importRepo``;
 4. every blob: old ``sync.listBlobs``/``getBlob`` → new ``uploadBlob``, then
    ``listMissingBlobs`` must come back empty;
 5. preferences: old ``getPreferences`` → new ``putPreferences``;
 6. identity: new ``getRecommendedDidCredentials``; old ``requestPlcOperationSignature``
    (a token reaches the member out of band) and ``signPlcOperation``; new
    ``submitPlcOperation``. Rotation keys keep the member's own keys first — everything
    in the current list that is not the old PDS's key — then the new PDS's;
 7. new ``activateAccount``; old ``deactivateAccount``;
 8. verify: the directory names the new PDS and its signing key, the new repository
    verifies in full against that key and has the same MST root as the exported one
    (which verified in full too), every blob arrived, the new account is active and the
    old one is not.

A re-run after an interruption resumes: an existing account on the new PDS is logged in
to instead of created, and the import and uploads are idempotent.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from plaza.atproto.commit import verify_commit
from plaza.atproto.crypto import parse_did_key
from plaza.atproto.errors import AtprotoError
from plaza.atproto.repo_verify import VerifiedRepo, import_car
from plaza.errors import PlazaError

STEPS = (
    "log in to the old host",
    "create the account on the new host",
    "copy the repository",
    "copy the blobs",
    "copy the preferences",
    "move the identity (PLC operation)",
    "activate on the new host, deactivate on the old",
    "verify",
)


class MigrationError(PlazaError):
    """A step of the migration failed; the message names the step and the server's answer."""

    code = "MigrationFailed"
    status = 502


Progress = Callable[[int, str, str], None]  # (step index, step name, detail)


@dataclass
class MigrationReport:
    did: str
    handle: str
    old_url: str
    new_url: str
    records_root: str = ""
    rev: str = ""
    blobs: int = 0
    repo_bytes: int = 0
    checks: dict[str, bool] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(self.checks.values())


def error_detail(resp: httpx.Response) -> str:
    """An XRPC error response as ``Error: message`` (its text, cut short, if not JSON)."""
    try:
        body = resp.json()
        return f"{body.get('error')}: {body.get('message')}"
    except ValueError:
        return resp.text[:200]


class _Xrpc:
    def __init__(self, base: str, http: httpx.Client, what: str) -> None:
        self.base = base.rstrip("/")
        self.http = http
        self.what = what
        self.token: str | None = None

    def _headers(self, token: str | None) -> dict[str, str]:
        tok = token or self.token
        return {"authorization": f"Bearer {tok}"} if tok else {}

    def _check(self, nsid: str, resp: httpx.Response) -> httpx.Response:
        if resp.status_code != 200:
            detail = error_detail(resp)
            raise MigrationError(f"{self.what} {nsid} failed ({resp.status_code}) {detail}")
        return resp

    def get(self, nsid: str, token: str | None = None, **params: Any) -> httpx.Response:
        url = f"{self.base}/xrpc/{nsid}"
        return self._check(nsid, self.http.get(url, params=params, headers=self._headers(token)))

    def post(
        self,
        nsid: str,
        body: Any = None,
        *,
        token: str | None = None,
        content: bytes | None = None,
        content_type: str | None = None,
    ) -> httpx.Response:
        url = f"{self.base}/xrpc/{nsid}"
        headers = self._headers(token)
        if content is not None:
            headers["content-type"] = content_type or "application/octet-stream"
            resp = self.http.post(url, content=content, headers=headers)
        elif body is not None:
            resp = self.http.post(url, json=body, headers=headers)
        else:
            resp = self.http.post(url, headers=headers)
        return self._check(nsid, resp)


def migrate_account(
    *,
    did: str,
    old_url: str,
    new_url: str,
    password: str,
    directory_url: str,
    plc_token: Callable[[], str],
    email: str | None = None,
    progress: Progress | None = None,
    http: httpx.Client | None = None,
) -> MigrationReport:
    """Move ``did`` from ``old_url`` to ``new_url`` (see the module docstring).

    ``plc_token`` is called once, after the old PDS has sent its confirmation token,
    and must return it. Raises :class:`MigrationError` when a step fails.
    """
    report_progress = progress or (lambda i, name, detail: None)
    own = http is None
    client = http or httpx.Client(timeout=httpx.Timeout(60.0))
    try:
        return _migrate(
            did=did,
            old=_Xrpc(old_url, client, "old host"),
            new=_Xrpc(new_url, client, "new host"),
            http=client,
            directory=directory_url.rstrip("/"),
            password=password,
            email=email,
            plc_token=plc_token,
            step=report_progress,
        )
    except httpx.HTTPError as exc:
        raise MigrationError(f"network error: {exc}") from exc
    finally:
        if own:
            client.close()


def _migrate(
    *,
    did: str,
    old: _Xrpc,
    new: _Xrpc,
    http: httpx.Client,
    directory: str,
    password: str,
    email: str | None,
    plc_token: Callable[[], str],
    step: Progress,
) -> MigrationReport:
    step(0, STEPS[0], old.base)
    session = old.post(
        "com.atproto.server.createSession", {"identifier": did, "password": password}
    ).json()
    old.token = session["accessJwt"]
    handle = session["handle"]
    email = email or session.get("email")
    desc = new.get("com.atproto.server.describeServer").json()
    if desc.get("inviteCodeRequired"):
        raise MigrationError("the new host requires an invite code")
    report = MigrationReport(did, handle, old.base, new.base)

    step(1, STEPS[1], f"{handle} on {new.base}")
    service_token = old.get(
        "com.atproto.server.getServiceAuth",
        aud=desc["did"],
        lxm="com.atproto.server.createAccount",
        exp=int(time.time()) + 600,
    ).json()["token"]
    body: dict[str, Any] = {"did": did, "handle": handle, "password": password}
    if email:
        body["email"] = email
    try:
        created = new.post("com.atproto.server.createAccount", body, token=service_token).json()
        new.token = created["accessJwt"]
    except MigrationError as exc:
        if "already exists" not in exc.message:
            raise
        resumed = new.post(
            "com.atproto.server.createSession", {"identifier": did, "password": password}
        ).json()
        new.token = resumed["accessJwt"]

    step(2, STEPS[2], "getRepo → importRepo")
    car = old.get("com.atproto.sync.getRepo", did=did).content
    report.repo_bytes = len(car)
    exported = _verified(car, did, "the old host's export")
    new.post("com.atproto.repo.importRepo", content=car, content_type="application/vnd.ipld.car")

    step(3, STEPS[3], "listBlobs → getBlob → uploadBlob")
    blobs = _list_blobs(old, did)
    for i, cid in enumerate(blobs, 1):
        resp = old.get("com.atproto.sync.getBlob", did=did, cid=cid)
        new.post(
            "com.atproto.repo.uploadBlob",
            content=resp.content,
            content_type=resp.headers.get("content-type", "application/octet-stream"),
        )
        step(3, STEPS[3], f"{i}/{len(blobs)} blobs")
    report.blobs = len(blobs)
    missing = new.get("com.atproto.repo.listMissingBlobs", limit=1000).json()["blobs"]
    if missing:
        raise MigrationError(f"the new host still misses {len(missing)} blobs")

    step(4, STEPS[4], "getPreferences → putPreferences")
    prefs = old.get("app.bsky.actor.getPreferences").json().get("preferences", [])
    new.post("app.bsky.actor.putPreferences", {"preferences": prefs})

    step(5, STEPS[5], "signPlcOperation on the old host, submit on the new")
    recommended = new.get("com.atproto.identity.getRecommendedDidCredentials").json()
    old_keys = set(
        old.get("com.atproto.identity.getRecommendedDidCredentials").json().get("rotationKeys", [])
    )
    current = _did_data(http, directory, did)
    member_keys = [k for k in current.get("rotationKeys", []) if k not in old_keys]
    rotation = member_keys + [k for k in recommended["rotationKeys"] if k not in member_keys]
    old.post("com.atproto.identity.requestPlcOperationSignature")
    token = plc_token().strip()
    op = old.post(
        "com.atproto.identity.signPlcOperation",
        {
            "token": token,
            "rotationKeys": rotation,
            "alsoKnownAs": recommended["alsoKnownAs"],
            "verificationMethods": recommended["verificationMethods"],
            "services": recommended["services"],
        },
    ).json()["operation"]
    new.post("com.atproto.identity.submitPlcOperation", {"operation": op})

    step(6, STEPS[6], "activateAccount, deactivateAccount")
    new.post("com.atproto.server.activateAccount")
    old.post("com.atproto.server.deactivateAccount", {})

    step(7, STEPS[7], "directory, repository, blobs, status")
    data = _did_data(http, directory, did)
    endpoint = data.get("services", {}).get("atproto_pds", {}).get("endpoint", "")
    report.checks["directory names the new host"] = endpoint.rstrip("/") == new.base
    report.checks["directory has the new signing key"] = (
        data.get("verificationMethods", {}).get("atproto")
        == recommended["verificationMethods"]["atproto"]
    )
    report.checks["member rotation keys kept first"] = (
        data.get("rotationKeys", [])[: len(member_keys)] == member_keys
    )
    moved = _verified(
        new.get("com.atproto.sync.getRepo", did=did).content, did, "the new host's repository"
    )
    report.records_root = str(moved.data)
    report.rev = moved.rev or ""
    report.checks["same records (MST root)"] = moved.data == exported.data
    report.checks["rev moved forward"] = (moved.rev or "") > (exported.rev or "")
    report.checks["new repository signed with the directory's key"] = _signed_by(
        moved, data.get("verificationMethods", {}).get("atproto", "")
    )
    report.checks["same blobs"] = sorted(_list_blobs(new, did)) == sorted(blobs)
    new_status = new.get("com.atproto.sync.getRepoStatus", did=did).json()
    old_status = old.get("com.atproto.sync.getRepoStatus", did=did).json()
    report.checks["active on the new host"] = bool(new_status.get("active"))
    report.checks["inactive on the old host"] = not old_status.get("active")
    return report


def _verified(car: bytes, did: str, what: str) -> VerifiedRepo:
    """``car``, a repository of ``did``, read and verified in full (blocks, MST, records)."""
    try:
        return import_car(car, did=did)
    except AtprotoError as exc:
        raise MigrationError(f"{what} does not verify: {exc.message}") from exc


def _signed_by(repo: VerifiedRepo, did_key: str) -> bool:
    """Whether the repository's commit is signed by the ``did:key`` ``did_key``."""
    try:
        verify_commit(repo.commit, parse_did_key(did_key))
    except AtprotoError:
        return False
    return True


def _list_blobs(x: _Xrpc, did: str) -> list[str]:
    out: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"did": did, "limit": 1000}
        if cursor:
            params["cursor"] = cursor
        page = x.get("com.atproto.sync.listBlobs", **params).json()
        out.extend(page.get("cids", []))
        cursor = page.get("cursor")
        if not cursor or not page.get("cids"):
            return out


def _did_data(http: httpx.Client, directory: str, did: str) -> dict[str, Any]:
    resp = http.get(f"{directory}/{did}/data")
    if resp.status_code != 200:
        raise MigrationError(f"directory has no data for {did} ({resp.status_code})")
    data: dict[str, Any] = resp.json()
    return data
