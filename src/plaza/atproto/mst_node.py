"""Merkle Search Tree nodes: keys, heights, and the node block codec.

A node is ``{l: link|null, e: [{p: int, k: bytes, v: link, t: link|null}]}``. Its keys
are held in memory as ``str`` (MST keys are ASCII repository paths) together with the
record CIDs (``vals``) and the ``len(keys) + 1`` subtree references around them
(``subs[0]`` is ``l``, ``subs[i + 1]`` is entry ``i``'s ``t``).

Decoding uses ``libipld.decode_dag_cbor`` because it is about 25x faster than the
pure-Python decoder, but libipld hands CID links back as plain ``bytes`` and tolerates
some shapes the schema forbids. So every field of a decoded node is checked against the
schema, and the node is then encoded again and the bytes compared with the input: a
link where bytes belong (or the reverse), a non-maximal prefix, an extra field or any
other non-canonical encoding changes the bytes and is refused (:func:`decode_node`
says why libipld's encoder is exact there). The encoder writes the fixed schema directly (map keys
``e`` < ``l`` and ``k`` < ``p`` < ``t`` < ``v`` are already in DAG-CBOR order); a test
checks it against :func:`plaza.atproto.cbor.encode` on random nodes. It never guesses
which bytes are links: links are :class:`~plaza.atproto.cid.CID` objects.
"""

from __future__ import annotations

import hashlib
import re
from typing import Final, TypeAlias

import libipld

from plaza.atproto.cid import CID, CID_LENGTH, DAG_CBOR, RAW
from plaza.atproto.errors import MstError

MAX_KEY_LENGTH: Final = 1024
"""Longest accepted key in bytes (an NSID is at most 317 and a record key 512)."""

MAX_NODE_ENTRIES: Final = 1024
"""Most entries accepted in one node. With fanout 4 a run of 1,024 same-height keys has
probability about 4^-400; only mined keys get there, and they cost quadratic work."""

MAX_NODE_BYTES: Final = 2 * 1024 * 1024

# two non-empty segments of the allowed characters, neither of them "." or ".."
_KEY_RE: Final = re.compile(r"(?!\.\.?/)[A-Za-z0-9._:~-]+/(?!\.\.?$)[A-Za-z0-9._:~-]+")

# Leading zero bits of a byte, divided by two: the height contribution of one byte.
_LZ2: Final = tuple((8 - b.bit_length()) // 2 for b in range(256))

_LINK: Final = b"\xd8\x2a\x58\x25\x00"
_NULL: Final = b"\xf6"


def validate_key(key: str) -> None:
    """Raise :class:`MstError` unless ``key`` is a valid MST key.

    A key is ``<collection>/<rkey>``: exactly two non-empty segments of the characters
    ``A-Za-z0-9._:~-``, neither of them ``.`` or ``..``, at most
    :data:`MAX_KEY_LENGTH` bytes. This is the structural rule of the repository spec;
    whether the collection is a valid NSID is the repository layer's business.
    """
    if not isinstance(key, str):
        raise MstError(f"MST key must be a string, got {type(key).__name__}")
    if len(key) > MAX_KEY_LENGTH or _KEY_RE.fullmatch(key) is None:
        raise MstError(f"invalid MST key: {key[:100]!r}")


def key_height(key: str) -> int:
    """The MST depth of ``key``: leading zero bits of SHA-256(key), divided by 2."""
    return _height(key.encode("utf-8"))


def _height(key: bytes) -> int:
    digest = hashlib.sha256(key).digest()
    height = 0
    for b in digest:
        if b:
            return height + _LZ2[b]
        height += 4
    return height


def common_prefix_len(a: bytes, b: bytes) -> int:
    """Number of leading bytes ``a`` and ``b`` share."""
    n = min(len(a), len(b))
    if a[:n] == b[:n]:
        return n
    x = int.from_bytes(a[:n], "big") ^ int.from_bytes(b[:n], "big")
    return n - (x.bit_length() + 7) // 8


class Node:
    """One MST node, immutable once built.

    ``height`` is the height shared by all its keys, or -1 for a node without keys (its
    layer is then known only from its parent). ``cid`` and ``data`` are filled when the
    node is encoded (or were known when it was loaded) and never change afterwards.
    """

    __slots__ = ("cid", "data", "height", "keys", "subs", "vals")

    keys: tuple[str, ...]
    vals: tuple[CID, ...]
    subs: tuple[Ref, ...]
    height: int
    cid: CID | None
    data: bytes | None

    def __init__(  # noqa: PLR0917 - built on every write; positional is the fast path
        self,
        keys: tuple[str, ...],
        vals: tuple[CID, ...],
        subs: tuple[Ref, ...],
        height: int,
        cid: CID | None = None,
        data: bytes | None = None,
    ) -> None:
        self.keys = keys
        self.vals = vals
        self.subs = subs
        self.height = height
        self.cid = cid
        self.data = data

    def __repr__(self) -> str:
        return f"Node(height={self.height}, keys={len(self.keys)}, cid={self.cid})"


Ref: TypeAlias = CID | Node | None
"""A subtree reference: ``None`` (no subtree), a :class:`CID` of a stored node, or a
:class:`Node` built in memory (not yet stored)."""


def _head(major: int, n: int) -> bytes:
    m = major << 5
    if n < 24:
        return bytes((m | n,))
    if n < 0x100:
        return bytes((m | 24, n))
    if n < 0x10000:
        return bytes((m | 25,)) + n.to_bytes(2, "big")
    return bytes((m | 26,)) + n.to_bytes(4, "big")


def ref_cid(ref: Ref) -> CID | None:
    """The CID a reference points to; a :class:`Node` must have been encoded first."""
    if ref is None or type(ref) is CID:
        return ref
    assert isinstance(ref, Node)
    cid = ref.cid
    if cid is None:
        raise AssertionError("node referenced before it was encoded")
    return cid


def encode_node(keys: tuple[str, ...], vals: tuple[CID, ...], links: list[CID | None]) -> bytes:
    """The DAG-CBOR bytes of a node; ``links[0]`` is ``l``, ``links[i + 1]`` entry i's ``t``.

    libipld writes them when that is exact: links as their bytes (which it writes as
    links) and key suffixes that cannot parse as a CID (empty, or starting with one of
    the key characters, ``-`` to ``~``: no CID version and not CIDv0's 0x12). Any other
    node is written by :func:`_encode_node`, the schema written out by hand.
    """
    entries = []
    prev = b""
    for i, key in enumerate(keys):
        kb = key.encode("utf-8")
        p = common_prefix_len(prev, kb)
        suffix = kb[p:]
        if suffix and not 0x2D <= suffix[0] <= 0x7E:
            return _encode_node(keys, vals, links)
        t = links[i + 1]
        entries.append({"k": suffix, "p": p, "t": None if t is None else t.raw, "v": vals[i].raw})
        prev = kb
    left = links[0]
    out: bytes = libipld.encode_dag_cbor({"e": entries, "l": None if left is None else left.raw})
    return out


def _encode_node(keys: tuple[str, ...], vals: tuple[CID, ...], links: list[CID | None]) -> bytes:
    """:func:`encode_node` for any keys: the fixed schema written directly."""
    out = bytearray(b"\xa2\x61e")
    out += _head(4, len(keys))
    prev = b""
    for i, key in enumerate(keys):
        kb = key.encode("utf-8")
        p = common_prefix_len(prev, kb)
        suffix = kb[p:]
        out += b"\xa4\x61k"
        out += _head(2, len(suffix))
        out += suffix
        out += b"\x61p"
        out += _head(0, p)
        out += b"\x61t"
        t = links[i + 1]
        if t is None:
            out += _NULL
        else:
            out += _LINK
            out += t.raw
        out += b"\x61v"
        out += _LINK
        out += vals[i].raw
        prev = kb
    out += b"\x61l"
    left = links[0]
    if left is None:
        out += _NULL
    else:
        out += _LINK
        out += left.raw
    return bytes(out)


_NODE_LINK: Final = bytes((0x01, DAG_CBOR, 0x12, 0x20))
_RECORD_LINKS: Final = frozenset({_NODE_LINK, bytes((0x01, RAW, 0x12, 0x20))})
_NODE_FIELDS: Final = frozenset({"e", "l"})
_ENTRY_FIELDS: Final = frozenset({"k", "p", "t", "v"})


def _link(value: object, what: str, *, node: bool) -> CID:
    # libipld has already parsed this as a CID; only atproto's subset is accepted here
    if type(value) is not bytes or len(value) != CID_LENGTH:
        raise MstError(f"MST node field {what} must be a supported CID link")
    prefix = value[:4]
    if prefix != _NODE_LINK and (node or prefix not in _RECORD_LINKS):
        raise MstError(f"MST node field {what} links an unsupported CID type")
    return CID._trusted(value)


def decode_node(cid: CID, data: bytes) -> Node:
    """Decode and strictly validate one node block (its hash is the caller's concern).

    Checks the exact schema, key syntax and strict order, equal key heights, no subtrees
    under height 0, the entry limit, and canonical bytes. A node without entries and
    without ``l`` is returned as is: only the caller knows whether it is the root of an
    empty tree (the one place it is allowed).

    Canonical bytes: once every field has its schema type, libipld encodes the decoded
    value again and the bytes must be the input's. That is exact because libipld writes
    a byte string as a link exactly when it parses as a CID: the links were checked to
    be atproto CIDs, and a key suffix (only the key characters, never 0x01 or 0x12)
    cannot parse as one. So a link written as bytes, or bytes written as a link, a
    non-minimal length or any other non-canonical form changes the bytes and is refused.
    """
    if len(data) > MAX_NODE_BYTES:
        raise MstError(f"MST node {cid} is larger than {MAX_NODE_BYTES} bytes")
    try:
        value = libipld.decode_dag_cbor(data)
    except (ValueError, RecursionError, TypeError, OverflowError) as exc:
        raise MstError(f"MST node {cid} is not valid DAG-CBOR: {exc}") from exc
    if type(value) is not dict or value.keys() != _NODE_FIELDS:
        raise MstError(f"MST node {cid} must be a map with exactly the fields e and l")
    entries = value["e"]
    if type(entries) is not list:
        raise MstError(f"MST node {cid}: e must be an array")
    if len(entries) > MAX_NODE_ENTRIES:
        raise MstError(f"MST node {cid} has {len(entries)} entries (limit {MAX_NODE_ENTRIES})")
    left = value["l"]
    links: list[CID | None] = [None if left is None else _link(left, "l", node=True)]
    keys: list[str] = []
    vals: list[CID] = []
    trusted = CID._trusted
    prev = b""
    last = ""
    height = -1
    for entry in entries:
        if type(entry) is not dict or entry.keys() != _ENTRY_FIELDS:
            raise MstError(f"MST node {cid}: entry must have exactly the fields k, p, t, v")
        p = entry["p"]
        suffix = entry["k"]
        if type(p) is not int or type(suffix) is not bytes or not 0 <= p <= len(prev):
            raise MstError(f"MST node {cid}: bad key prefix or suffix")
        if p < len(prev) and suffix and suffix[0] == prev[p]:
            raise MstError(f"MST node {cid}: key prefix is not maximal")
        kb = prev[:p] + suffix if p else suffix
        try:
            key = kb.decode("ascii")
        except UnicodeDecodeError as exc:
            raise MstError(f"MST node {cid}: key is not ASCII") from exc
        if len(kb) > MAX_KEY_LENGTH or _KEY_RE.fullmatch(key) is None:
            raise MstError(f"invalid MST key: {key[:100]!r}")
        if keys and key <= last:
            raise MstError(f"MST node {cid}: keys out of order at {key!r}")
        first = hashlib.sha256(kb).digest()[0]
        h = _LZ2[first] if first else _height(kb)
        if height == -1:
            height = h
        elif h != height:
            raise MstError(f"MST node {cid}: key {key!r} has height {h}, expected {height}")
        t = entry["t"]
        if t is None:
            links.append(None)
        elif type(t) is bytes and len(t) == CID_LENGTH and t[:4] == _NODE_LINK:
            links.append(trusted(t))
        else:
            links.append(_link(t, "t", node=True))
        v = entry["v"]
        if type(v) is bytes and len(v) == CID_LENGTH and v[:4] in _RECORD_LINKS:
            vals.append(trusted(v))
        else:
            vals.append(_link(v, "v", node=False))
        keys.append(key)
        last = key
        prev = kb
    if libipld.encode_dag_cbor(value) != data:
        raise MstError(f"MST node {cid} is not canonically encoded")
    if height == 0 and any(link is not None for link in links):
        raise MstError(f"MST node {cid}: a height-0 node cannot have subtrees")
    return Node(tuple(keys), tuple(vals), tuple(links), height, cid, data)
