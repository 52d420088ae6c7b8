"""The AT Protocol core, sans-IO: bytes and values in, values and bytes out.

Nothing in this package opens a socket or a file, reads the clock or the environment:
time, randomness and keys are passed in.
"""

from plaza.atproto import cbor, datamodel, lexicon, plc, syntax, tid
from plaza.atproto.cid import CID, DAG_CBOR, RAW
from plaza.atproto.crypto import ES256, ES256K, PrivateKey, PublicKey, parse_did_key
from plaza.atproto.errors import (
    AtprotoError,
    InvalidRecordError,
    InvalidSyntaxError,
    LexiconError,
    PlcError,
)
from plaza.atproto.lexicon import LexiconRegistry, default_registry
from plaza.atproto.plc import PlcState, apply_operation, did_for_genesis, validate_audit_log
from plaza.atproto.syntax import AtUri, parse_at_uri
from plaza.atproto.tid import TidClock

__all__ = [
    "CID",
    "DAG_CBOR",
    "ES256",
    "ES256K",
    "RAW",
    "AtUri",
    "AtprotoError",
    "InvalidRecordError",
    "InvalidSyntaxError",
    "LexiconError",
    "LexiconRegistry",
    "PlcError",
    "PlcState",
    "PrivateKey",
    "PublicKey",
    "TidClock",
    "apply_operation",
    "cbor",
    "datamodel",
    "default_registry",
    "did_for_genesis",
    "lexicon",
    "parse_at_uri",
    "parse_did_key",
    "plc",
    "syntax",
    "tid",
    "validate_audit_log",
]
