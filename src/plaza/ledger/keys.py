"""Which keys may sign for which author: the key registry the ledger verifies against.

A ``did:key`` DID names its own key, so it needs no registry entry. Any other DID
(``did:plc``, ``did:web``) signs with keys that something above the ledger has bound to
it; the DAO's replayed state is such a registry, where a did:plc is bound to a key only
with the DID's own proof that it lists the key (:mod:`plaza.ledger.identity`). The
ledger itself only asks :meth:`KeyRegistry.keys_for`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol, runtime_checkable

from plaza.atproto.crypto import DID_KEY_PREFIX, PublicKey, parse_did_key
from plaza.atproto.errors import CryptoError
from plaza.ledger.errors import EventSignatureError, UnknownAuthorError
from plaza.ledger.event import Event


@runtime_checkable
class KeyRegistry(Protocol):
    """Answers which public keys may currently sign for a DID."""

    def keys_for(self, did: str) -> Sequence[PublicKey]:
        """The keys of ``did`` (empty if none is known)."""
        ...


def did_key_keys(did: str) -> list[PublicKey]:
    """The key a ``did:key`` DID names, or nothing for any other DID."""
    if not did.startswith(DID_KEY_PREFIX):
        return []
    try:
        return [parse_did_key(did)]
    except CryptoError:
        return []


class DidKeyRegistry:
    """Knows only self-certifying ``did:key`` authors."""

    def keys_for(self, did: str) -> Sequence[PublicKey]:
        return did_key_keys(did)


class StaticKeyRegistry:
    """A mutable map from DID to keys, falling back to ``did:key`` self-certification."""

    def __init__(self, keys: Mapping[str, Iterable[PublicKey | str]] | None = None) -> None:
        self._keys: dict[str, list[PublicKey]] = {}
        for did, ks in (keys or {}).items():
            for k in ks:
                self.bind(did, k)

    def bind(self, did: str, key: PublicKey | str) -> None:
        """Let ``key`` (a :class:`PublicKey` or a ``did:key`` string) sign for ``did``."""
        pk = parse_did_key(key) if isinstance(key, str) else key
        bucket = self._keys.setdefault(did, [])
        if pk not in bucket:
            bucket.append(pk)

    def keys_for(self, did: str) -> Sequence[PublicKey]:
        return self._keys.get(did) or did_key_keys(did)


def verify_event_signature(event: Event, registry: KeyRegistry) -> PublicKey:
    """Check ``event``'s signature against its author's keys; return the key that
    verified. Raises :class:`UnknownAuthorError` or :class:`EventSignatureError`."""
    keys = registry.keys_for(event.author_did)
    if not keys:
        raise UnknownAuthorError(f"no signing key is known for author {event.author_did}")
    data = event.signing_bytes()
    for key in keys:
        if key.verify(data, event.signature):
            return key
    raise EventSignatureError(
        f"signature of event {event.seq} ({event.type}) does not verify "
        f"against the keys of {event.author_did}"
    )
