"""Keys and signatures: ECDSA over P-256 (``ES256``) and secp256k1 (``ES256K``).

atproto signs the SHA-256 of the message and exchanges signatures as raw 64-byte
``r‖s`` in low-S form. Signing here always normalizes to low-S; verification rejects
high-S and DER-encoded signatures, as the interop vectors require. Public keys travel as
``did:key`` or multikey strings: multibase base58btc of a multicodec prefix (``0xe7 0x01``
for secp256k1, ``0x80 0x24`` for P-256) and the compressed point. Private keys are read
from hex or from multibase (:func:`parse_private_key`).

secp256k1 runs on libsecp256k1 (``coincurve``), about 18x faster than OpenSSL's generic
curve code for signing; P-256 runs on OpenSSL (``cryptography``). Key generation draws
from the operating system's CSPRNG; callers that need determinism build keys from secret
bytes with :meth:`PrivateKey.from_bytes`.
"""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from typing import Final, Literal

import coincurve
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from plaza.atproto.errors import BadSignatureError, CryptoError

Alg = Literal["ES256", "ES256K"]
ES256: Final = "ES256"
ES256K: Final = "ES256K"
ALGORITHMS: Final = (ES256, ES256K)

_P256: Final = ec.SECP256R1()
_ORDER: Final = {
    ES256: 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
    ES256K: 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141,
}
_MULTICODEC: Final = {ES256: b"\x80\x24", ES256K: b"\xe7\x01"}
_ALG_BY_PREFIX: Final[dict[bytes, Alg]] = {b"\x80\x24": ES256, b"\xe7\x01": ES256K}
# Private keys as multibase: multicodec secp256k1-priv (0x1301) and p256-priv (0x1306),
# varint-encoded, then the 32-byte secret (the form goat and indigo write).
_PRIVATE_MULTICODEC: Final[dict[Alg, bytes]] = {ES256: b"\x86\x26", ES256K: b"\x81\x26"}
_ALG_BY_PRIVATE_PREFIX: Final[dict[bytes, Alg]] = {b"\x86\x26": ES256, b"\x81\x26": ES256K}
_ECDSA: Final = ec.ECDSA(hashes.SHA256())
DID_KEY_PREFIX: Final = "did:key:"

_B58: Final = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX: Final = {c: i for i, c in enumerate(_B58)}


def b58encode(data: bytes) -> str:
    """base58btc (Bitcoin alphabet)."""
    n = int.from_bytes(data, "big")
    out = []
    while n:
        n, r = divmod(n, 58)
        out.append(_B58[r])
    pad = len(data) - len(data.lstrip(b"\0"))
    return "1" * pad + "".join(reversed(out))


def b58decode(text: str) -> bytes:
    """Inverse of :func:`b58encode`; raises :class:`CryptoError` on a foreign character."""
    n = 0
    for c in text:
        i = _B58_INDEX.get(c)
        if i is None:
            raise CryptoError(f"invalid base58 character {c!r}")
        n = n * 58 + i
    pad = len(text) - len(text.lstrip("1"))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    return b"\0" * pad + body


def _check_alg(alg: str) -> Alg:
    if alg not in ALGORITHMS:
        raise CryptoError(f"unsupported key algorithm {alg!r}")
    return alg  # type: ignore[return-value]


def _low_s_parts(alg: Alg, signature: bytes) -> tuple[int, int] | None:
    if len(signature) != 64:
        return None  # DER and other encodings are refused
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:], "big")
    n = _ORDER[alg]
    if not (0 < r < n and 0 < s <= n // 2):
        return None  # high-S is malleable and refused by atproto
    return r, s


class PublicKey:
    """A verifying key; construct with :meth:`from_did_key`, :meth:`from_multikey` or
    :meth:`from_compressed`."""

    __slots__ = ("_k1", "_p256", "alg", "compressed")

    def __init__(self, alg: Alg, compressed: bytes) -> None:
        self.alg: Alg = _check_alg(alg)
        self._k1: coincurve.PublicKey | None = None
        self._p256: ec.EllipticCurvePublicKey | None = None
        try:
            if alg == ES256K:
                self._k1 = coincurve.PublicKey(compressed)
                self.compressed: bytes = self._k1.format(compressed=True)
            else:
                self._p256 = ec.EllipticCurvePublicKey.from_encoded_point(_P256, compressed)
                self.compressed = self._p256.public_bytes(
                    serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint
                )
        except (ValueError, TypeError) as exc:
            raise CryptoError(f"invalid {alg} public key point") from exc

    @classmethod
    def from_compressed(cls, alg: Alg, data: bytes) -> PublicKey:
        return cls(alg, data)

    @classmethod
    def from_multikey(cls, multikey: str) -> PublicKey:
        return _parse_multikey(multikey)

    @classmethod
    def from_did_key(cls, did_key: str) -> PublicKey:
        if not isinstance(did_key, str) or not did_key.startswith(DID_KEY_PREFIX):
            raise CryptoError(f"not a did:key: {str(did_key)[:80]!r}")
        return _parse_multikey(did_key[len(DID_KEY_PREFIX) :])

    def multikey(self) -> str:
        return "z" + b58encode(_MULTICODEC[self.alg] + self.compressed)

    def did_key(self) -> str:
        return DID_KEY_PREFIX + self.multikey()

    def verify(self, data: bytes, signature: bytes) -> bool:
        """True iff ``signature`` is a raw low-S ``r‖s`` ECDSA-SHA256 signature of ``data``."""
        parts = _low_s_parts(self.alg, signature)
        if parts is None:
            return False
        der = encode_dss_signature(*parts)
        if self._k1 is not None:
            return bool(self._k1.verify(der, data))
        assert self._p256 is not None
        try:
            self._p256.verify(der, data, _ECDSA)
        except InvalidSignature:
            return False
        return True

    def check(self, data: bytes, signature: bytes, what: str = "signature") -> None:
        """Like :meth:`verify` but raises :class:`BadSignatureError`."""
        if not self.verify(data, signature):
            raise BadSignatureError(f"{what} does not verify against {self.did_key()}")

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, PublicKey)
            and other.alg == self.alg
            and other.compressed == self.compressed
        )

    def __hash__(self) -> int:
        return hash((self.alg, self.compressed))

    def __repr__(self) -> str:
        return f"PublicKey({self.did_key()})"


MAX_MULTIKEY: Final = 64
"""Longest multikey accepted: a compressed point with its prefix is 35 bytes, 49 characters
of base58btc after the ``z``. (Decoding base58 is quadratic in its length.)"""


@lru_cache(maxsize=4096)
def _parse_multikey(multikey: str) -> PublicKey:
    if not isinstance(multikey, str) or not multikey.startswith("z"):
        raise CryptoError(f"multikey must be base58btc ('z' prefix): {str(multikey)[:80]!r}")
    if len(multikey) > MAX_MULTIKEY:
        raise CryptoError(f"multikey is too long ({len(multikey)} > {MAX_MULTIKEY} characters)")
    raw = b58decode(multikey[1:])
    alg = _ALG_BY_PREFIX.get(raw[:2])
    if alg is None:
        raise CryptoError(f"unsupported multicodec key prefix {raw[:2].hex()}")
    key = PublicKey(alg, raw[2:])
    # One key, one string: an uncompressed point (or leading zeros) would name the same
    # key under another DID.
    if key.multikey() != multikey:
        raise CryptoError("multikey is not canonical: atproto keys are compressed points")
    return key


def parse_did_key(did_key: str) -> PublicKey:
    """The public key named by a ``did:key`` (cached)."""
    return PublicKey.from_did_key(did_key)


class PrivateKey:
    """A signing key. Its secret never appears in ``repr`` or ``str``."""

    __slots__ = ("_k1", "_p256", "_public", "alg")

    def __init__(self, alg: Alg, secret: bytes) -> None:
        self.alg: Alg = _check_alg(alg)
        if len(secret) != 32:
            raise CryptoError("private key must be 32 bytes")
        value = int.from_bytes(secret, "big")
        if not 0 < value < _ORDER[alg]:
            raise CryptoError("private key scalar out of range")
        self._k1: coincurve.PrivateKey | None = None
        self._p256: ec.EllipticCurvePrivateKey | None = None
        if alg == ES256K:
            self._k1 = coincurve.PrivateKey(secret)
            compressed = self._k1.public_key.format(compressed=True)
        else:
            self._p256 = ec.derive_private_key(value, _P256)
            compressed = self._p256.public_key().public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint
            )
        self._public = PublicKey(alg, compressed)

    @classmethod
    def generate(cls, alg: Alg = ES256K) -> PrivateKey:
        _check_alg(alg)
        while True:
            secret = os.urandom(32)
            if 0 < int.from_bytes(secret, "big") < _ORDER[alg]:
                return cls(alg, secret)

    @classmethod
    def from_bytes(cls, alg: Alg, secret: bytes) -> PrivateKey:
        """Build a key from its 32-byte big-endian secret scalar."""
        return cls(alg, secret)

    def multibase(self) -> str:
        """The secret as multibase base58btc of its multicodec (``z...``): a secret too."""
        return "z" + b58encode(_PRIVATE_MULTICODEC[self.alg] + self.to_bytes())

    def to_bytes(self) -> bytes:
        if self._k1 is not None:
            return bytes(self._k1.secret)
        assert self._p256 is not None
        return self._p256.private_numbers().private_value.to_bytes(32, "big")

    @property
    def public_key(self) -> PublicKey:
        return self._public

    def did_key(self) -> str:
        return self._public.did_key()

    def sign(self, data: bytes) -> bytes:
        """Raw 64-byte low-S ECDSA-SHA256 signature of ``data``."""
        if self._k1 is not None:
            # libsecp256k1 always produces low-S signatures.
            return self._k1.sign_recoverable(hashlib.sha256(data).digest(), hasher=None)[:64]
        assert self._p256 is not None
        r, s = decode_dss_signature(self._p256.sign(data, _ECDSA))
        n = _ORDER[ES256]
        if s > n // 2:
            s = n - s
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    def __repr__(self) -> str:
        return f"PrivateKey({self.alg}, public={self.did_key()})"

    __str__ = __repr__


def parse_private_key(text: str) -> PrivateKey:
    """A private key written as 64 hex characters (a secp256k1 secret, as atproto tools
    print it) or as a multibase private key (``z`` + base58btc of the multicodec
    ``secp256k1-priv`` or ``p256-priv`` and the 32-byte secret). Surrounding whitespace
    is ignored; :class:`CryptoError` otherwise, never echoing the text."""
    text = text.strip()
    if len(text) == 64 and all(c in "0123456789abcdefABCDEF" for c in text):
        return PrivateKey(ES256K, bytes.fromhex(text))
    if text.startswith("z") and len(text) <= MAX_MULTIKEY:
        try:
            raw = b58decode(text[1:])
        except CryptoError:
            raw = b""
        alg = _ALG_BY_PRIVATE_PREFIX.get(raw[:2])
        if alg is not None and len(raw) == 34:
            return PrivateKey(alg, raw[2:])
        raise CryptoError("not a multibase secp256k1 or P-256 private key")
    raise CryptoError("a private key is 64 hex characters or a multibase private key ('z...')")


def verify_signature(did_key: str, data: bytes, signature: bytes) -> bool:
    """Verify a raw low-S signature against a ``did:key``; False on any malformed input."""
    try:
        key = parse_did_key(did_key)
    except CryptoError:
        return False
    return key.verify(data, signature)
