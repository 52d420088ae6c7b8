"""did:plc, sans-IO: operations, signatures, DID derivation, audit logs and recovery.

- :mod:`~plaza.atproto.plc.operations`: the three operation shapes, strict parsing,
  signing and verification, CIDs and DID derivation;
- :mod:`~plaza.atproto.plc.build`: builders for a genesis, an update, a tombstone;
- :mod:`~plaza.atproto.plc.constraints`: what a directory accepts as a new operation;
- :mod:`~plaza.atproto.plc.log`: the log rule (updates, forks, the 72-hour recovery
  window), :func:`apply_operation` for directories and :func:`validate_audit_log` for
  auditors;
- :mod:`~plaza.atproto.plc.document`: ``/{did}/data`` and the W3C DID document;
- :mod:`~plaza.atproto.plc.proof`: a DID's active chain as an offline proof of the keys
  its document lists.

The clock is an argument: nothing here reads it.
"""

from plaza.atproto.plc.build import create_genesis, create_tombstone, create_update
from plaza.atproto.plc.constraints import check_new_operation
from plaza.atproto.plc.document import PlcData, did_data, did_document, live_data, op_data
from plaza.atproto.plc.errors import (
    PlcAuditLogError,
    PlcDidExistsError,
    PlcDidNotFoundError,
    PlcError,
    PlcGenesisError,
    PlcKeyPriorityError,
    PlcLateRecoveryError,
    PlcOrderError,
    PlcPrevNotFoundError,
    PlcPrevNullifiedError,
    PlcSignatureError,
    PlcTombstonedError,
    PlcTooLargeError,
)
from plaza.atproto.plc.log import (
    RECOVERY_WINDOW,
    AppliedOperation,
    LogEntry,
    PlcState,
    apply_operation,
    format_timestamp,
    next_timestamp,
    parse_timestamp,
    validate_audit_log,
)
from plaza.atproto.plc.operations import (
    ATPROTO_KEY,
    ATPROTO_PDS,
    ATPROTO_PDS_TYPE,
    MAX_OPERATION_BYTES,
    LegacyCreate,
    Operation,
    PlcOperation,
    PlcTombstone,
    Service,
    authority_keys,
    decode_sig,
    did_for_genesis,
    encode_sig,
    is_did_plc,
    normalize,
    operation_cid,
    parse_operation,
    sign_operation,
    signed_bytes,
    unsigned_bytes,
    verify_operation_signature,
)
from plaza.atproto.plc.proof import (
    PLAZA_KEY,
    ChainProof,
    PlcProofError,
    chain_from_value,
    proof_value,
    supersedes,
    verify_chain,
)

__all__ = [
    "ATPROTO_KEY",
    "ATPROTO_PDS",
    "ATPROTO_PDS_TYPE",
    "MAX_OPERATION_BYTES",
    "PLAZA_KEY",
    "RECOVERY_WINDOW",
    "AppliedOperation",
    "ChainProof",
    "LegacyCreate",
    "LogEntry",
    "Operation",
    "PlcAuditLogError",
    "PlcData",
    "PlcDidExistsError",
    "PlcDidNotFoundError",
    "PlcError",
    "PlcGenesisError",
    "PlcKeyPriorityError",
    "PlcLateRecoveryError",
    "PlcOperation",
    "PlcOrderError",
    "PlcPrevNotFoundError",
    "PlcPrevNullifiedError",
    "PlcProofError",
    "PlcSignatureError",
    "PlcState",
    "PlcTombstone",
    "PlcTombstonedError",
    "PlcTooLargeError",
    "Service",
    "apply_operation",
    "authority_keys",
    "chain_from_value",
    "check_new_operation",
    "create_genesis",
    "create_tombstone",
    "create_update",
    "decode_sig",
    "did_data",
    "did_document",
    "did_for_genesis",
    "encode_sig",
    "format_timestamp",
    "is_did_plc",
    "live_data",
    "next_timestamp",
    "normalize",
    "op_data",
    "operation_cid",
    "parse_operation",
    "parse_timestamp",
    "proof_value",
    "sign_operation",
    "signed_bytes",
    "supersedes",
    "unsigned_bytes",
    "validate_audit_log",
    "verify_chain",
    "verify_operation_signature",
]
