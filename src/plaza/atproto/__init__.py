"""The AT Protocol core, sans-IO: bytes and values in, values and bytes out.

Nothing in this package opens a socket or a file, reads the clock or the environment:
time, randomness and keys are passed in.
"""

from plaza.atproto import cbor, datamodel, plc
from plaza.atproto.cid import CID, DAG_CBOR, RAW
from plaza.atproto.crypto import ES256, ES256K, PrivateKey, PublicKey, parse_did_key
from plaza.atproto.errors import AtprotoError, PlcError
from plaza.atproto.plc import PlcState, apply_operation, did_for_genesis, validate_audit_log

__all__ = [
    "CID",
    "DAG_CBOR",
    "ES256",
    "ES256K",
    "RAW",
    "AtprotoError",
    "PlcError",
    "PlcState",
    "PrivateKey",
    "PublicKey",
    "apply_operation",
    "cbor",
    "datamodel",
    "did_for_genesis",
    "parse_did_key",
    "plc",
    "validate_audit_log",
]
