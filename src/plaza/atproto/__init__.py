"""The AT Protocol core, sans-IO: bytes and values in, values and bytes out.

Nothing in this package opens a socket or a file, reads the clock or the environment:
time, randomness and keys are passed in.
"""

from plaza.atproto import car, cbor, datamodel, lexicon, mst, plc, repo, sync, syntax, tid
from plaza.atproto.car import read_car, write_car
from plaza.atproto.cid import CID, DAG_CBOR, RAW
from plaza.atproto.commit import Commit, SignedCommit, decode_commit, sign_commit, verify_commit
from plaza.atproto.crypto import ES256, ES256K, PrivateKey, PublicKey, parse_did_key
from plaza.atproto.errors import (
    AtprotoError,
    InvalidRecordError,
    InvalidSyntaxError,
    LexiconError,
    PlcError,
)
from plaza.atproto.lexicon import LexiconRegistry, default_registry
from plaza.atproto.mst import MST, Op
from plaza.atproto.plc import PlcState, apply_operation, did_for_genesis, validate_audit_log
from plaza.atproto.repo import CommitResult, Repo, Write, apply_writes, export_car
from plaza.atproto.repo_verify import VerifiedRepo, import_car
from plaza.atproto.sync import VerifiedCommit, invert_ops, verify_commit_event
from plaza.atproto.syntax import AtUri, parse_at_uri
from plaza.atproto.tid import TidClock

__all__ = [
    "CID",
    "DAG_CBOR",
    "ES256",
    "ES256K",
    "MST",
    "RAW",
    "AtUri",
    "AtprotoError",
    "Commit",
    "CommitResult",
    "InvalidRecordError",
    "InvalidSyntaxError",
    "LexiconError",
    "LexiconRegistry",
    "Op",
    "PlcError",
    "PlcState",
    "PrivateKey",
    "PublicKey",
    "Repo",
    "SignedCommit",
    "TidClock",
    "VerifiedCommit",
    "VerifiedRepo",
    "Write",
    "apply_operation",
    "apply_writes",
    "car",
    "cbor",
    "datamodel",
    "decode_commit",
    "default_registry",
    "did_for_genesis",
    "export_car",
    "import_car",
    "invert_ops",
    "lexicon",
    "mst",
    "parse_at_uri",
    "parse_did_key",
    "plc",
    "read_car",
    "repo",
    "sign_commit",
    "sync",
    "syntax",
    "tid",
    "validate_audit_log",
    "verify_commit",
    "verify_commit_event",
    "write_car",
]
