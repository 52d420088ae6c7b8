"""Blob media types: the client's named type, else the bytes' signature."""

from __future__ import annotations

import pytest

from plaza.services.pds.errors import InvalidRequestError
from plaza.services.pds.media import declared_type, sniff

SIGNATURES = {
    "png": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "image/png"),
    "jpeg": (b"\xff\xd8\xff\xe0\x00\x10JFIF", "image/jpeg"),
    "gif": (b"GIF89a\x01\x00\x01\x00", "image/gif"),
    "webp": (b"RIFF\x24\x00\x00\x00WEBPVP8 ", "image/webp"),
    "avif": (b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00", "image/avif"),
    "heic": (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00", "image/heic"),
    "mp4": (b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00", "video/mp4"),
    "quicktime": (b"\x00\x00\x00\x14ftypqt  \x20\x05\x03\x00", "video/quicktime"),
    "webm": (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01", "video/webm"),
    "text": (b"hello, world", "application/octet-stream"),
    "empty": (b"", "application/octet-stream"),
    "riff-not-webp": (b"RIFF\x24\x00\x00\x00WAVEfmt ", "application/octet-stream"),
    "unknown-ftyp": (b"\x00\x00\x00\x18ftypzzzz\x00\x00\x00\x00", "application/octet-stream"),
}


@pytest.mark.parametrize("head,mime", SIGNATURES.values(), ids=SIGNATURES.keys())
def test_sniff(head: bytes, mime: str) -> None:
    assert sniff(head) == mime


@pytest.mark.parametrize("header", ["", "*/*", "application/octet-stream", " */* ; q=1"])
def test_no_named_type_leaves_it_to_the_bytes(header: str) -> None:
    assert declared_type(header) is None


def test_a_named_type_is_taken_lower_cased_without_parameters() -> None:
    assert declared_type("Image/PNG; charset=binary") == "image/png"


@pytest.mark.parametrize("header", ["image/*", "not a mime", "image"])
def test_a_malformed_type_is_refused(header: str) -> None:
    with pytest.raises(InvalidRequestError):
        declared_type(header)
