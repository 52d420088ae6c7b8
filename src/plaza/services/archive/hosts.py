"""Where an archived DID's repository lives and which key signs it, from the directory.

Both come from the DID's current state in the PLC directory (through the PDS's
:class:`~plaza.services.pds.identity.DirectoryClient`, which caches it for a minute;
the follower forgets a DID on ``#identity`` so the next lookup is fresh). A lookup that
fails is a :class:`~plaza.services.archive.errors.FetchError`: the caller retries later;
a DID the directory does not know is an :class:`UnknownDidError`.
"""

from __future__ import annotations

from plaza.atproto.crypto import PublicKey
from plaza.errors import PlazaError
from plaza.services.archive.errors import FetchError
from plaza.services.pds.errors import InvalidRequestError
from plaza.services.pds.identity import DirectoryClient


class UnknownDidError(FetchError):
    """The directory answered: the DID is not registered (or tombstoned), or names no
    usable key. Unlike an unreachable directory, asking again will not help soon."""

    code = "UnknownDid"


async def signing_key(directory: DirectoryClient, did: str, *, refresh: bool = False) -> PublicKey:
    """The DID's current ``#atproto`` key."""
    try:
        return await directory.signing_key(did, refresh=refresh)
    except InvalidRequestError as exc:
        raise UnknownDidError(f"no signing key for {did}: {exc.message}") from exc
    except PlazaError as exc:
        raise FetchError(f"no signing key for {did}: {exc.message}") from exc


async def pds_of(directory: DirectoryClient, did: str, *, refresh: bool = False) -> str:
    """The base URL of the DID's current PDS (``#atproto_pds``), http(s) only."""
    try:
        data = await directory.data(did, refresh=refresh)
    except PlazaError as exc:
        raise FetchError(f"cannot resolve {did}: {exc.message}") from exc
    endpoint = (data.pds_endpoint or "").rstrip("/")
    if not endpoint.startswith(("http://", "https://")):
        raise FetchError(f"{did} names no usable PDS endpoint ({endpoint[:100]!r})")
    return endpoint
