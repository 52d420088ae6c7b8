"""ES256 / ES256K keys and signatures: interop fixtures, low-S, did:key, SDK agreement."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from atproto_crypto.verify import verify_signature as sdk_verify
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from hypothesis import given, settings
from hypothesis import strategies as st

from plaza.atproto import crypto
from plaza.atproto.crypto import ES256, ES256K, PrivateKey, PublicKey, parse_did_key
from plaza.atproto.errors import BadSignatureError, CryptoError
from tests.vectors import load_json, params

SIGNATURES = load_json("atproto-interop", "crypto", "signature-fixtures.json")
ORDER = {
    ES256: 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
    ES256K: 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141,
}


def _b64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def _sig_id(item: dict[str, Any]) -> str:
    tags = "+".join(item["tags"]) or "plain"
    return f"{item['algorithm']}-{tags}-{'valid' if item['validSignature'] else 'invalid'}"


@pytest.mark.parametrize("item", params(SIGNATURES, _sig_id))
def test_signature_fixtures(item: dict[str, Any]) -> None:
    key = parse_did_key(item["publicKeyDid"])
    message, signature = _b64(item["messageBase64"]), _b64(item["signatureBase64"])
    assert key.alg == item["algorithm"]
    assert key.verify(message, signature) is item["validSignature"]
    assert (
        crypto.verify_signature(item["publicKeyDid"], message, signature) is item["validSignature"]
    )
    assert sdk_verify(item["publicKeyDid"], message, signature) is item["validSignature"]
    if not item["validSignature"]:
        with pytest.raises(BadSignatureError):
            key.check(message, signature)
    # publicKeyMultibase is the bare compressed point, without a multicodec prefix.
    compressed = crypto.b58decode(item["publicKeyMultibase"].removeprefix("z"))
    assert compressed == key.compressed
    assert PublicKey.from_compressed(key.alg, compressed) == key


@pytest.mark.parametrize("item", params([i for i in SIGNATURES if "high-s" in i["tags"]], _sig_id))
def test_high_s_is_the_only_fault(item: dict[str, Any]) -> None:
    """The high-S fixtures are real signatures: flipping s to n - s makes them verify."""
    key = parse_did_key(item["publicKeyDid"])
    signature = _b64(item["signatureBase64"])
    r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    n = ORDER[key.alg]
    assert s > n // 2
    low = r.to_bytes(32, "big") + (n - s).to_bytes(32, "big")
    assert key.verify(_b64(item["messageBase64"]), low)


@pytest.mark.parametrize(
    "item", params([i for i in SIGNATURES if "der-encoded" in i["tags"]], _sig_id)
)
def test_der_is_refused_even_though_it_is_a_real_signature(item: dict[str, Any]) -> None:
    key = parse_did_key(item["publicKeyDid"])
    der = _b64(item["signatureBase64"])
    r, s = decode_dss_signature(der)
    raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    assert key.verify(_b64(item["messageBase64"]), raw)
    assert not key.verify(_b64(item["messageBase64"]), der)


def _w3c(alg: str) -> list[dict[str, Any]]:
    name = {ES256K: "w3c_didkey_K256.json", ES256: "w3c_didkey_P256.json"}[alg]
    return [{**item, "alg": alg} for item in load_json("atproto-interop", "crypto", name)]


@pytest.mark.parametrize(
    "item", params(_w3c(ES256K) + _w3c(ES256), lambda i: f"{i['alg']}-{i['publicDidKey'][8:24]}")
)
def test_w3c_did_keys(item: dict[str, Any]) -> None:
    if "privateKeyBytesHex" in item:
        secret = bytes.fromhex(item["privateKeyBytesHex"])
    else:
        secret = crypto.b58decode(item["privateKeyBytesBase58"])
    key = PrivateKey.from_bytes(item["alg"], secret)
    assert key.did_key() == item["publicDidKey"]
    assert key.to_bytes() == secret
    public = parse_did_key(item["publicDidKey"])
    assert public == key.public_key and public.did_key() == item["publicDidKey"]
    assert PublicKey.from_multikey(public.multikey()) == public
    assert public.multikey().startswith("zQ3s" if item["alg"] == ES256K else "zDna")


@pytest.mark.parametrize("alg", [ES256, ES256K])
@settings(max_examples=25, deadline=None)
@given(message=st.binary(max_size=200))
def test_sign_verify_low_s(alg: crypto.Alg, message: bytes) -> None:
    key = PrivateKey.generate(alg)
    signature = key.sign(message)
    assert len(signature) == 64
    assert int.from_bytes(signature[32:], "big") <= ORDER[alg] // 2
    public = key.public_key
    assert public.verify(message, signature)
    assert sdk_verify(public.did_key(), message, signature)
    assert not public.verify(message + b"!", signature)
    r, s = signature[:32], int.from_bytes(signature[32:], "big")
    high = r + (ORDER[alg] - s).to_bytes(32, "big")
    assert not public.verify(message, high)
    public.check(message, signature)
    with pytest.raises(BadSignatureError):
        public.check(message + b"!", signature)


def test_deterministic_keys_and_secrets_stay_out_of_repr() -> None:
    secret = bytes(range(1, 33))
    for alg in (ES256, ES256K):
        key = PrivateKey.from_bytes(alg, secret)
        assert secret.hex() not in repr(key) and secret.hex() not in str(key)
        assert key.did_key() in repr(key)
        assert PrivateKey.from_bytes(alg, secret).did_key() == key.did_key()


@pytest.mark.parametrize(
    ("alg", "secret"),
    [
        (ES256, b"\x01" * 31),
        (ES256K, bytes(32)),
        (ES256K, ORDER[ES256K].to_bytes(32, "big")),
        ("RS256", b"\x01" * 32),
    ],
)
def test_bad_private_keys(alg: str, secret: bytes) -> None:
    with pytest.raises(CryptoError):
        PrivateKey.from_bytes(alg, secret)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "value",
    [
        "did:key:",
        "did:key:z",
        "did:key:zQ3sh",
        "did:key:z0OIl",  # not base58
        "did:key:uQ3shqwJEJyMBsBXCWyCBpUBMqxcon9oHB7mCvx4sSpMdLJwc",  # not base58btc
        "did:web:example.com",
        "did:key:z" + crypto.b58encode(b"\xed\x01" + bytes(32)),  # ed25519 is not used
        "did:key:z" + crypto.b58encode(b"\xe7\x01" + b"\x02" + bytes(32)),  # not on the curve
        "did:key:z" + crypto.b58encode(b"\x80\x24" + b"\x04" + bytes(64)),
        12,
    ],
    ids=repr,
)
def test_bad_did_keys(value: Any) -> None:
    with pytest.raises(CryptoError):
        parse_did_key(value)
    assert not crypto.verify_signature(value, b"m", bytes(64))


@pytest.mark.parametrize("alg", [ES256K, ES256])
def test_a_key_has_one_did_key(alg: str) -> None:
    """An uncompressed point is the same key under another string: two DIDs, one signer.
    Only the canonical (compressed) did:key is accepted."""
    key = PrivateKey.from_bytes(alg, bytes(31) + b"\x07")  # type: ignore[arg-type]
    prefix = b"\xe7\x01" if alg == ES256K else b"\x80\x24"
    if alg == ES256K:
        import coincurve

        point = coincurve.PublicKey(key.public_key.compressed).format(compressed=False)
    else:
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        pub = ec.EllipticCurvePublicKey.from_encoded_point(
            ec.SECP256R1(), key.public_key.compressed
        )
        point = pub.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    other = "did:key:z" + crypto.b58encode(prefix + point)
    assert other != key.did_key()
    with pytest.raises(CryptoError, match=r"canonical|too long"):
        parse_did_key(other)


def test_overlong_did_keys_are_refused_before_decoding() -> None:
    # base58 decoding is quadratic in the length: a megabyte of it takes minutes.
    with pytest.raises(CryptoError, match="too long"):
        parse_did_key("did:key:z" + "2" * 1_000_000)


_PREFIXES = st.sampled_from([b"\xe7\x01", b"\x80\x24", b"", b"\x00"])


@given(
    st.text(max_size=60)
    | st.builds(
        lambda p, b: "did:key:z" + crypto.b58encode(p + b), _PREFIXES, st.binary(max_size=70)
    )
)
def test_fuzz_did_key_parsing(value: str) -> None:
    try:
        key = parse_did_key(value)
    except CryptoError:
        return
    assert parse_did_key(key.did_key()) == key


@given(st.binary(max_size=80), st.binary(max_size=40))
def test_fuzz_signatures_only_return_false(signature: bytes, message: bytes) -> None:
    key = parse_did_key(SIGNATURES[1]["publicKeyDid"])
    assert key.verify(message, signature) is False


def test_base58_round_trip() -> None:
    for data in (b"", b"\x00", b"\x00\x00\x01", bytes(range(40))):
        assert crypto.b58decode(crypto.b58encode(data)) == data


@pytest.mark.parametrize(
    "item", params(_w3c(ES256K) + _w3c(ES256), lambda i: f"{i['alg']}-{i['publicDidKey'][8:24]}")
)
def test_private_keys_read_from_hex_and_multibase(item: dict[str, Any]) -> None:
    if "privateKeyBytesHex" in item:
        secret = bytes.fromhex(item["privateKeyBytesHex"])
    else:
        secret = crypto.b58decode(item["privateKeyBytesBase58"])
    key = PrivateKey.from_bytes(item["alg"], secret)
    written = key.multibase()
    assert written.startswith("z")
    assert crypto.parse_private_key(f"  {written}\n").did_key() == item["publicDidKey"]
    if item["alg"] == ES256K:  # bare hex is a secp256k1 secret
        assert (
            crypto.parse_private_key(secret.hex().upper() + "\n").did_key()
            == (item["publicDidKey"])
        )


@pytest.mark.parametrize(
    "text",
    [
        "",
        "ab" * 31,
        "ab" * 33,
        "g" * 64,
        "0" * 64,  # the zero scalar
        "z" + "1" * 10,
        PrivateKey.generate(ES256K).public_key.multikey(),  # a public key is no secret
        "zQ3s" + "0" * 40,  # not base58
    ],
    ids=["empty", "short", "long", "not-hex", "zero", "short-multibase", "public", "not-b58"],
)
def test_bad_private_key_text_is_refused_without_echo(text: str) -> None:
    with pytest.raises(CryptoError) as err:
        crypto.parse_private_key(text)
    assert not text.strip() or text.strip() not in err.value.message
