"""CAR v1: strict reading of every vector CAR, round trips, and hostile files."""

from __future__ import annotations

import contextlib
from pathlib import Path

import libipld
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plaza.atproto import cbor
from plaza.atproto.car import (
    CarDecoder,
    car_chunks,
    car_header,
    car_section,
    encode_varint,
    iter_car,
    read_car,
    write_car,
)
from plaza.atproto.cid import CID, RAW
from plaza.atproto.errors import BlockHashMismatchError, CarError, CarRootError
from plaza.errors import PlazaError
from tests.vectors import params, vector_path

CAR_DIR = vector_path("indigo-testdata", "repo-car")
CARS = sorted(CAR_DIR.glob("*.car"))


@pytest.mark.parametrize("path", params(CARS, lambda p: p.name))
def test_vector_cars_read_and_match_libipld(path: Path) -> None:
    data = path.read_bytes()
    car = read_car(data)
    header, blocks = libipld.decode_car(data)
    assert [c.raw for c in car.roots] == header["roots"]
    assert set(c.raw for c in car.blocks) == set(blocks)
    for cid, block in car.blocks.items():
        assert cid.matches(block)
        assert libipld.decode_dag_cbor(block) == blocks[cid.raw]


@pytest.mark.parametrize("path", params(CARS, lambda p: p.name))
def test_vector_cars_round_trip_and_stream(path: Path) -> None:
    car = read_car(path.read_bytes())
    again = write_car(car.roots, car.blocks.items())
    assert read_car(again).blocks == car.blocks
    chunks = [again[i : i + 97] for i in range(0, len(again), 97)]
    stream = iter_car(chunks)
    assert stream.roots == car.roots
    assert dict(stream) == car.blocks


def _blocks(n: int) -> list[tuple[CID, bytes]]:
    out = []
    for i in range(n):
        data = cbor.encode({"i": i, "pad": "x" * i})
        out.append((CID.compute(data), data))
    return out


@settings(max_examples=100, deadline=None)
@given(
    values=st.lists(st.binary(max_size=200), max_size=20),
    raw_codec=st.booleans(),
    dup=st.booleans(),
)
def test_write_then_read_gives_the_same_blocks(
    values: list[bytes], raw_codec: bool, dup: bool
) -> None:
    blocks = [
        (
            CID.compute(v, RAW) if raw_codec else CID.compute(cbor.encode(v)),
            v if raw_codec else cbor.encode(v),
        )
        for v in values
    ]
    root = blocks[0][0] if blocks else CID.compute(b"root", RAW)
    written = blocks + (blocks[:1] if dup else [])
    car = read_car(write_car([root], written))
    assert car.roots == [root]
    assert car.blocks == dict(blocks)
    assert list(car.blocks) == list(dict(blocks))  # file order, first copy kept


def test_tampered_block_names_the_cid() -> None:
    blocks = _blocks(5)
    data = bytearray(write_car([blocks[0][0]], blocks))
    data[-3] ^= 0x01  # inside the last block
    with pytest.raises(BlockHashMismatchError, match=str(blocks[-1][0])):
        read_car(bytes(data))


def test_truncation_is_refused_everywhere() -> None:
    blocks = _blocks(3)
    chunks = list(car_chunks([blocks[0][0]], blocks))
    data = b"".join(chunks)
    boundaries = {sum(len(c) for c in chunks[: i + 1]) for i in range(len(chunks))}
    for cut in range(len(data)):
        if cut in boundaries:  # a CAR cut between sections is a valid, shorter CAR
            assert len(read_car(data[:cut]).blocks) == len([b for b in boundaries if b <= cut]) - 1
            continue
        with pytest.raises(CarError):
            read_car(data[:cut])


def _car_with_header(header: bytes, blocks: list[tuple[CID, bytes]] = ()) -> bytes:  # type: ignore[assignment]
    return encode_varint(len(header)) + header + b"".join(car_section(c, b) for c, b in blocks)


@pytest.mark.parametrize(
    ("name", "header", "error"),
    [
        ("version-2", {"version": 2, "roots": []}, CarError),
        ("no-roots", {"version": 1, "roots": []}, CarRootError),
        ("root-not-link", {"version": 1, "roots": ["bafy"]}, CarRootError),
        ("extra-field", {"version": 1, "roots": [], "x": 1}, CarError),
        ("not-a-map", [1], CarError),
        ("version-bool", {"version": True, "roots": []}, CarError),
    ],
)
def test_bad_headers(name: str, header: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        read_car(_car_with_header(cbor.encode(header)))


def test_one_root_headers_read_alike_on_both_paths() -> None:
    link = CID.compute(b"block")
    raw_link = CID.compute(b"blob", RAW)
    for roots in ([link], [raw_link], [link, raw_link]):
        header = cbor.encode({"version": 1, "roots": roots})
        assert read_car(_car_with_header(header)).roots == roots
    one = cbor.encode({"version": 1, "roots": [link]})
    # the same bytes with an unsupported CID in place of the link: the strict path refuses
    bad = one.replace(link.raw, b"\x01\x70" + link.raw[2:])
    with pytest.raises(CarError):
        read_car(_car_with_header(bad))


def test_non_minimal_varint_is_refused() -> None:
    blocks = _blocks(1)
    header = car_header([blocks[0][0]])
    cid, block = blocks[0]
    body = cid.raw + block
    length = len(body)
    padded = bytes([(length & 0x7F) | 0x80, length >> 7 | 0x80, 0x00])  # over-long form
    with pytest.raises(CarError, match="varint"):
        read_car(header + padded + body)


def test_unsupported_cids_are_refused() -> None:
    cid, block = _blocks(1)[0]
    header = car_header([cid])
    v0 = b"\x12\x20" + cid.digest  # CIDv0
    for bad in (
        v0 + block,
        b"\x01\x70\x12\x20" + cid.digest + block,
        b"\x01\x71\x13\x20" + cid.digest + block,
    ):
        with pytest.raises(CarError, match="CID"):
            read_car(header + encode_varint(len(bad)) + bad)


def test_size_limits() -> None:
    cid, block = _blocks(1)[0]
    data = write_car([cid], [(cid, block)])
    with pytest.raises(CarError, match="limit"):
        read_car(data, max_total_bytes=len(data) - 1)
    big = b"\x00" * 100
    with pytest.raises(CarError, match="out of range"):
        read_car(write_car([cid], [(CID.compute(big, RAW), big)]), max_block_bytes=50)
    # a section that claims an absurd length is refused before anything is buffered
    with pytest.raises(CarError, match="out of range"):
        read_car(car_header([cid]) + encode_varint(2**40) + b"\x01")


def test_decoder_reports_truncated_streams() -> None:
    blocks = _blocks(2)
    data = write_car([blocks[0][0]], blocks)
    dec = CarDecoder()
    got = dec.feed(data[:-1])
    assert len(got) == 1
    with pytest.raises(CarError, match="truncated"):
        dec.close()
    with pytest.raises(CarError, match="header"):
        CarDecoder().close()


def test_writer_needs_a_root_and_streams() -> None:
    with pytest.raises(CarRootError):
        write_car([], [])
    blocks = _blocks(3)
    chunks = list(car_chunks([blocks[0][0]], blocks))
    assert len(chunks) == 4
    assert b"".join(chunks) == write_car([blocks[0][0]], blocks)


@settings(max_examples=400, deadline=None)
@given(data=st.binary(max_size=400))
def test_malformed_bytes_raise_plaza_errors(data: bytes) -> None:
    with contextlib.suppress(PlazaError):
        read_car(data)


@settings(max_examples=200, deadline=None)
@given(pos=st.integers(0, 10**6), byte=st.integers(0, 255))
def test_corrupted_real_car_raises_plaza_errors_or_reads(pos: int, byte: int) -> None:
    data = bytearray((CAR_DIR / "greenground.repo.car").read_bytes())
    data[pos % len(data)] = byte
    with contextlib.suppress(PlazaError):
        car = read_car(bytes(data))
        for cid, block in car.blocks.items():
            assert cid.matches(block)
