"""did:plc: the interop audit logs, operation round trips, DID derivation, recovery, tombstones."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from atproto_core.did_doc import DidDocument
from hypothesis import given, settings
from hypothesis import strategies as st

from plaza.atproto import cbor
from plaza.atproto.crypto import ES256, ES256K, PrivateKey
from plaza.atproto.plc import (
    MAX_OPERATION_BYTES,
    RECOVERY_WINDOW,
    LegacyCreate,
    LogEntry,
    PlcAuditLogError,
    PlcData,
    PlcDidExistsError,
    PlcDidNotFoundError,
    PlcError,
    PlcGenesisError,
    PlcKeyPriorityError,
    PlcLateRecoveryError,
    PlcOperation,
    PlcOrderError,
    PlcPrevNotFoundError,
    PlcPrevNullifiedError,
    PlcSignatureError,
    PlcState,
    PlcTombstone,
    PlcTombstonedError,
    PlcTooLargeError,
    Service,
    apply_operation,
    create_genesis,
    create_tombstone,
    create_update,
    decode_sig,
    did_data,
    did_document,
    did_for_genesis,
    encode_sig,
    format_timestamp,
    normalize,
    operation_cid,
    parse_operation,
    sign_operation,
    validate_audit_log,
    verify_operation_signature,
)
from tests.vectors import load_json, vector_path


def _key(name: str, alg: str = ES256K) -> PrivateKey:
    return PrivateKey.from_bytes(alg, hashlib.sha256(name.encode()).digest())  # type: ignore[arg-type]


RECOVERY = _key("recovery")
PDS = _key("pds", ES256)
AGENT = _key("agent")
SIGNING = _key("signing")
T0 = datetime(2026, 1, 1, tzinfo=UTC)


# -- interop vectors ----------------------------------------------------------------------


def _vector_files(kind: str) -> list[Any]:
    files = sorted(vector_path("plc-interop", "audit_log", kind).glob("*.json"))
    return [pytest.param(f.name, id=f.stem.removeprefix("log_")) for f in files]


# The reason each upstream invalid log must be refused for (a file not listed here must
# still be refused, for any PLC reason).
EXPECTED_REJECTION: dict[str, type[PlcError]] = {
    "log_invalid_nullification_reused_key.json": PlcKeyPriorityError,
    "log_invalid_nullification_too_slow.json": PlcLateRecoveryError,
    "log_invalid_sig_b64_newline.json": PlcSignatureError,
    "log_invalid_sig_b64_padding_bits.json": PlcSignatureError,
    "log_invalid_sig_b64_padding_chars.json": PlcSignatureError,
    "log_invalid_sig_der.json": PlcSignatureError,
    "log_invalid_sig_k256_high_s.json": PlcSignatureError,
    "log_invalid_sig_p256_high_s.json": PlcSignatureError,
    "log_invalid_update_nullified.json": PlcPrevNullifiedError,
    "log_invalid_update_tombstoned.json": PlcTombstonedError,
}


def test_vector_families_are_present() -> None:
    assert len(_vector_files("valid")) >= 10
    assert len(_vector_files("invalid")) >= 10


@pytest.mark.parametrize("name", _vector_files("valid"))
def test_valid_audit_log_is_accepted(name: str) -> None:
    log = load_json("plc-interop", "audit_log", "valid", name)
    did = log[0]["did"]
    state = validate_audit_log(did, log)
    assert did_for_genesis(parse_operation(log[0]["operation"])) == did
    assert [e.cid for e in state.entries] == [e["cid"] for e in log]
    assert [e.nullified for e in state.entries] == [e["nullified"] for e in log]
    # The log re-serializes to what was published (modulo key order).
    assert [e.to_json() for e in state.entries] == log
    last_active = [e for e in log if not e["nullified"]][-1]
    assert state.tombstoned == (last_active["operation"]["type"] == "plc_tombstone")
    if not state.tombstoned:
        doc = did_document(did, state)
        assert doc["id"] == did
        assert DidDocument.from_dict(doc).id == did


@pytest.mark.parametrize("name", _vector_files("invalid"))
def test_invalid_audit_log_is_rejected(name: str) -> None:
    log = load_json("plc-interop", "audit_log", "invalid", name)
    expected = EXPECTED_REJECTION.get(name, PlcError)
    with pytest.raises(expected) as info:
        validate_audit_log(log[0]["did"], log)
    assert info.value.code == expected.code


def test_audit_log_entries_must_agree_with_the_replay() -> None:
    log = load_json("plc-interop", "audit_log", "valid", "log_nullification.json")
    did = log[0]["did"]
    flipped = [dict(e) for e in log]
    flipped[1]["nullified"] = False
    with pytest.raises(PlcAuditLogError, match="nullified"):
        validate_audit_log(did, flipped)
    wrong_cid = [dict(e) for e in log]
    wrong_cid[0]["cid"] = log[1]["cid"]
    with pytest.raises(PlcAuditLogError, match="hashes to"):
        validate_audit_log(did, wrong_cid)
    other_did = [dict(e) for e in log]
    other_did[2]["did"] = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"
    with pytest.raises(PlcAuditLogError, match="belongs to"):
        validate_audit_log(did, other_did)
    with pytest.raises(PlcAuditLogError, match="empty"):
        validate_audit_log(did, [])
    foreign = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"
    with pytest.raises(PlcGenesisError):
        validate_audit_log(foreign, [{**e, "did": foreign} for e in log])


def test_legacy_create_vector_normalizes_to_two_rotation_keys() -> None:
    log = load_json("plc-interop", "audit_log", "valid", "log_legacy_dholms.json")
    genesis = parse_operation(log[0]["operation"])
    assert isinstance(genesis, LegacyCreate)
    regular = normalize(genesis)
    assert regular.rotation_keys == (genesis.recovery_key, genesis.signing_key)
    assert regular.also_known_as == (f"at://{genesis.handle}",)
    assert regular.services["atproto_pds"].endpoint == genesis.service
    state = validate_audit_log(log[0]["did"], log[:1])
    assert did_data(state)["rotationKeys"] == [genesis.recovery_key, genesis.signing_key]


# -- operations: round trips, signatures, DIDs --------------------------------------------


@pytest.mark.parametrize("alg", [ES256K, ES256])
def test_genesis_round_trip_and_did(alg: str) -> None:
    rotation = _key("rotation-" + alg, alg)
    did, op = create_genesis(
        key=rotation,
        rotation_keys=[rotation.did_key()],
        signing_key=SIGNING.did_key(),
        handle="alice.test",
        pds_endpoint="http://127.0.0.1:2583",
    )
    assert did.startswith("did:plc:") and len(did) == 32
    assert op.also_known_as == ("at://alice.test",)
    assert verify_operation_signature(op, [rotation.did_key()]) == 0
    again = parse_operation(op.to_json())
    assert again == op
    assert operation_cid(again) == operation_cid(op)
    digest = hashlib.sha256(cbor.encode(op.to_json())).digest()
    assert did == "did:plc:" + base64.b32encode(digest).decode().lower()[:24]
    # The signature covers the op without ``sig``; changing any field breaks it.
    tampered = replace(op, also_known_as=("at://mallory.test",))
    with pytest.raises(PlcSignatureError):
        verify_operation_signature(tampered, [rotation.did_key()])


def test_verification_returns_the_priority_index_of_the_signer() -> None:
    keys = [RECOVERY.did_key(), PDS.did_key(), AGENT.did_key()]
    _, op = create_genesis(
        key=AGENT,
        rotation_keys=keys,
        signing_key=SIGNING.did_key(),
        handle="a.test",
        pds_endpoint="https://pds.example",
    )
    assert verify_operation_signature(op, keys) == 2
    with pytest.raises(PlcSignatureError, match="any of the 2"):
        verify_operation_signature(op, keys[:2])
    with pytest.raises(PlcSignatureError, match="no rotation keys"):
        verify_operation_signature(op, [])


@settings(max_examples=50, deadline=None)
@given(st.binary(min_size=64, max_size=64))
def test_sig_encoding_is_strict(raw: bytes) -> None:
    sig = encode_sig(raw)
    assert len(sig) == 86 and decode_sig(sig) == raw
    for bad in (sig + "==", sig + "\n", sig[:-1] + "+", " " + sig):
        with pytest.raises(PlcSignatureError):
            decode_sig(bad)
    # The last character carries 2 padding bits; any other value with the same
    # 4 data bits must be refused.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(sig[-1])
    for pad in (1, 2, 3):
        with pytest.raises(PlcSignatureError, match="padding bits"):
            decode_sig(sig[:-1] + alphabet[last | pad])


def test_signing_normalizes_and_verification_refuses_high_s() -> None:
    _, op = create_genesis(
        key=PDS,
        rotation_keys=[PDS.did_key()],
        signing_key=SIGNING.did_key(),
        handle="b.test",
        pds_endpoint="https://pds.example",
    )
    assert op.sig is not None
    raw = decode_sig(op.sig)
    n = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
    high_s = raw[:32] + (n - int.from_bytes(raw[32:], "big")).to_bytes(32, "big")
    with pytest.raises(PlcSignatureError):
        verify_operation_signature(replace(op, sig=encode_sig(high_s)), [PDS.did_key()])


def test_parse_is_strict() -> None:
    _, op = create_genesis(
        key=RECOVERY,
        rotation_keys=[RECOVERY.did_key()],
        signing_key=SIGNING.did_key(),
        handle="c.test",
        pds_endpoint="https://pds.example",
    )
    good = op.to_json()
    cases: list[tuple[Any, str]] = [
        ([good], "JSON object"),
        ({**good, "type": "plc_update"}, "unknown PLC operation type"),
        ({k: v for k, v in good.items() if k != "prev"}, "missing prev"),
        ({k: v for k, v in good.items() if k != "sig"}, "missing sig"),
        ({**good, "extra": 1}, "unexpected fields: extra"),
        ({**good, "rotationKeys": "did:key:z"}, "rotationKeys must be an array"),
        ({**good, "alsoKnownAs": [1]}, r"alsoKnownAs\[0\] must be a string"),
        ({**good, "prev": "not-a-cid"}, "prev is not a CID"),
        ({**good, "services": {"x": {"type": "t", "endpoint": "e", "more": 1}}}, "exactly"),
        ({"type": "plc_tombstone", "prev": None, "sig": op.sig}, "prev must be a string"),
        ({**good, "sig": 5}, "sig must be a string"),
    ]
    for value, message in cases:
        with pytest.raises(PlcError, match=message):
            parse_operation(value)
    with pytest.raises(PlcError, match="unexpected fields: sig"):
        parse_operation(good, signed=False)


def test_operation_size_limit() -> None:
    big = PlcOperation(
        rotation_keys=(RECOVERY.did_key(),),
        verification_methods={},
        also_known_as=("at://" + "x" * MAX_OPERATION_BYTES,),
        services={},
        prev=None,
    )
    with pytest.raises(PlcTooLargeError):
        sign_operation(big, RECOVERY)
    signed = replace(big, sig=encode_sig(bytes(64)))
    with pytest.raises(PlcTooLargeError):
        parse_operation(signed.to_json())


def test_builders_refuse_a_key_without_authority() -> None:
    with pytest.raises(PlcError, match="not among"):
        create_genesis(
            key=AGENT,
            rotation_keys=[RECOVERY.did_key()],
            signing_key=SIGNING.did_key(),
            handle="d.test",
            pds_endpoint="https://pds.example",
        )
    _, genesis = _genesis()
    with pytest.raises(PlcError, match="not among"):
        create_update(genesis, AGENT, handle="e.test")


# -- the log rule through apply_operation -------------------------------------------------


def _genesis() -> tuple[str, PlcOperation]:
    return create_genesis(
        key=PDS,
        rotation_keys=[RECOVERY.did_key(), PDS.did_key()],
        signing_key=SIGNING.did_key(),
        handle="alice.test",
        pds_endpoint="https://pds-one.example",
    )


def _created() -> tuple[PlcState, PlcOperation]:
    did, genesis = _genesis()
    return apply_operation(PlcState.empty(did), genesis, T0).state, genesis


def test_create_update_and_document() -> None:
    state, genesis = _created()
    assert state.head is not None and state.head.created_at == T0
    update = create_update(genesis, PDS, handle="alice2.test", pds_endpoint="https://two.example")
    applied = apply_operation(state, update, T0 + timedelta(minutes=5))
    assert applied.nullified == () and applied.key_index == 1
    assert applied.previous_head == str(operation_cid(genesis))
    data = applied.state.data
    assert data is not None
    assert (data.handle, data.pds_endpoint, data.signing_key) == (
        "alice2.test",
        "https://two.example",
        SIGNING.did_key(),
    )
    assert data.rotation_keys == (RECOVERY.did_key(), PDS.did_key())
    doc = did_document(state.did, applied.state)
    assert doc["@context"][:2] == [
        "https://www.w3.org/ns/did/v1",
        "https://w3id.org/security/multikey/v1",
    ]
    assert "https://w3id.org/security/suites/secp256k1-2019/v1" in doc["@context"]
    assert doc["verificationMethod"] == [
        {
            "id": f"{state.did}#atproto",
            "type": "Multikey",
            "controller": state.did,
            "publicKeyMultibase": SIGNING.public_key.multikey(),
        }
    ]
    assert doc["service"] == [
        {
            "id": "#atproto_pds",
            "type": "AtprotoPersonalDataServer",
            "serviceEndpoint": "https://two.example",
        }
    ]
    # The atproto SDK reads it the way a client will.
    parsed = DidDocument.from_dict(doc)
    assert parsed.get_pds_endpoint() == "https://two.example"
    assert parsed.get_did_key() == SIGNING.did_key()
    assert parsed.get_handle() == "alice2.test"


def test_genesis_rules() -> None:
    did, genesis = _genesis()
    other_did, other = create_genesis(
        key=AGENT,
        rotation_keys=[AGENT.did_key()],
        signing_key=SIGNING.did_key(),
        handle="bob.test",
        pds_endpoint="https://pds.example",
    )
    with pytest.raises(PlcGenesisError, match=other_did):
        apply_operation(PlcState.empty(did), other, T0)
    state = apply_operation(PlcState.empty(did), genesis, T0).state
    with pytest.raises(PlcDidExistsError):
        apply_operation(state, genesis, T0 + timedelta(seconds=1))
    update = create_update(genesis, PDS, handle="x.test")
    with pytest.raises(PlcDidNotFoundError) as info:
        apply_operation(PlcState.empty(did), update, T0)
    assert info.value.status == 404
    with pytest.raises(PlcError, match="not a did:plc"):
        PlcState.empty("did:web:example.com")


def test_update_rules() -> None:
    state, genesis = _created()
    with pytest.raises(PlcSignatureError):
        apply_operation(state, _resign(create_update(genesis, PDS, handle="y.test"), AGENT), T0)
    _, stranger = create_genesis(
        key=AGENT,
        rotation_keys=[AGENT.did_key()],
        signing_key=SIGNING.did_key(),
        handle="z.test",
        pds_endpoint="https://pds.example",
    )
    with pytest.raises(PlcPrevNotFoundError):
        apply_operation(state, create_update(stranger, AGENT, handle="z2.test"), T0)


def _resign(op: PlcOperation, key: PrivateKey) -> PlcOperation:
    return sign_operation(replace(op, sig=None), key)


def test_created_at_strictly_increases_even_when_the_clock_steps_back() -> None:
    state, genesis = _created()
    update = create_update(genesis, PDS, handle="later.test")
    applied = apply_operation(state, update, T0 - timedelta(hours=1))
    assert applied.entry.created_at == T0 + timedelta(milliseconds=1)
    assert format_timestamp(applied.entry.created_at) == "2026-01-01T00:00:00.001Z"


def test_submission_constraints() -> None:
    did, _ = _genesis()
    empty = PlcState.empty(did)

    def genesis_with(**changes: Any) -> PlcOperation:
        base = PlcOperation(
            rotation_keys=(RECOVERY.did_key(),),
            verification_methods={"atproto": SIGNING.did_key()},
            also_known_as=("at://f.test",),
            services={"atproto_pds": Service("AtprotoPersonalDataServer", "https://p.example")},
            prev=None,
        )
        return sign_operation(replace(base, **changes), RECOVERY)

    cases: list[tuple[dict[str, Any], str]] = [
        ({"rotation_keys": ()}, "1 to 5"),
        ({"rotation_keys": tuple(_key(f"k{i}").did_key() for i in range(6))}, "1 to 5"),
        ({"rotation_keys": (RECOVERY.did_key(), RECOVERY.did_key())}, "repeat"),
        ({"rotation_keys": ("did:key:zNotAKey",)}, "rotationKeys"),
        ({"verification_methods": {"atproto": "did:banana"}}, "did:key"),
        ({"verification_methods": {"#atproto": SIGNING.did_key()}}, "leading '#'"),
        ({"also_known_as": ("at://a.test", "at://a.test")}, "repeat"),
        ({"services": {"x": Service("", "https://p.example")}}, "type"),
    ]
    for changes, message in cases:
        with pytest.raises(PlcError, match=message):
            apply_operation(empty, genesis_with(**changes), T0)
    legacy = sign_operation(
        LegacyCreate(SIGNING.did_key(), RECOVERY.did_key(), "g.test", "https://p.example"),
        RECOVERY,
    )
    with pytest.raises(PlcError, match="legacy"):
        apply_operation(PlcState.empty(did_for_genesis(legacy)), legacy, T0)


def test_legacy_create_still_verifies_in_a_log() -> None:
    legacy = sign_operation(
        LegacyCreate(SIGNING.did_key(), RECOVERY.did_key(), "h.test", "p.example"), SIGNING
    )
    did = did_for_genesis(legacy)
    entry = LogEntry(did, legacy, str(operation_cid(legacy)), False, T0)
    state = validate_audit_log(did, [entry.to_json()])
    data = state.data
    assert data is not None
    assert (data.handle, data.pds_endpoint) == ("h.test", "https://p.example")
    # The legacy signing key is also a rotation key, after the recovery key.
    update = create_update(legacy, SIGNING, handle="h2.test")
    assert apply_operation(state, update, T0 + timedelta(days=1)).key_index == 1


# -- recovery -----------------------------------------------------------------------------


def _hijacked() -> tuple[PlcState, PlcOperation, PlcOperation]:
    """The PDS key (index 1) rotates the recovery key out at T0 + 1h."""
    state, genesis = _created()
    hijack = create_update(genesis, PDS, rotation_keys=[AGENT.did_key()])
    state = apply_operation(state, hijack, T0 + timedelta(hours=1)).state
    return state, genesis, hijack


@pytest.mark.parametrize(
    "after",
    [timedelta(hours=1), timedelta(hours=71, minutes=59), RECOVERY_WINDOW],
    ids=["1h", "71h59m", "exactly-72h"],
)
def test_recovery_within_72h_nullifies_the_later_ops(after: timedelta) -> None:
    state, genesis, hijack = _hijacked()
    recovery = create_update(genesis, RECOVERY, rotation_keys=[RECOVERY.did_key()])
    applied = apply_operation(state, recovery, T0 + timedelta(hours=1) + after)
    assert applied.nullified == (str(operation_cid(hijack)),)
    assert applied.key_index == 0
    new = applied.state
    assert [e.nullified for e in new.entries] == [False, True, False]
    assert new.data is not None and new.data.rotation_keys == (RECOVERY.did_key(),)
    # The whole history still validates as an audit log.
    assert validate_audit_log(new.did, [e.to_json() for e in new.entries]) == new
    # Building on the nullified op is refused.
    with pytest.raises(PlcPrevNullifiedError):
        apply_operation(new, create_update(hijack, AGENT, handle="evil.test"), T0 + after * 2)


def test_recovery_after_72h_is_too_late() -> None:
    state, genesis, _ = _hijacked()
    recovery = create_update(genesis, RECOVERY, rotation_keys=[RECOVERY.did_key()])
    late = T0 + timedelta(hours=1) + RECOVERY_WINDOW + timedelta(milliseconds=1)
    with pytest.raises(PlcLateRecoveryError):
        apply_operation(state, recovery, late)


def test_a_fork_needs_a_strictly_higher_priority_key() -> None:
    state, genesis, _ = _hijacked()
    # The key that signed the op being replaced cannot replace it.
    same_key = create_update(genesis, PDS, handle="again.test")
    with pytest.raises(PlcKeyPriorityError):
        apply_operation(state, same_key, T0 + timedelta(hours=2))
    # After a recovery by index 0, no key outranks it: a second fork is refused.
    recovered = apply_operation(
        state, create_update(genesis, RECOVERY, handle="ok.test"), T0 + timedelta(hours=2)
    ).state
    with pytest.raises(PlcKeyPriorityError):
        apply_operation(
            recovered,
            create_update(genesis, RECOVERY, handle="twice.test"),
            T0 + timedelta(hours=3),
        )


def test_recovery_nullifies_a_chain() -> None:
    state, genesis, hijack = _hijacked()
    second = create_update(hijack, AGENT, handle="evil.test")
    state = apply_operation(state, second, T0 + timedelta(hours=2)).state
    applied = apply_operation(
        state, create_update(genesis, RECOVERY, handle="mine.test"), T0 + timedelta(hours=3)
    )
    assert applied.nullified == (str(operation_cid(hijack)), str(operation_cid(second)))
    assert len(applied.state.active) == 2


# -- tombstones ---------------------------------------------------------------------------


def test_tombstone_is_final_after_72h_but_recoverable_before() -> None:
    state, genesis = _created()
    tomb = create_tombstone(genesis, PDS)
    assert isinstance(tomb, PlcTombstone)
    dead = apply_operation(state, tomb, T0 + timedelta(hours=1)).state
    assert dead.tombstoned and dead.data is None
    with pytest.raises(PlcTombstonedError):
        did_document(dead.did, dead)
    with pytest.raises(PlcTombstonedError):
        did_data(dead)
    after_tomb = sign_operation(PlcTombstone(prev=str(operation_cid(tomb))), PDS)
    with pytest.raises(PlcTombstonedError):
        apply_operation(dead, after_tomb, T0 + timedelta(hours=2))
    # The recovery key forks from the genesis within the window and revives the DID.
    revived = apply_operation(
        dead, create_update(genesis, RECOVERY, handle="back.test"), T0 + timedelta(hours=2)
    ).state
    assert not revived.tombstoned
    assert revived.data is not None and revived.data.handle == "back.test"
    with pytest.raises(PlcLateRecoveryError):
        apply_operation(
            dead, create_update(genesis, RECOVERY, handle="back.test"), T0 + timedelta(days=4)
        )


def test_did_data_shape() -> None:
    state, _ = _created()
    assert did_data(state) == {
        "did": state.did,
        "verificationMethods": {"atproto": SIGNING.did_key()},
        "rotationKeys": [RECOVERY.did_key(), PDS.did_key()],
        "alsoKnownAs": ["at://alice.test"],
        "services": {
            "atproto_pds": {
                "type": "AtprotoPersonalDataServer",
                "endpoint": "https://pds-one.example",
            }
        },
    }
    assert isinstance(state.data, PlcData)
    with pytest.raises(PlcDidNotFoundError):
        did_data(PlcState.empty(state.did))


# -- a property: any history the rule accepts validates as an audit log --------------------

_KEYS = [RECOVERY, PDS, AGENT]


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 5),  # how far back to fork (0: plain update)
            st.integers(0, 2),  # which key signs
            st.integers(1, 100),  # hours since the previous op
            st.booleans(),  # tombstone instead of update
        ),
        max_size=8,
    )
)
def test_accepted_histories_validate(steps: list[tuple[int, int, int, bool]]) -> None:
    did, genesis = create_genesis(
        key=PDS,
        rotation_keys=[k.did_key() for k in _KEYS],
        signing_key=SIGNING.did_key(),
        handle="prop.test",
        pds_endpoint="https://pds.example",
    )
    state = apply_operation(PlcState.empty(did), genesis, T0).state
    now = T0
    for back, signer, hours, tombstone in steps:
        now += timedelta(hours=hours)
        active = state.active
        prev = active[max(0, len(active) - 1 - back)].operation
        key = _KEYS[signer]
        if isinstance(prev, PlcTombstone):
            continue
        if tombstone:
            op: PlcOperation | PlcTombstone = sign_operation(
                PlcTombstone(prev=str(operation_cid(prev))), key
            )
        else:
            op = sign_operation(
                replace(
                    normalize(prev),
                    prev=str(operation_cid(prev)),
                    sig=None,
                    also_known_as=(f"at://step{len(state.entries)}.test",),
                ),
                key,
            )
        try:
            state = apply_operation(state, op, now).state
        except PlcError:
            continue  # refused: the state is unchanged, which the next step relies on
    published = [e.to_json() for e in state.entries]
    assert validate_audit_log(did, published) == state
    assert all(isinstance(e, LogEntry) for e in state.entries)


def test_ordering_error_message_names_both_times() -> None:
    state, genesis = _created()
    update = create_update(genesis, PDS, handle="t.test")
    head = state.entries[0]
    with pytest.raises(PlcOrderError, match="not after"):
        validate_audit_log(
            state.did,
            [
                head.to_json(),
                LogEntry(state.did, update, str(operation_cid(update)), False, T0).to_json(),
            ],
        )


# -- malformed input: always a PlcError, never anything else ------------------------------

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)


def _valid_json() -> dict[str, Any]:
    return _genesis()[1].to_json()


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(_valid_json())), _json_values)
def test_mutated_operations_raise_plc_errors(field: str, value: Any) -> None:
    mutated = {**_valid_json(), field: value}
    try:
        op = parse_operation(mutated)
    except PlcError:
        return
    assert op.to_json() == mutated


@settings(max_examples=200, deadline=None)
@given(_json_values)
def test_arbitrary_json_raises_plc_errors(value: Any) -> None:
    for parse in (parse_operation, LogEntry.from_json):
        with pytest.raises(PlcError):
            parse(value)
    # An audit log as a directory might answer it: any JSON value at all.
    did = _genesis()[0]
    with pytest.raises(PlcError):
        validate_audit_log(did, value)


def test_lone_surrogates_are_refused_not_crashed_on() -> None:
    with pytest.raises(PlcError, match="Unicode"):
        parse_operation({**_valid_json(), "alsoKnownAs": ["at://\ud800.test"]})
    with pytest.raises(PlcError, match="Unicode"):
        parse_operation({**_valid_json(), "verificationMethods": {"\udc00": "did:key:z"}})
