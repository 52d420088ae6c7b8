"""The AT Protocol core, sans-IO: bytes and values in, values and bytes out.

Nothing in this package opens a socket or a file, reads the clock or the environment:
time, randomness and keys are passed in.
"""

from plaza.atproto import cbor, datamodel
from plaza.atproto.cid import CID, DAG_CBOR, RAW
from plaza.atproto.crypto import ES256, ES256K, PrivateKey, PublicKey, parse_did_key
from plaza.atproto.errors import AtprotoError

__all__ = [
    "CID",
    "DAG_CBOR",
    "ES256",
    "ES256K",
    "RAW",
    "AtprotoError",
    "PrivateKey",
    "PublicKey",
    "cbor",
    "datamodel",
    "parse_did_key",
]
