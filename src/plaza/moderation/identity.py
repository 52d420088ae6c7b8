"""The labeler's own ``did:plc``: its keys, and its entry in the directory.

:func:`load_keys` reads the label key and the rotation key from the data directory,
making them (owner-only files) on first use; :func:`read_identity` reads the DID and the
label key a labeler made, for its workers, and makes nothing. :func:`plc_operation` is
the DID's state: the label key as ``#atproto_label``, the service endpoint as ``#atproto_labeler``
(type ``AtprotoLabeler``). :func:`register` makes the directory hold that state: it
submits the genesis operation for a new DID, and an update signed with the rotation key
(``prev`` the last operation's CID) when the endpoint or key differs from the
document's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from plaza.atproto.crypto import PrivateKey, parse_private_key
from plaza.atproto.plc.operations import (
    PlcOperation,
    Service,
    did_for_genesis,
    operation_cid,
    parse_operation,
    sign_operation,
)
from plaza.db import private_dirs, private_file
from plaza.errors import PlazaError, StorageError

LABEL_KEY_FILE = "label.key"
ROTATION_KEY_FILE = "rotation.key"
GENESIS_FILE = "genesis.json"


class RegistrationError(PlazaError):
    code = "LabelerRegistrationFailed"
    status = 502


@dataclass(frozen=True)
class LabelerKeys:
    label: PrivateKey
    rotation: PrivateKey


def _key(path: Path) -> PrivateKey:
    if path.exists() and path.read_text().strip():
        return parse_private_key(path.read_text())
    key = PrivateKey.generate()
    private_file(path)
    path.write_text(key.to_bytes().hex() + "\n")
    return key


def load_keys(data_dir: Path) -> LabelerKeys:
    try:
        private_dirs(data_dir)
        return LabelerKeys(_key(data_dir / LABEL_KEY_FILE), _key(data_dir / ROTATION_KEY_FILE))
    except OSError as exc:
        raise StorageError(f"cannot read or write the labeler's keys: {exc}") from exc


def plc_operation(keys: LabelerKeys, endpoint: str, handle: str, prev: str | None) -> PlcOperation:
    return sign_operation(
        PlcOperation(
            rotation_keys=(keys.rotation.did_key(),),
            verification_methods={"atproto_label": keys.label.did_key()},
            also_known_as=(f"at://{handle}",),
            services={"atproto_labeler": Service("AtprotoLabeler", endpoint)},
            prev=prev,
        ),
        keys.rotation,
    )


def labeler_did(data_dir: Path, keys: LabelerKeys, endpoint: str, handle: str) -> str:
    """The labeler's DID: fixed by its first genesis operation, kept in the data dir."""
    path = data_dir / GENESIS_FILE
    if path.exists():
        return did_for_genesis(parse_operation(json.loads(path.read_text())))
    genesis = plc_operation(keys, endpoint, handle, None)
    private_file(path)
    path.write_text(json.dumps(genesis.to_json()))
    return did_for_genesis(genesis)


def read_identity(data_dir: Path) -> tuple[str, PrivateKey]:
    """The DID and label key of the labeler whose data dir is ``data_dir`` (made by
    ``plaza serve labeler``); :class:`StorageError` if it has none yet."""
    try:
        genesis = json.loads((data_dir / GENESIS_FILE).read_text())
        key = parse_private_key((data_dir / LABEL_KEY_FILE).read_text())
        return did_for_genesis(parse_operation(genesis)), key
    except (OSError, ValueError, PlazaError) as exc:
        raise StorageError(
            f"no labeler identity in {data_dir} (start plaza serve labeler there first): {exc}"
        ) from exc


async def register(
    http: httpx.AsyncClient,
    *,
    directory: str,
    data_dir: Path,
    keys: LabelerKeys,
    endpoint: str,
    handle: str,
) -> str:
    """Make the directory's document of the labeler's DID name ``endpoint`` and the label
    key (see the module docstring); the DID."""
    did = labeler_did(data_dir, keys, endpoint, handle)
    base = directory.rstrip("/")
    try:
        current = await http.get(f"{base}/{did}/data")
        if current.status_code == 404:
            genesis = json.loads((data_dir / GENESIS_FILE).read_text())
            r = await http.post(f"{base}/{did}", json=genesis)
            if r.status_code != 200:
                raise RegistrationError(f"directory refused the genesis: {r.text[:200]}")
            current = await http.get(f"{base}/{did}/data")
        if current.status_code != 200:
            raise RegistrationError(f"directory answered {current.status_code} for {did}")
        data: Any = current.json()
        services = data.get("services", {}) if isinstance(data, dict) else {}
        methods = data.get("verificationMethods", {}) if isinstance(data, dict) else {}
        same = (
            services.get("atproto_labeler", {}).get("endpoint") == endpoint
            and methods.get("atproto_label") == keys.label.did_key()
        )
        if not same:
            last = await http.get(f"{base}/{did}/log/last")
            prev = str(operation_cid(parse_operation(last.json())))
            update = plc_operation(keys, endpoint, handle, prev)
            r = await http.post(f"{base}/{did}", json=update.to_json())
            if r.status_code != 200:
                raise RegistrationError(f"directory refused the update: {r.text[:200]}")
    except (httpx.HTTPError, ValueError) as exc:
        raise RegistrationError(f"cannot register {did} at {directory}: {exc}") from exc
    return did
