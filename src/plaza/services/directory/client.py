"""Reading and writing a PLC directory from outside, trusting it for nothing it could forge.

A directory could lie about a DID's document, but not about its operations: each one is
signed, and the log re-derives the DID. So :func:`fetch_state` reads
``GET /{did}/log/audit`` and re-validates the whole log locally
(:func:`plaza.atproto.plc.validate_audit_log`: hashes, signatures, the 72-hour recovery
rule on the directory's timestamps) before anyone uses it. What only the directory can
tell is whether the log is *complete and current*; callers that need that (binding a key
to a DID) ask at the moment they act.

Responses are read up to :data:`MAX_RESPONSE_BYTES`; a directory that sends more, or
something that is not a valid log, is a :class:`DirectoryLookupError`.
"""

from __future__ import annotations

import json
from typing import Any, Final

import httpx

from plaza.atproto.errors import PlcError
from plaza.atproto.plc import Operation, PlcState, is_did_plc, validate_audit_log
from plaza.errors import PlazaError

MAX_RESPONSE_BYTES: Final = 4 * 1024 * 1024
TIMEOUT_S: Final = 10.0


class DirectoryLookupError(PlazaError):
    """The directory could not be reached, or what it answered does not verify."""

    code = "DidResolutionFailed"
    status = 502


def _url(directory: str, path: str) -> str:
    return f"{directory.rstrip('/')}/{path}"


def _read(response: httpx.Response, url: str) -> bytes:
    body = bytearray()
    for chunk in response.iter_bytes():
        body += chunk
        if len(body) > MAX_RESPONSE_BYTES:
            raise DirectoryLookupError(f"{url} answered more than {MAX_RESPONSE_BYTES} bytes")
    return bytes(body)


def _get_json(directory: str, path: str, *, timeout: float) -> Any:
    url = _url(directory, path)
    try:
        with httpx.stream("GET", url, timeout=timeout) as response:
            body = _read(response, url)
            status = response.status_code
    except httpx.HTTPError as exc:
        raise DirectoryLookupError(f"could not reach {url}: {exc}") from exc
    if status == 404:
        raise DirectoryLookupError(f"{url}: the directory does not know this DID")
    if status != 200:
        raise DirectoryLookupError(f"{url} answered HTTP {status}")
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise DirectoryLookupError(f"{url} did not answer JSON") from exc


def fetch_state(directory: str, did: str, *, timeout: float = TIMEOUT_S) -> PlcState:
    """``did``'s audit log from ``directory``, re-validated locally."""
    if not is_did_plc(did):
        raise DirectoryLookupError(f"not a did:plc identifier: {did[:80]!r}")
    entries = _get_json(directory, f"{did}/log/audit", timeout=timeout)
    if not isinstance(entries, list):
        raise DirectoryLookupError(f"the directory's audit log of {did} is not a list")
    try:
        return validate_audit_log(did, entries)
    except PlcError as exc:
        raise DirectoryLookupError(
            f"the directory's audit log of {did} does not verify: {exc.message}"
        ) from exc


def active_chain(directory: str, did: str, *, timeout: float = TIMEOUT_S) -> list[Operation]:
    """The operations of ``did``'s current, verified chain, genesis first."""
    return [e.operation for e in fetch_state(directory, did, timeout=timeout).active]


def current_head(directory: str, did: str, *, timeout: float = TIMEOUT_S) -> str:
    """The CID of ``did``'s current head operation, from a verified log."""
    head = fetch_state(directory, did, timeout=timeout).head
    if head is None:  # a validated log is never empty
        raise DirectoryLookupError(f"the directory has no operations of {did}")
    return head.cid


def submit(directory: str, did: str, op: Operation, *, timeout: float = TIMEOUT_S) -> None:
    """``POST /{did}``: submit a signed operation; raise with the directory's reason."""
    url = _url(directory, did)
    try:
        response = httpx.post(url, json=op.to_json(), timeout=timeout)
    except httpx.HTTPError as exc:
        raise DirectoryLookupError(f"could not reach {url}: {exc}") from exc
    if response.status_code != 200:
        try:
            reason = str(response.json().get("message", ""))[:300]
        except (ValueError, AttributeError):
            reason = ""
        raise DirectoryLookupError(
            f"{url} refused the operation (HTTP {response.status_code}) {reason}".strip()
        )
