"""Labels signed per the AT Protocol label spec, checked the way the app view checks a
labeler's labels (an independent reading of the spec in this repository)."""

from __future__ import annotations

from plaza.atproto import cbor
from plaza.atproto.crypto import PrivateKey
from plaza.moderation.labels import iso_time, sign_label, signing_bytes, unsigned_label
from plaza.moderation.labels import verify_label as verify
from plaza.services.appview.labels import check_label
from plaza.services.appview.labels import signing_bytes as appview_signing_bytes

CID = "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"


def test_sign_and_verify() -> None:
    key = PrivateKey.generate()
    raw = unsigned_label(
        "did:plc:lab", "at://did:plc:a/app.bsky.feed.post/1", "scam",
        cts=iso_time(1_700_000_000.25), cid=CID, exp="2030-01-01T00:00:00.000Z",
    )  # fmt: skip
    assert raw["cts"] == "2023-11-14T22:13:20.250Z" and raw["ver"] == 1
    label = sign_label(raw, key)
    assert len(label["sig"]) == 64
    assert verify(label, key.public_key)
    # the signed bytes are the DAG-CBOR of the label without sig, whatever the key order
    assert signing_bytes(label) == cbor.encode(dict(reversed(list(raw.items()))))
    assert signing_bytes(label) == appview_signing_bytes(label)
    assert key.public_key.verify(cbor.encode(raw), label["sig"])
    checked = check_label(label)
    assert (checked.val, checked.neg, str(checked.cid)) == ("scam", False, CID)
    assert not verify({**label, "neg": True}, key.public_key)
    assert not verify(label, PrivateKey.generate().public_key)
    assert not verify({**label, "sig": "not bytes"}, key.public_key)


def test_negation_is_its_own_signed_label() -> None:
    key = PrivateKey.generate()
    neg = sign_label(unsigned_label("did:plc:lab", "did:plc:a", "spam", cts=iso_time(0),
                                    neg=True), key)  # fmt: skip
    assert neg["neg"] is True and "cid" not in neg and "exp" not in neg
    assert check_label(neg).neg and verify(neg, key.public_key)
