"""The agent's hands on live hosting services: list accounts, create them, move them.

Everything here is a client of public AT Protocol interfaces — the directory's PLC API
and the PDSs' XRPC methods — so it needs no cooperation from a host beyond what any PDS
must offer, and none at all from the host an account leaves.

**Moving an account with the DAO agent's migration key.** A member may opt in by
listing the agent's migration key among their DID's rotation keys (DESIGN: after their
own recovery key and their host's). That key cannot log in anywhere, but it can sign
PLC operations, and that is enough:

1. export the repository from the old host (``sync.getRepo`` and ``sync.listBlobs`` /
   ``getBlob`` are public);
2. PLC operation 1, signed by the migration key: the repository key becomes a fresh
   key the agent holds for the move;
3. re-sign the exported commit with that key (same MST root, same records) and mint a
   service token with it for the new host's ``createAccount`` — the new host checks both
   against the DID document, exactly as for a member's own migration;
4. ``createAccount`` (the account starts deactivated), ``importRepo``, upload every blob;
5. PLC operation 2, signed by the migration key: the new host's recommended repository
   key and endpoint, the new host's rotation key added, the old host's removed (the one
   that signed the DID's genesis when the account was created there); the member's own
   keys keep their place and priority;
6. ``activateAccount`` on the new host; then verify that the directory names it and its
   key, and that the new host serves a repository with the **same MST root and the same
   records** as the export.

What the agent cannot carry: the password (the new account gets a random one; the
member sets their own with ``requestPasswordReset`` or their recovery key), the email
address and the preferences (both private to the old host), and the old host's copy,
which it cannot deactivate without the member's session — relays and app views follow
the DID document, which no longer names it. An account whose DID does not list the
migration key is not touched: :class:`NotOptedInError`.

**Restoring the accounts of a host that is gone** (:meth:`Hosting.restore`). The old
host cannot export anything, so the repository and blobs come from an archive
(:mod:`plaza.services.pds.recovery`, the member's own recovery flow, with the migration
key as the rotation key): the new host reserves a signing key, one PLC operation signed
by the migration key names it and that key (the dead host's rotation key dropped),
the new host creates the account, imports the archive's copy re-signed with its key,
takes every blob, and activates it; a second operation adds the new host's rotation
key. The same things are verified, and the same limits hold: a random password, no
email or preferences, and only members who listed the key.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from plaza.atproto.car import write_car
from plaza.atproto.commit import sign_commit
from plaza.atproto.crypto import PrivateKey
from plaza.atproto.errors import AtprotoError
from plaza.atproto.plc.build import create_update
from plaza.atproto.plc.operations import (
    PlcOperation,
    parse_operation,
    verify_operation_signature,
)
from plaza.atproto.repo_verify import import_car
from plaza.errors import PlazaError
from plaza.services.pds.migration import error_detail
from plaza.services.pds.recovery import RecoveryError, recover_account


class HostingError(PlazaError):
    """A hosting service or the directory refused or failed a step."""

    code = "HostingFailed"
    status = 502


class NotOptedInError(HostingError):
    """The account's DID does not list the agent's migration key: only its member can
    move it."""

    code = "NotOptedIn"
    status = 409


@dataclass
class Moved:
    """One account moved, and what was verified."""

    did: str
    handle: str
    root: str
    records: int
    blobs: int
    checks: dict[str, bool] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(self.checks.values())


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def service_token(key: PrivateKey, *, iss: str, aud: str, lxm: str, ttl_s: int = 300) -> str:
    """An inter-service JWT signed with ``key`` (the account's repository key)."""
    now = int(time.time())
    head = _b64url(json.dumps({"typ": "JWT", "alg": key.alg}, separators=(",", ":")).encode())
    body = {"iat": now, "iss": iss, "aud": aud, "exp": now + ttl_s, "lxm": lxm}
    body["jti"] = secrets.token_hex(8)
    payload = _b64url(json.dumps(body, separators=(",", ":")).encode())
    signing_input = f"{head}.{payload}"
    return f"{signing_input}.{_b64url(key.sign(signing_input.encode()))}"


class Hosting:
    """HTTP client of the directory at ``directory`` and of any PDS."""

    def __init__(self, directory: str, http: httpx.Client | None = None) -> None:
        self.directory = directory.rstrip("/")
        self.http = http or httpx.Client(timeout=httpx.Timeout(60.0))

    # -- plumbing --------------------------------------------------------------------
    def _check(self, what: str, resp: httpx.Response) -> httpx.Response:
        if resp.status_code != 200:
            raise HostingError(f"{what} failed ({resp.status_code}) {error_detail(resp)}")
        return resp

    def _get(self, base: str, nsid: str, token: str | None = None, **params: Any) -> httpx.Response:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        try:
            resp = self.http.get(f"{base.rstrip('/')}/xrpc/{nsid}", params=params, headers=headers)
        except httpx.HTTPError as exc:
            raise HostingError(f"{nsid} on {base}: {exc}") from exc
        return self._check(f"{nsid} on {base}", resp)

    def _post(
        self,
        base: str,
        nsid: str,
        body: Any = None,
        *,
        token: str | None = None,
        content: bytes | None = None,
        content_type: str = "application/octet-stream",
    ) -> httpx.Response:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        url = f"{base.rstrip('/')}/xrpc/{nsid}"
        try:
            if content is not None:
                resp = self.http.post(
                    url, content=content, headers={**headers, "content-type": content_type}
                )
            else:
                resp = self.http.post(url, json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise HostingError(f"{nsid} on {base}: {exc}") from exc
        return self._check(f"{nsid} on {base}", resp)

    def _plc(self, did: str, path: str = "/data") -> Any:
        try:
            resp = self.http.get(f"{self.directory}/{did}{path}")
        except httpx.HTTPError as exc:
            raise HostingError(f"directory: {exc}") from exc
        return self._check(f"directory {path} of {did}", resp).json()

    def _submit(self, did: str, op: PlcOperation) -> None:
        try:
            resp = self.http.post(f"{self.directory}/{did}", json=op.to_json())
        except httpx.HTTPError as exc:
            raise HostingError(f"directory: {exc}") from exc
        self._check(f"PLC operation for {did}", resp)

    # -- reads -----------------------------------------------------------------------
    def reachable(self, pds: str) -> bool:
        try:
            return self.http.get(f"{pds.rstrip('/')}/xrpc/_health").status_code == 200
        except httpx.HTTPError:
            return False

    def accounts(self, pds: str) -> list[str]:
        """DIDs of the active accounts ``pds`` hosts (``sync.listRepos``), in its order."""
        out: list[str] = []
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 1000}
            if cursor:
                params["cursor"] = cursor
            page = self._get(pds, "com.atproto.sync.listRepos", **params).json()
            out += [r["did"] for r in page.get("repos", []) if r.get("active")]
            cursor = page.get("cursor")
            if not cursor or not page.get("repos"):
                return out

    def did_data(self, did: str) -> dict[str, Any]:
        data: dict[str, Any] = self._plc(did)
        return data

    def archived_accounts(self, archive: str, endpoint: str) -> list[str]:
        """DIDs the archive at ``archive`` holds whose DID document names ``endpoint`` as
        their host (``sync.listRepos``, then the directory for each: a linear pass)."""
        out: list[str] = []
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 1000}
            if cursor:
                params["cursor"] = cursor
            page = self._get(archive, "com.atproto.sync.listRepos", **params).json()
            for repo in page.get("repos", []):
                did = str(repo.get("did", ""))
                data = self.did_data(did)
                pds = data.get("services", {}).get("atproto_pds", {}).get("endpoint", "")
                if pds.rstrip("/") == endpoint.rstrip("/"):
                    out.append(did)
            cursor = page.get("cursor")
            if not cursor or not page.get("repos"):
                return out

    # -- writes ----------------------------------------------------------------------
    def create_account(
        self, pds: str, *, handle: str, email: str, password: str, recovery_key: str | None = None
    ) -> str:
        """A new account (and DID) on ``pds``; returns its DID. ``recovery_key`` (a
        did:key) is listed first among the DID's rotation keys."""
        body = {"handle": handle, "email": email, "password": password}
        if recovery_key is not None:
            body["recoveryKey"] = recovery_key
        did: str = self._post(pds, "com.atproto.server.createAccount", body).json()["did"]
        return did

    def move(self, did: str, old: str, new: str, key: PrivateKey) -> Moved:
        """Move ``did`` from ``old`` to ``new`` with the migration ``key`` (see the module
        docstring). Raises :class:`NotOptedInError` or :class:`HostingError`."""
        data = self.did_data(did)
        rotation = list(data.get("rotationKeys", []))
        if key.did_key() not in rotation:
            raise NotOptedInError(f"{did} does not list the agent's migration key")
        handle = next(
            (a[len("at://") :] for a in data.get("alsoKnownAs", []) if a.startswith("at://")),
            "",
        )
        try:
            return self._move(did, handle, rotation, old=old, new=new, key=key)
        except AtprotoError as exc:
            raise HostingError(f"moving {did}: {exc}") from exc

    def restore(self, did: str, archive: str, new: str, key: PrivateKey) -> Moved:
        """Move ``did`` from a host that is gone to ``new``, from ``archive``'s copy, with
        the migration ``key`` (see the module docstring). Raises
        :class:`NotOptedInError` or :class:`HostingError`."""
        if key.did_key() not in self.did_data(did).get("rotationKeys", []):
            raise NotOptedInError(f"{did} does not list the agent's migration key")
        try:
            report = recover_account(
                did=did,
                rotation_key=key,
                archive_url=archive,
                new_url=new,
                password=secrets.token_urlsafe(24),
                directory_url=self.directory,
                http=self.http,
            )
        except RecoveryError as exc:
            raise HostingError(f"restoring {did}: {exc.message}") from exc
        return Moved(
            did=did,
            handle=report.handle,
            root=report.records_root,
            records=report.records,
            blobs=report.blobs,
            checks=report.checks,
        )

    def _move(
        self, did: str, handle: str, rotation: list[str], *, old: str, new: str, key: PrivateKey
    ) -> Moved:
        car = self._get(old, "com.atproto.sync.getRepo", did=did).content
        exported = import_car(car, did=did)
        blobs = self._blobs(old, did)
        # 1. A key of the agent's own signs for the account while it moves.
        temp = PrivateKey.generate("ES256K")
        last = parse_operation(self._plc(did, "/log/last"))
        assert isinstance(last, PlcOperation)
        self._submit(did, create_update(last, key, signing_key=temp.did_key()))
        # 2. The export, re-signed by it: the same MST root and records.
        c = exported.commit
        assert c.rev is not None
        signed = sign_commit(did, c.data, c.rev, temp, prev=c.prev)
        blocks = [(cid, b) for cid, b in exported.blocks.items() if cid != exported.commit_cid]
        resigned = write_car([signed.cid], [(signed.cid, signed.bytes), *blocks])
        # 3. The account on the new host, its repository and blobs.
        service = self._get(new, "com.atproto.server.describeServer").json()["did"]
        token = service_token(temp, iss=did, aud=service, lxm="com.atproto.server.createAccount")
        password = secrets.token_urlsafe(24)
        body = {"did": did, "handle": handle, "password": password}
        session = self._post(new, "com.atproto.server.createAccount", body, token=token).json()
        access = session["accessJwt"]
        self._post(
            new,
            "com.atproto.repo.importRepo",
            token=access,
            content=resigned,
            content_type="application/vnd.ipld.car",
        )
        for cid in blobs:
            resp = self._get(old, "com.atproto.sync.getBlob", did=did, cid=cid)
            self._post(
                new,
                "com.atproto.repo.uploadBlob",
                token=access,
                content=resp.content,
                content_type=resp.headers.get("content-type", "application/octet-stream"),
            )
        missing = self._get(new, "com.atproto.repo.listMissingBlobs", token=access).json()
        if missing.get("blobs"):
            raise HostingError(f"{new} still misses {len(missing['blobs'])} blobs of {did}")
        # 4. The identity: the new host's key and endpoint; the old host's rotation key out.
        rec = self._get(new, "com.atproto.identity.getRecommendedDidCredentials", token=access)
        recommended = rec.json()
        kept = [k for k in rotation if k != self._creator_key(did, old)]
        keys = kept + [k for k in recommended.get("rotationKeys", []) if k not in kept]
        now = parse_operation(self._plc(did, "/log/last"))
        assert isinstance(now, PlcOperation)
        op = create_update(
            now,
            key,
            rotation_keys=keys,
            signing_key=recommended["verificationMethods"]["atproto"],
            pds_endpoint=new,
        )
        self._submit(did, op)
        self._post(new, "com.atproto.server.activateAccount", token=access)
        # 5. Verify.
        after = self.did_data(did)
        moved = import_car(self._get(new, "com.atproto.sync.getRepo", did=did).content, did=did)
        status = self._get(new, "com.atproto.sync.getRepoStatus", did=did).json()
        endpoint = after.get("services", {}).get("atproto_pds", {}).get("endpoint", "")
        return Moved(
            did=did,
            handle=handle,
            root=str(moved.commit.data),
            records=len(moved.records),
            blobs=len(blobs),
            checks={
                "directory names the new host": endpoint.rstrip("/") == new.rstrip("/"),
                "directory has the new host's key": after.get("verificationMethods", {}).get(
                    "atproto"
                )
                == recommended["verificationMethods"]["atproto"],
                "other rotation keys kept, first, in order": after.get("rotationKeys", [])[
                    : len(kept)
                ]
                == kept,
                "same MST root": moved.commit.data == c.data,
                "same records": moved.records == exported.records,
                "same blobs": sorted(self._blobs(new, did)) == sorted(blobs),
                "active on the new host": bool(status.get("active")),
            },
        )

    def _blobs(self, pds: str, did: str) -> list[str]:
        out: list[str] = []
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"did": did, "limit": 1000}
            if cursor:
                params["cursor"] = cursor
            page = self._get(pds, "com.atproto.sync.listBlobs", **params).json()
            out.extend(page.get("cids", []))
            cursor = page.get("cursor")
            if not cursor or not page.get("cids"):
                return out

    def _creator_key(self, did: str, old: str) -> str | None:
        """The rotation key that signed the DID's genesis, if the account was created on
        ``old`` (a PDS signs the genesis of the accounts it creates with its own key)."""
        log = self._plc(did, "/log")
        genesis = parse_operation(log[0])
        if not isinstance(genesis, PlcOperation):
            return None
        pds = genesis.services.get("atproto_pds")
        if pds is None or pds.endpoint.rstrip("/") != old.rstrip("/"):
            return None
        try:
            return genesis.rotation_keys[verify_operation_signature(genesis, genesis.rotation_keys)]
        except AtprotoError:
            return None
