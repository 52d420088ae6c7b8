"""TIDs: encoding, the vectors, and the monotonic generator."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plaza.atproto.errors import InvalidSyntaxError
from plaza.atproto.syntax import validate_tid
from plaza.atproto.tid import (
    MAX_CLOCK_ID,
    MAX_TIMESTAMP,
    TidClock,
    decode_tid,
    encode_tid,
    int_to_tid,
    tid_after,
    tid_timestamp,
    tid_to_int,
)
from tests.vectors import load_lines, params

TIMESTAMPS = st.integers(min_value=0, max_value=MAX_TIMESTAMP)
CLOCK_IDS = st.integers(min_value=0, max_value=MAX_CLOCK_ID)


@pytest.mark.parametrize(
    "tid", params(load_lines("atproto-interop", "syntax", "tid_syntax_valid.txt"))
)
def test_valid_vectors_decode_and_re_encode(tid: str) -> None:
    assert int_to_tid(tid_to_int(tid)) == tid
    ts, clock_id = decode_tid(tid)
    assert encode_tid(ts, clock_id) == tid


@pytest.mark.parametrize(
    "tid", params(load_lines("atproto-interop", "syntax", "tid_syntax_invalid.txt"), repr)
)
def test_invalid_vectors_do_not_decode(tid: str) -> None:
    with pytest.raises(InvalidSyntaxError):
        decode_tid(tid)


def test_spec_examples() -> None:
    assert encode_tid(0, 0) == "2222222222222"  # the TID of integer zero
    assert tid_to_int("2222222222222") == 0
    top = encode_tid(MAX_TIMESTAMP, MAX_CLOCK_ID)
    assert validate_tid(top) == top and tid_to_int(top) == 2**63 - 1


@pytest.mark.parametrize(
    ("ts", "clock_id"), [(-1, 0), (MAX_TIMESTAMP + 1, 0), (0, -1), (0, 1024), (True, 0), (0.5, 1)]
)
def test_encode_range_checked(ts: object, clock_id: object) -> None:
    with pytest.raises(InvalidSyntaxError):
        encode_tid(ts, clock_id)  # type: ignore[arg-type]


@given(TIMESTAMPS, CLOCK_IDS)
def test_encode_decode_round_trip(ts: int, clock_id: int) -> None:
    tid = encode_tid(ts, clock_id)
    assert len(tid) == 13 and validate_tid(tid) == tid
    assert decode_tid(tid) == (ts, clock_id)
    assert tid_timestamp(tid) == ts


@given(TIMESTAMPS, CLOCK_IDS, TIMESTAMPS, CLOCK_IDS)
def test_string_order_is_numeric_order(ts1: int, c1: int, ts2: int, c2: int) -> None:
    a, b = encode_tid(ts1, c1), encode_tid(ts2, c2)
    assert (a < b) == ((ts1, c1) < (ts2, c2))


def _clock(readings: list[int]) -> TidClock:
    it = iter(readings)
    return TidClock(lambda: next(it), clock_id=7)


@given(st.lists(st.integers(min_value=0, max_value=2**40), min_size=1, max_size=50))
def test_clock_strictly_increases_whatever_the_clock_does(readings: list[int]) -> None:
    clock = _clock(readings)
    tids = [clock.next() for _ in readings]
    assert tids == sorted(set(tids))
    for tid, now in zip(tids, readings, strict=True):
        assert tid_timestamp(tid) >= now  # never behind the clock
        assert decode_tid(tid)[1] == 7


def test_clock_follows_the_clock_when_it_moves_forward() -> None:
    clock = _clock([100, 200, 200, 150, 300])
    assert [tid_timestamp(clock.next()) for _ in range(5)] == [100, 200, 201, 202, 300]


@given(st.integers(min_value=0, max_value=2**40), TIMESTAMPS, CLOCK_IDS, CLOCK_IDS)
def test_tid_after_beats_any_tid(now: int, ts: int, their_id: int, our_id: int) -> None:
    other = encode_tid(min(ts, MAX_TIMESTAMP - 2), their_id)
    after = tid_after(other, now, our_id)
    assert after > other and tid_timestamp(after) >= now
    assert decode_tid(after)[1] == our_id


def test_tid_after_uses_the_same_microsecond_when_the_clock_id_wins() -> None:
    other = encode_tid(1000, 5)
    assert decode_tid(tid_after(other, 0, 9)) == (1000, 9)
    assert decode_tid(tid_after(other, 0, 5)) == (1001, 5)
    assert decode_tid(tid_after(other, 0, 1)) == (1001, 1)


def test_no_tid_follows_the_largest() -> None:
    with pytest.raises(InvalidSyntaxError, match="exhausted"):
        tid_after(encode_tid(MAX_TIMESTAMP, MAX_CLOCK_ID), 0, 5)


def test_a_shared_clock_has_no_way_in_for_a_foreign_tid() -> None:
    """A generator is moved only by its own clock and floor: computing a repository's
    next rev above a far-future TID leaves it issuing TIDs at the clock's time."""
    clock = TidClock(lambda: 1_000, 3)
    far = encode_tid(MAX_TIMESTAMP, MAX_CLOCK_ID - 1)
    assert decode_tid(tid_after(far, 1_000, MAX_CLOCK_ID)) == (MAX_TIMESTAMP, MAX_CLOCK_ID)
    assert tid_timestamp(clock.next()) == 1_000


def test_floor_and_pure_helper() -> None:
    floor = encode_tid(5_000, 3)
    assert TidClock(lambda: 10, 3, floor=floor).next() == encode_tid(5_001, 3)
    assert tid_after(floor, 9_000, 3) == encode_tid(9_000, 3)
    assert tid_after(floor, 10, 3) == encode_tid(5_001, 3)


def test_clock_errors() -> None:
    with pytest.raises(InvalidSyntaxError):
        TidClock(lambda: 0, 1024)
    with pytest.raises(TypeError):
        TidClock(lambda: 1.5, 1).next()  # type: ignore[arg-type, return-value]
    with pytest.raises(InvalidSyntaxError, match="exhausted"):
        TidClock(lambda: MAX_TIMESTAMP + 1, 1).next()


def test_clock_is_safe_across_threads() -> None:
    clock = TidClock(lambda: 1_700_000_000_000_000, 42)  # a stalled clock
    results: list[list[str]] = [[], []]

    def run(out: list[str]) -> None:
        out.extend(clock.next() for _ in range(2000))

    threads = [threading.Thread(target=run, args=(out,)) for out in results]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r == sorted(r) for r in results)
    assert len(set(results[0]) | set(results[1])) == 4000
