"""A member's own keys among their DID's rotation keys, changed through their host's
standard identity calls while the host is alive.

Both changes take the same steps: log in (``createSession`` at ``pds_url``: the host,
or an entryway, whose answer's DID document names the host to continue at),
``requestPlcOperationSignature`` (the host sends a token out of band; ``plc_token``
returns it), ``signPlcOperation`` with the new rotation keys, ``submitPlcOperation``,
and a check that the directory lists exactly those keys. The host signs the operation
with its own rotation key, so neither change needs the member's key file: only the
did:key it names.

- :func:`add_recovery_key` lists a key first, above every other (the DAO agent's
  included): from then on the member's key can undo, within PLC's 72-hour recovery
  window, any operation a lower key signs.
- :func:`remove_recovery_key` drops a key (the DAO agent's, to withdraw consent to
  being restored or moved by the agents); the others keep their order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from plaza.atproto.crypto import parse_did_key
from plaza.atproto.errors import AtprotoError
from plaza.atproto.plc import LegacyCreate, PlcOperation, normalize, validate_audit_log
from plaza.errors import PlazaError
from plaza.services.pds.migration import error_detail


class RotationKeysError(PlazaError):
    """A step of changing the rotation keys failed; the message names it."""

    code = "RotationKeysFailed"
    status = 502


def _call(http: httpx.Client, method: str, url: str, **kw: Any) -> dict[str, Any]:
    try:
        resp = http.request(method, url, **kw)
    except httpx.HTTPError as exc:
        raise RotationKeysError(f"{url}: {exc or type(exc).__name__}") from exc
    if resp.status_code != 200:
        raise RotationKeysError(f"{url} failed ({resp.status_code}) {error_detail(resp)}")
    if not resp.content:
        return {}
    body = resp.json()
    return body if isinstance(body, dict) else {}


def current_rotation_keys(http: httpx.Client, directory_url: str, did: str) -> list[str]:
    """The DID's rotation keys, from its audit log replayed and checked here."""
    try:
        resp = http.get(f"{directory_url.rstrip('/')}/{did}/log/audit")
    except httpx.HTTPError as exc:
        raise RotationKeysError(f"directory: {exc or type(exc).__name__}") from exc
    if resp.status_code != 200:
        raise RotationKeysError(f"the directory has no log for {did} ({resp.status_code})")
    try:
        state = validate_audit_log(did, resp.json())
    except AtprotoError as exc:
        raise RotationKeysError(f"the log of {did} does not verify: {exc.message}") from exc
    head = state.head.operation if state.head is not None else None
    if state.tombstoned or not isinstance(head, PlcOperation | LegacyCreate):
        raise RotationKeysError(f"{did} is tombstoned")
    return list(normalize(head).rotation_keys)


def _change(
    *,
    did: str,
    pds_url: str,
    password: str,
    directory_url: str,
    plc_token: Callable[[], str],
    wanted: Callable[[list[str]], list[str]],
    http: httpx.Client | None,
) -> list[str]:
    own = http is None
    client = http or httpx.Client(timeout=httpx.Timeout(60.0))
    try:
        current = current_rotation_keys(client, directory_url, did)
        rotation = wanted(current)
        if rotation == current:
            return current
        session = _call(
            client,
            "POST",
            f"{pds_url.rstrip('/')}/xrpc/com.atproto.server.createSession",
            json={"identifier": did, "password": password},
        )
        host = _host_of(session) or pds_url.rstrip("/")
        auth = {"authorization": f"Bearer {session['accessJwt']}"}
        xrpc = f"{host}/xrpc/com.atproto.identity"
        _call(client, "POST", f"{xrpc}.requestPlcOperationSignature", headers=auth)
        signed = _call(
            client,
            "POST",
            f"{xrpc}.signPlcOperation",
            headers=auth,
            json={"token": plc_token().strip(), "rotationKeys": rotation},
        )
        op = {"operation": signed.get("operation")}
        _call(client, "POST", f"{xrpc}.submitPlcOperation", headers=auth, json=op)
        after = current_rotation_keys(client, directory_url, did)
    finally:
        if own:
            client.close()
    if after != rotation:
        raise RotationKeysError(f"the directory lists {after}, not {rotation}")
    return after


def _host_of(session: dict[str, Any]) -> str | None:
    """The ``#atproto_pds`` endpoint of the session's DID document, if it has one."""
    doc = session.get("didDoc")
    services = doc.get("service", []) if isinstance(doc, dict) else []
    for service in services if isinstance(services, list) else []:
        if isinstance(service, dict) and str(service.get("id", "")).endswith("#atproto_pds"):
            endpoint = service.get("serviceEndpoint")
            if isinstance(endpoint, str) and endpoint:
                return endpoint.rstrip("/")
    return None


def add_recovery_key(
    *,
    did: str,
    pds_url: str,
    key_did: str,
    password: str,
    directory_url: str,
    plc_token: Callable[[], str],
    http: httpx.Client | None = None,
) -> list[str]:
    """List ``key_did`` first among ``did``'s rotation keys (the others keep their
    order); a key already first changes nothing. Returns the rotation keys the
    directory lists afterwards. Raises :class:`RotationKeysError`."""
    try:
        parse_did_key(key_did)
    except AtprotoError as exc:
        raise RotationKeysError(f"not a did:key: {exc.message}") from exc
    return _change(
        did=did,
        pds_url=pds_url,
        password=password,
        directory_url=directory_url,
        plc_token=plc_token,
        wanted=lambda keys: [key_did, *(k for k in keys if k != key_did)],
        http=http,
    )


def remove_recovery_key(
    *,
    did: str,
    pds_url: str,
    key_did: str,
    password: str,
    directory_url: str,
    plc_token: Callable[[], str],
    http: httpx.Client | None = None,
) -> list[str]:
    """Drop ``key_did`` from ``did``'s rotation keys (the others keep their order); a
    key not listed changes nothing, and the last key is never dropped. Returns the
    rotation keys the directory lists afterwards. Raises :class:`RotationKeysError`."""

    def without(keys: list[str]) -> list[str]:
        rest = [k for k in keys if k != key_did]
        if not rest:
            raise RotationKeysError("that is the DID's only rotation key; it must keep one")
        return rest

    return _change(
        did=did,
        pds_url=pds_url,
        password=password,
        directory_url=directory_url,
        plc_token=plc_token,
        wanted=without,
        http=http,
    )
