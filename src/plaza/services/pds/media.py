"""The media type of an uploaded blob: the client's word, or the bytes' magic number.

A client that names a type (``image/png``) is taken at its word, once the name is a
well-formed RFC 6838 type. A client that does not — no Content-Type, the wildcard
``*/*`` (which the atproto SDK sends for every upload) or ``application/octet-stream``
— gets the type its first bytes show (:func:`sniff`), as the reference PDS does.
"""

from __future__ import annotations

import re

from plaza.services.pds.errors import InvalidRequestError

OCTET_STREAM = "application/octet-stream"
SNIFF_BYTES = 64  # enough for every signature below

# Types a client may send that say "I do not know": the bytes decide.
_UNKNOWN = frozenset(("", "*/*", OCTET_STREAM))

# RFC 6838 type and subtype names; the blob is later served with this Content-Type.
_MIME = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}")

# (offset, signature, type), first match wins.
_MAGIC: tuple[tuple[int, bytes, str], ...] = (
    (0, b"\x89PNG\r\n\x1a\n", "image/png"),
    (0, b"\xff\xd8\xff", "image/jpeg"),
    (0, b"GIF87a", "image/gif"),
    (0, b"GIF89a", "image/gif"),
    (0, b"II*\x00", "image/tiff"),
    (0, b"MM\x00*", "image/tiff"),
    (0, b"BM", "image/bmp"),
    (0, b"\x1a\x45\xdf\xa3", "video/webm"),
    (0, b"OggS", "video/ogg"),
    (0, b"%PDF-", "application/pdf"),
)

# ISO base media files (``....ftyp<brand>``): the major brand names the format.
_FTYP_BRANDS = {
    b"avif": "image/avif",
    b"avis": "image/avif",
    b"heic": "image/heic",
    b"heix": "image/heic",
    b"mif1": "image/heif",
    b"msf1": "image/heif",
    b"qt  ": "video/quicktime",
    b"M4V ": "video/mp4",
    b"isom": "video/mp4",
    b"iso2": "video/mp4",
    b"mp41": "video/mp4",
    b"mp42": "video/mp4",
    b"avc1": "video/mp4",
    b"dash": "video/mp4",
}


def sniff(head: bytes) -> str:
    """The media type the leading bytes ``head`` show; ``application/octet-stream``
    when they match no known signature."""
    if head[8:12] == b"WEBP" and head[:4] == b"RIFF":
        return "image/webp"
    if head[4:8] == b"ftyp":
        return _FTYP_BRANDS.get(head[8:12], OCTET_STREAM)
    for offset, magic, mime in _MAGIC:
        if head[offset : offset + len(magic)] == magic:
            return mime
    return OCTET_STREAM


def declared_type(header: str) -> str | None:
    """The media type a Content-Type header names (parameters dropped, lower-cased), or
    None when it names none (missing, ``*/*``, ``application/octet-stream``);
    :class:`InvalidRequestError` when it is malformed."""
    mime = header.split(";", 1)[0].strip().lower()
    if mime in _UNKNOWN:
        return None
    if not _MIME.fullmatch(mime):
        raise InvalidRequestError(f"Content-Type is not a media type: {mime[:80]!r}")
    return mime


__all__ = ["OCTET_STREAM", "SNIFF_BYTES", "declared_type", "sniff"]
