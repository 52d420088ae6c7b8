"""Account recovery: leave a dead host with a rotation key and an archive's copy.

This is the member's side of a move that needs nothing from the old host — not a
single call goes to it. What it needs instead: a secp256k1 or P-256 rotation key the
DID lists (the member's own ``recoveryKey``, or the DAO agent's migration key for a
member who listed it), an archive that kept a verified copy of the repository and its
blobs (``com.atproto.sync.getRepo``, ``getLatestCommit``, ``listBlobs``, ``getBlob``),
and a new host that reserves signing keys (``com.atproto.server.reserveSigningKey``).
Steps, in order:

 1. read the DID's audit log from the directory and replay it (every operation's
    signature and place checked); the rotation key must be listed, the handle is the
    document's;
 2. archive: ``getLatestCommit``, ``getRepo`` — verified in full (blocks, MST, records)
    against the signing key the DID named before the move — and ``listBlobs``;
 3. new host: ``describeServer``, ``reserveSigningKey {did}``;
 4. a PLC operation signed with the rotation key: the new host as ``#atproto_pds``, its
    reserved key as ``#atproto``; rotation keys are the current ones in order, less the
    dead host's own (the key a host added when the DID came to it: the genesis signer,
    or the keys the operation naming it added);
 5. ``createAccount`` on the new host for the DID, with the new password and that
    operation as ``plcOp``: the new host checks that it names itself and the key it
    reserved, submits it, and creates the account (deactivated) with the reserved key;
 6. the new host's rotation key (``getRecommendedDidCredentials``, now that there is a
    session) appended to the DID's rotation keys by a second operation signed with the
    rotation key — after the member's, so the member's keys keep priority;
 7. ``importRepo`` of the archive's CAR (the host re-signs the head with the account's
    key: same MST root, same records) and every blob ``getBlob`` → ``uploadBlob``, then
    ``listMissingBlobs`` must be empty;
 8. ``activateAccount``;
 9. verify: the directory names the new host and its key, the rotation key is still
    listed, the new host's repository verifies against the directory's key with the same
    MST root and the same record CIDs as the archive's, every blob is there, and the
    account is active.

Every step is checked; a failure raises :class:`RecoveryError` naming the step and what
state is left (read back from the directory and the new host). A re-run resumes: a DID
already naming the new host and its reserved key skips the operation, an existing
account is logged in to with the password, an account already active is not imported
over (its member may have written since), and uploads are idempotent.

The step before, while the host is alive, is listing a member's own key first among
the DID's rotation keys (:mod:`plaza.services.pds.rotation_keys`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from plaza.atproto.commit import verify_commit
from plaza.atproto.crypto import PrivateKey, parse_did_key
from plaza.atproto.errors import AtprotoError
from plaza.atproto.plc import (
    ATPROTO_KEY,
    ATPROTO_PDS,
    PlcOperation,
    PlcState,
    create_update,
    normalize,
    validate_audit_log,
    verify_operation_signature,
)
from plaza.atproto.repo_verify import VerifiedRepo, import_car
from plaza.errors import PlazaError
from plaza.services.pds.migration import error_detail

STEPS = (
    "read the identity",
    "fetch the repository from the archive",
    "reserve a signing key on the new host",
    "sign the PLC operation",
    "create the account on the new host",
    "add the new host's rotation key",
    "copy the repository and blobs",
    "activate on the new host",
    "verify",
)

Progress = Callable[[int, str, str], None]  # (step index, step name, detail)

CAR = "application/vnd.ipld.car"


class RecoveryError(PlazaError):
    """A step of the recovery failed; the message names the step, the cause and the
    state left behind."""

    code = "RecoveryFailed"
    status = 502


@dataclass
class RecoveryReport:
    did: str
    handle: str
    archive_url: str
    new_url: str
    signing_key: str = ""
    records_root: str = ""
    rev: str = ""
    records: int = 0
    blobs: int = 0
    repo_bytes: int = 0
    resumed: list[str] = field(default_factory=list)  # steps found already done
    checks: dict[str, bool] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(self.checks.values())


class _StepFailed(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class _Client:
    """XRPC calls to one service; any answer but 200 is a :class:`_StepFailed`."""

    def __init__(self, base: str, http: httpx.Client, what: str) -> None:
        self.base = base.rstrip("/")
        self.http = http
        self.what = what
        self.token: str | None = None

    def _send(self, method: str, nsid: str, **kw: Any) -> httpx.Response:
        headers = dict(kw.pop("headers", {}))
        if self.token:
            headers["authorization"] = f"Bearer {self.token}"
        try:
            resp = self.http.request(method, f"{self.base}/xrpc/{nsid}", headers=headers, **kw)
        except httpx.HTTPError as exc:
            raise _StepFailed(f"{self.what} {nsid}: {exc or type(exc).__name__}") from exc
        if resp.status_code != 200:
            raise _StepFailed(
                f"{self.what} {nsid} failed ({resp.status_code}) {error_detail(resp)}"
            )
        return resp

    def get(self, nsid: str, **params: Any) -> httpx.Response:
        return self._send("GET", nsid, params=params)

    def post(self, nsid: str, body: Any = None) -> httpx.Response:
        return self._send("POST", nsid, json=body)

    def upload(self, nsid: str, content: bytes, content_type: str) -> httpx.Response:
        return self._send("POST", nsid, content=content, headers={"content-type": content_type})

    def json(self, method: str, nsid: str, **kw: Any) -> dict[str, Any]:
        try:
            body = self._send(method, nsid, **kw).json()
        except ValueError as exc:
            raise _StepFailed(f"{self.what} {nsid} answered with no JSON") from exc
        if not isinstance(body, dict):
            raise _StepFailed(f"{self.what} {nsid} answered with no JSON object")
        return body


def recover_account(
    *,
    did: str,
    rotation_key: PrivateKey,
    archive_url: str,
    new_url: str,
    password: str,
    directory_url: str,
    handle: str | None = None,
    email: str | None = None,
    progress: Progress | None = None,
    http: httpx.Client | None = None,
) -> RecoveryReport:
    """Move ``did`` to ``new_url`` from ``archive_url``'s copy, authorized by
    ``rotation_key`` (see the module docstring). The account's password there is
    ``password``; ``handle`` defaults to the DID document's. Raises
    :class:`RecoveryError` when a step fails; the report's ``checks`` say what the
    final verification found."""
    own = http is None
    client = http or httpx.Client(timeout=httpx.Timeout(60.0))
    run = _Recovery(
        did=did,
        key=rotation_key,
        archive=_Client(archive_url, client, "archive"),
        new=_Client(new_url, client, "new host"),
        http=client,
        directory=directory_url.rstrip("/"),
        progress=progress or (lambda i, name, detail: None),
    )
    try:
        return run.run(password=password, handle=handle, email=email)
    finally:
        if own:
            client.close()


class _Recovery:
    """One run of :func:`recover_account`: the steps, and what each left behind."""

    def __init__(
        self,
        *,
        did: str,
        key: PrivateKey,
        archive: _Client,
        new: _Client,
        http: httpx.Client,
        directory: str,
        progress: Progress,
    ) -> None:
        self.did = did
        self.key = key
        self.archive = archive
        self.new = new
        self.http = http
        self.directory = directory
        self.progress = progress
        self.step = 0

    def _at(self, step: int, detail: str) -> None:
        self.step = step
        self.progress(step, STEPS[step], detail)

    def run(self, *, password: str, handle: str | None, email: str | None) -> RecoveryReport:
        try:
            return self._run(password=password, handle=handle, email=email)
        except (_StepFailed, AtprotoError) as exc:
            raise RecoveryError(
                f"step {self.step + 1} ({STEPS[self.step]}) failed: {exc.message}. {self._state()}"
            ) from exc

    # -- the steps -------------------------------------------------------------------
    def _run(self, *, password: str, handle: str | None, email: str | None) -> RecoveryReport:
        did, new = self.did, self.new
        self._at(0, f"{self.directory}/{did}/log/audit")
        state = self._audit()
        head = state.head
        assert head is not None
        current = normalize(_operation(head.operation))
        if self.key.did_key() not in current.rotation_keys:
            raise _StepFailed(f"the key {self.key.did_key()} is not among the DID's rotation keys")
        handle = handle or _handle_of(current)
        if not handle:
            raise _StepFailed("the DID document names no handle; give one")
        report = RecoveryReport(did, handle, self.archive.base, new.base)

        self._at(1, f"{self.archive.base}: getLatestCommit, getRepo, listBlobs")
        latest = self.archive.json("GET", "com.atproto.sync.getLatestCommit", params={"did": did})
        car = self.archive.get("com.atproto.sync.getRepo", did=did).content
        report.repo_bytes = len(car)
        source_key = _key_before(state, new.base)
        archived = _verified(car, did, source_key, "the archive's copy")
        if str(archived.commit_cid) != latest.get("cid") or archived.rev != latest.get("rev"):
            raise _StepFailed("the archive's getRepo is not its getLatestCommit")
        blobs = _list_blobs(self.archive, did)
        report.records, report.blobs = len(archived.records), len(blobs)

        self._at(2, f"{new.base}: reserveSigningKey")
        desc = new.json("GET", "com.atproto.server.describeServer")
        if desc.get("inviteCodeRequired"):
            raise _StepFailed("the new host requires an invite code")
        if _names(current, new.base, None) and self._hosted():
            # A run that got this far before: the account holds the key the DID names.
            reserved = current.verification_methods.get(ATPROTO_KEY, "")
            report.resumed.append(STEPS[2])
        else:
            answer = new.json("POST", "com.atproto.server.reserveSigningKey", json={"did": did})
            reserved = str(answer.get("signingKey", ""))
        parse_did_key(reserved)
        report.signing_key = reserved

        self._at(3, f"#atproto_pds {new.base}, #atproto {reserved}")
        plc_op: PlcOperation | None = None
        if _names(current, new.base, reserved):
            report.resumed.append(STEPS[3])
        else:
            old_pds = current.services.get(ATPROTO_PDS)
            dead = _host_keys(state, old_pds.endpoint if old_pds else "") - {self.key.did_key()}
            rotation = [k for k in current.rotation_keys if k not in dead]
            plc_op = create_update(
                _operation(head.operation),
                self.key,
                rotation_keys=rotation,
                signing_key=reserved,
                pds_endpoint=new.base,
            )

        self._at(4, f"{handle} on {new.base}")
        body: dict[str, Any] = {"did": did, "handle": handle, "password": password}
        if email:
            body["email"] = email
        if plc_op is not None:
            body["plcOp"] = plc_op.to_json()
        try:
            session = new.json("POST", "com.atproto.server.createAccount", json=body)
        except _StepFailed as exc:
            if "already exists" not in exc.message:
                raise
            report.resumed.append(STEPS[4])
            session = new.json(
                "POST",
                "com.atproto.server.createSession",
                json={"identifier": did, "password": password},
            )
        new.token = str(session["accessJwt"])

        self._at(5, "getRecommendedDidCredentials")
        recommended = new.json("GET", "com.atproto.identity.getRecommendedDidCredentials")
        host_keys = [str(k) for k in recommended.get("rotationKeys", [])]
        state = self._audit()
        assert state.head is not None
        now = normalize(_operation(state.head.operation))
        if not _names(now, new.base, reserved):
            raise _StepFailed("the directory does not name the new host and its reserved key")
        missing = [k for k in host_keys if k not in now.rotation_keys]
        if missing:
            self._submit(
                create_update(
                    _operation(state.head.operation),
                    self.key,
                    rotation_keys=[*now.rotation_keys, *missing],
                )
            )
        else:
            report.resumed.append(STEPS[5])

        self._at(6, "importRepo, uploadBlob")
        status = new.json("GET", "com.atproto.sync.getRepoStatus", params={"did": did})
        if status.get("active"):
            report.resumed.append(STEPS[6])
        else:
            new.upload("com.atproto.repo.importRepo", car, CAR)
        for i, cid in enumerate(blobs, 1):
            resp = self.archive.get("com.atproto.sync.getBlob", did=did, cid=cid)
            mime = resp.headers.get("content-type", "application/octet-stream")
            new.upload("com.atproto.repo.uploadBlob", resp.content, mime)
            self._at(6, f"{i}/{len(blobs)} blobs")
        left = new.json("GET", "com.atproto.repo.listMissingBlobs", params={"limit": 1000})
        if left.get("blobs"):
            raise _StepFailed(f"the new host still misses {len(left['blobs'])} blobs")

        self._at(7, "activateAccount")
        new.post("com.atproto.server.activateAccount")

        self._at(8, "directory, repository, blobs, status")
        self._verify(report, archived, blobs, host_keys)
        return report

    def _verify(
        self, report: RecoveryReport, archived: VerifiedRepo, blobs: list[str], host_keys: list[str]
    ) -> None:
        did, new = self.did, self.new
        state = self._audit()
        assert state.head is not None
        now = normalize(_operation(state.head.operation))
        moved = _verified(
            new.get("com.atproto.sync.getRepo", did=did).content,
            did,
            report.signing_key,
            "the new host's repository",
        )
        report.records_root, report.rev = str(moved.data), moved.rev or ""
        status = new.json("GET", "com.atproto.sync.getRepoStatus", params={"did": did})
        report.checks = {
            "directory names the new host": _names(now, new.base, None),
            "directory has the new host's reserved key": now.verification_methods.get(ATPROTO_KEY)
            == report.signing_key,
            "rotation key still listed": self.key.did_key() in now.rotation_keys,
            "new host's rotation key listed": all(k in now.rotation_keys for k in host_keys),
            "repository signed with the directory's key": _signed_by(moved, report.signing_key),
            "same records (MST root)": moved.data == archived.data,
            "same record CIDs": dict(moved.records) == dict(archived.records),
            "same blobs": sorted(_list_blobs(new, did)) == sorted(blobs),
            "active on the new host": bool(status.get("active")),
        }

    # -- the directory ---------------------------------------------------------------
    def _audit(self) -> PlcState:
        return _read_log(self.http, self.directory, self.did)

    def _submit(self, op: PlcOperation) -> None:
        try:
            resp = self.http.post(f"{self.directory}/{self.did}", json=op.to_json())
        except httpx.HTTPError as exc:
            raise _StepFailed(f"directory: {exc or type(exc).__name__}") from exc
        if resp.status_code != 200:
            raise _StepFailed(f"directory refused the operation: {error_detail(resp)}")

    def _hosted(self) -> bool:
        """Whether the new host has an account for the DID (active or not)."""
        try:
            self.new.get("com.atproto.sync.getRepoStatus", did=self.did)
        except _StepFailed:
            return False
        return True

    def _state(self) -> str:
        """What the failed run left, read back (best effort) from the directory and host."""
        parts: list[str] = []
        moved = hosted = False
        try:
            state = self._audit()
            assert state.head is not None
            moved = _names(normalize(_operation(state.head.operation)), self.new.base, None)
            parts.append(
                "The DID already names the new host"
                if moved
                else "The DID is unchanged (it does not name the new host)"
            )
        except (_StepFailed, AtprotoError):
            parts.append("The directory could not be read back")
        try:
            status = self.new.json(
                "GET", "com.atproto.sync.getRepoStatus", params={"did": self.did}
            )
            hosted = True
            active = "active" if status.get("active") else "not active yet"
            parts.append(f"the new host has the account ({active})")
        except _StepFailed:
            parts.append("the new host has no account for it")
        tail = "re-run to resume" if moved or hosted else "nothing was changed"
        return "; ".join(parts) + f"; {tail}."


def _read_log(http: httpx.Client, directory: str, did: str) -> PlcState:
    """The DID's audit log, replayed and checked here (not taken on trust)."""
    try:
        resp = http.get(f"{directory}/{did}/log/audit")
    except httpx.HTTPError as exc:
        raise _StepFailed(f"directory: {exc or type(exc).__name__}") from exc
    if resp.status_code != 200:
        raise _StepFailed(f"directory has no log for {did} ({resp.status_code})")
    state = validate_audit_log(did, resp.json())
    if state.tombstoned or state.head is None:
        raise _StepFailed(f"{did} is tombstoned")
    return state


def _rotation_keys(state: PlcState) -> list[str]:
    assert state.head is not None
    return list(normalize(_operation(state.head.operation)).rotation_keys)


def _operation(op: Any) -> PlcOperation:
    if not isinstance(op, PlcOperation):
        return normalize(op)
    return op


def _handle_of(op: PlcOperation) -> str:
    return next((a[len("at://") :] for a in op.also_known_as if a.startswith("at://")), "")


def _names(op: PlcOperation, url: str, key: str | None) -> bool:
    """Whether ``op`` names ``url`` as ``#atproto_pds`` (and ``key`` as ``#atproto``)."""
    svc = op.services.get(ATPROTO_PDS)
    if svc is None or svc.endpoint.rstrip("/") != url.rstrip("/"):
        return False
    return key is None or op.verification_methods.get(ATPROTO_KEY) == key


def _key_before(state: PlcState, new_url: str) -> str:
    """The ``#atproto`` key of the newest active operation not naming ``new_url``: the key
    the old host signed the repository with."""
    for entry in reversed(state.active):
        op = _operation(entry.operation)
        if not _names(op, new_url, None):
            key = op.verification_methods.get(ATPROTO_KEY)
            if key:
                return key
    raise _StepFailed("the DID never named a signing key before the new host")


def _host_keys(state: PlcState, endpoint: str) -> set[str]:
    """The rotation keys the host at ``endpoint`` brought: the genesis signer when the DID
    was created there, or the keys added by the operation that moved the DID there."""
    ops = [_operation(e.operation) for e in state.active]
    for i in range(len(ops) - 1, -1, -1):
        if not _names(ops[i], endpoint, None):
            continue
        if i > 0 and _names(ops[i - 1], endpoint, None):
            continue  # not the operation that moved the DID there
        if i == 0:
            try:
                idx = verify_operation_signature(ops[0], ops[0].rotation_keys)
            except AtprotoError:
                return set()
            return {ops[0].rotation_keys[idx]}
        return set(ops[i].rotation_keys) - set(ops[i - 1].rotation_keys)
    return set()


def _verified(car: bytes, did: str, key: str, what: str) -> VerifiedRepo:
    try:
        return import_car(car, did=did, key=parse_did_key(key))
    except AtprotoError as exc:
        raise _StepFailed(f"{what} does not verify: {exc.message}") from exc


def _signed_by(repo: VerifiedRepo, did_key: str) -> bool:
    try:
        verify_commit(repo.commit, parse_did_key(did_key))
    except AtprotoError:
        return False
    return True


def _list_blobs(x: _Client, did: str) -> list[str]:
    out: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"did": did, "limit": 1000}
        if cursor:
            params["cursor"] = cursor
        page = x.json("GET", "com.atproto.sync.listBlobs", params=params)
        out.extend(str(c) for c in page.get("cids", []))
        cursor = page.get("cursor")
        if not cursor or not page.get("cids"):
            return out
