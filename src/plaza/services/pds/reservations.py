"""Signing keys reserved for accounts that do not exist here yet (``reserveSigningKey``).

An account can arrive at this host without its old host's help: the holder of one of
its DID's rotation keys asks this host to reserve a signing key for the DID, names this
host and that key in a PLC operation, and then creates the account here
(:meth:`plaza.services.pds.accounts.AccountManager.create`), which takes the reserved key
as the account's repository key. The reservation is the host's half of that handshake;
the PLC operation, which only a rotation key can sign, is the member's.

Reservations are kept in the store (they must survive a restart between the PLC
operation and ``createAccount``) and expire after ``reserved_key_ttl_s``. They are
bounded: one live reservation per DID (asking again returns the same key), DIDs must
be registered in the directory, reservations for no DID are capped at
:data:`MAX_UNBOUND`, and the handler rate-limits callers per address.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from plaza.atproto.crypto import ES256K, PrivateKey
from plaza.atproto.errors import AtprotoError
from plaza.atproto.plc import PlcOperation, PlcTombstone, parse_operation
from plaza.services.pds.errors import AuthRequiredError, InvalidRequestError, RateLimitedError
from plaza.services.pds.identity import DirectoryClient
from plaza.services.pds.store import PdsStore

MAX_UNBOUND = 1000
"""Live reservations for no particular DID, at most."""


class KeyReservations:
    """Reserve, look up and release signing keys kept for accounts to come."""

    def __init__(
        self,
        *,
        store: PdsStore,
        identity: DirectoryClient,
        ttl_s: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.identity = identity
        self.ttl_s = ttl_s
        self.clock = clock

    async def reserve(self, did: str | None) -> str:
        """The ``did:key`` of a signing key reserved for ``did`` (or for no DID).

        A DID must be registered in the directory (``InvalidRequest`` otherwise) and
        keeps its live reservation: asking again returns the same key. Expired
        reservations are dropped first."""
        now = int(self.clock())
        if did is not None:
            await self.identity.data(did, refresh=True)
        with self.store.transaction():
            self.store.prune_reserved_keys(now)
            if did is not None:
                existing = self.store.reserved_key_for(did, now)
                if existing is not None:
                    return existing
            elif self.store.count_unbound_reserved_keys(now) >= MAX_UNBOUND:
                raise RateLimitedError(
                    "Too many signing keys are reserved for no DID; reserve one for a DID"
                )
            key = PrivateKey.generate(ES256K)
            self.store.add_reserved_key(key.did_key(), did, key.to_bytes(), now, now + self.ttl_s)
        return key.did_key()

    async def admit(self, did: str, public_url: str, plc_op: Any | None) -> PrivateKey:
        """The reserved key an account for the existing ``did`` may be created with,
        without a service token from the DID's old host.

        With ``plc_op`` (createAccount's ``plcOp``), the operation must name this host
        (``public_url``) and a key reserved for ``did``; it is submitted to the
        directory first, which checks its signature by a rotation key and its place in
        the log. Sending it here rather than submitting it beforehand means nobody can
        see the DID name this host before the account exists. Then, and always, the
        directory's current document must name this host as ``#atproto_pds`` and, as
        ``#atproto``, a key reserved here for ``did``: only a rotation-key holder could
        have made it say so. :class:`AuthRequiredError` otherwise; nothing changes.
        """
        if plc_op is not None:
            op = self._operation(plc_op)
            if (
                op.services.get("atproto_pds") is None
                or op.services["atproto_pds"].endpoint.rstrip("/") != public_url.rstrip("/")
                or self.find(did, op.verification_methods.get("atproto", "")) is None
            ):
                raise InvalidRequestError(
                    "plcOp must name this host as atproto_pds and a signing key it reserved "
                    "for the DID (reserveSigningKey)"
                )  # fmt: skip
            await self.identity.submit(did, op)
        data = await self.identity.data(did, refresh=True)
        key = self.find(did, data.signing_key or "")
        if (data.pds_endpoint or "").rstrip("/") != public_url.rstrip("/") or key is None:
            raise AuthRequiredError(
                "Creating an account for an existing DID needs a service token from it, or a "
                "DID document that names this host and a signing key it reserved for the DID"
            )
        return key

    @staticmethod
    def _operation(value: Any) -> PlcOperation:
        try:
            op = parse_operation(value)
        except AtprotoError as exc:
            raise InvalidRequestError(f"plcOp is not a PLC operation: {exc.message}") from exc
        if isinstance(op, PlcTombstone) or not isinstance(op, PlcOperation) or op.prev is None:
            raise InvalidRequestError("plcOp must be a signed update (plc_operation with prev)")
        return op

    def find(self, did: str, key_did: str) -> PrivateKey | None:
        """The live reserved key ``key_did``, if it was reserved for ``did`` or no DID."""
        secret = self.store.reserved_key(key_did, did, int(self.clock()))
        return None if secret is None else PrivateKey.from_bytes(ES256K, secret)

    def release(self, did: str, key_did: str) -> None:
        """Forget ``did``'s reservations and ``key_did`` (inside the caller's transaction)."""
        self.store.drop_reserved_keys(did, key_did)
