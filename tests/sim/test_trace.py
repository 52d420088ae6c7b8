from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from plaza.sim import TraceError, load_trace, parse_trace, trace_from_values
from tests.vectors import DATA

TRACES = DATA / "traces"
HEADER = "timestamp,value\n"


def test_parses_evenly_spaced_rows() -> None:
    t = parse_trace(HEADER + "2015-01-01 00:00:00,5\n2015-01-01 00:05:00,7.5\n", name="x")
    assert t.step_seconds == 300
    assert t.values.tolist() == [5.0, 7.5]


def test_missing_steps_are_zero_load() -> None:
    text = HEADER + "2015-01-01 00:00:00,1\n2015-01-01 00:05:00,2\n2015-01-01 00:20:00,3\n"
    assert parse_trace(text).values.tolist() == [1.0, 2.0, 0.0, 0.0, 3.0]


@pytest.mark.parametrize(
    ("body", "line", "words"),
    [
        ("2015-01-01 00:00:00,1\n2015-01-01 00:05:00,abc\n", 3, "not a number"),
        ("2015-01-01 00:00:00,1\n2015-01-01 00:05:00,-4\n", 3, ">= 0"),
        ("2015-01-01 00:00:00,1\n2015-01-01 00:05:00,nan\n", 3, "finite"),
        ("2015-01-01 00:00:00,1\nyesterday,2\n", 3, "bad timestamp"),
        ("2015-01-01 00:00:00,1\n2015-01-01 00:05:00,2,3\n", 3, "2 fields"),
        ("2015-01-01 00:05:00,1\n2015-01-01 00:00:00,2\n", 3, "does not come after"),
        ("2015-01-01 00:00:00,1\n2015-01-01 00:05:00,1\n2015-01-01 00:12:00,1\n", 4, "multiple"),
    ],
    ids=["text-value", "negative", "nan", "bad-time", "extra-field", "backwards", "odd-gap"],
)
def test_bad_rows_name_their_line(body: str, line: int, words: str) -> None:
    with pytest.raises(TraceError) as err:
        parse_trace(HEADER + body, name="t.csv")
    assert f"t.csv:{line}:" in err.value.message
    assert words in err.value.message
    assert err.value.code == "InvalidTrace"


def test_bad_header_and_empty() -> None:
    with pytest.raises(TraceError, match="header"):
        parse_trace("time,v\n2015-01-01 00:00:00,1\n")
    with pytest.raises(TraceError, match="empty"):
        parse_trace("")
    with pytest.raises(TraceError, match="two data rows"):
        parse_trace(HEADER + "2015-01-01 00:00:00,1\n")


def test_repair_merges_repeated_timestamps() -> None:
    text = HEADER + "2015-01-01 00:05:00,1\n2015-01-01 00:00:00,2\n2015-01-01 00:05:00,3\n"
    with pytest.raises(TraceError):
        parse_trace(text)
    assert parse_trace(text, repair=True).values.tolist() == [2.0, 4.0]


def test_loads_a_developer_trace() -> None:
    t = load_trace(TRACES / "Twitter_volume_IBM.csv")
    assert t.steps == 15893
    assert t.step_seconds == 300
    assert float(t.values.max()) == 139.0


def test_aws_trace_with_dst_repeat_needs_repair() -> None:
    path = TRACES / "ec2_network_in_5abac7.csv"
    with pytest.raises(TraceError, match="does not come after"):
        load_trace(path)
    repaired = load_trace(path, repair=True)
    assert repaired.steps > 4000
    raw = np.loadtxt(path, delimiter=",", skiprows=1, usecols=1)
    assert repaired.values.sum() == pytest.approx(raw.sum())


def test_repair_snaps_off_grid_rows() -> None:
    text = HEADER + "2015-01-01 00:00:00,1\n2015-01-01 00:05:00,1\n2015-01-01 00:11:00,2\n"
    assert parse_trace(text, repair=True).values.tolist() == [1.0, 1.0, 2.0]


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match="cannot read"):
        load_trace(tmp_path / "missing.csv")


def test_trace_from_values_validates() -> None:
    assert trace_from_values([1, 2, 3]).steps == 3
    with pytest.raises(TraceError):
        trace_from_values([1.0, -1.0])
    with pytest.raises(TraceError):
        trace_from_values(np.array([1.0]))


def test_a_millennium_of_steps_is_refused_before_allocating() -> None:
    # Two rows five minutes apart, then one a thousand years on: 105 million steps.
    text = HEADER + "2015-01-01 00:00:00,1\n2015-01-01 00:05:00,1\n3015-01-01 00:00:00,1\n"
    for repair in (False, True):
        with pytest.raises(TraceError, match="more than the 1,000,000") as err:
            parse_trace(text, name="t.csv", repair=repair)
        assert err.value.message.startswith("t.csv: the timestamps span 105,")


def test_two_rows_a_millennium_apart_are_not_a_trace() -> None:
    text = HEADER + "2015-01-01 00:00:00,1\n3015-01-01 00:00:00,1\n"
    for repair in (False, True):
        with pytest.raises(TraceError, match="longer than a day"):
            parse_trace(text, name="t.csv", repair=repair)


def test_the_step_cap_is_inclusive() -> None:
    # MAX_STEPS steps exactly is allowed (a day's step keeps the test small).
    from plaza.sim.trace import MAX_STEP_SECONDS, MAX_STEPS

    assert MAX_STEP_SECONDS == 86_400
    day = HEADER + "2015-01-01 00:00:00,1\n2015-01-02 00:00:00,2\n"
    assert parse_trace(day).step_seconds == 86_400
    last = datetime(2015, 1, 1, tzinfo=UTC) + timedelta(minutes=5 * (MAX_STEPS - 1))
    text = HEADER + "2015-01-01 00:00:00,1\n2015-01-01 00:05:00,1\n"
    ok = parse_trace(text + f"{last:%Y-%m-%d %H:%M:%S},1\n")
    assert ok.steps == MAX_STEPS
    with pytest.raises(TraceError, match="1,000,001 steps"):
        parse_trace(text + f"{last + timedelta(minutes=5):%Y-%m-%d %H:%M:%S},1\n")


def test_naive_timestamps_are_utc_and_offsets_are_converted() -> None:
    naive = parse_trace(HEADER + "2015-01-01 00:00:00,1\n2015-01-01 00:05:00,2\n")
    assert naive.start == datetime(2015, 1, 1, tzinfo=UTC)
    assert naive.start.utcoffset() == timedelta(0)
    # The same instants written in Paris time (+01:00 in winter) and with Z.
    paris = parse_trace(
        HEADER + "2015-01-01T01:00:00+01:00,1\n2015-01-01 01:05:00+0100,2\n", name="p"
    )
    assert paris.start == naive.start and paris.start.tzinfo == UTC
    assert paris.values.tolist() == naive.values.tolist()
    zulu = parse_trace(HEADER + "2015-01-01T00:00:00Z,1\n2015-01-01T00:05:00Z,2\n")
    assert zulu.start == naive.start
    # Offsets order rows by their UTC instant: the autumn daylight-saving hour written
    # with its offsets is not a repeated hour (02:30+02:00 comes before 02:00+01:00).
    dst = parse_trace(
        HEADER
        + "2015-10-25 02:00:00+02:00,1\n2015-10-25 02:30:00+02:00,2\n"
        + "2015-10-25 02:00:00+01:00,3\n2015-10-25 02:30:00+01:00,4\n"
    )
    assert dst.step_seconds == 1800
    assert dst.values.tolist() == [1.0, 2.0, 3.0, 4.0]
    assert dst.start == datetime(2015, 10, 25, 0, 0, tzinfo=UTC)
    with pytest.raises(TraceError, match="UTC offset"):
        parse_trace(HEADER + "2015-01-01 00:00:00 CET,1\n2015-01-01 00:05:00,1\n")


def test_synthetic_traces_start_in_utc() -> None:
    assert trace_from_values([1.0, 2.0]).start.tzinfo == UTC


def test_resample_sums_the_load_of_each_new_step() -> None:
    from plaza.sim.trace import resample

    t = trace_from_values([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0], step_seconds=300)
    r = resample(t, 900)
    assert r.step_seconds == 900 and r.start == t.start
    assert r.values.tolist() == [6.0, 15.0, 7.0]  # the last, partial step keeps the rest
    assert r.values.sum() == t.values.sum()
    assert resample(t, 300) is t
    fb = load_trace(TRACES / "Twitter_volume_FB.csv", repair=True)
    for step in (600, 900, 1800, 3600):
        assert resample(fb, step).values.sum() == pytest.approx(fb.values.sum())


@pytest.mark.parametrize("step", [200, 450, 2 * 86_400])
def test_resample_refuses_steps_that_do_not_divide(step: int) -> None:
    from plaza.sim.trace import resample

    t = trace_from_values([1.0] * 600, step_seconds=300)
    with pytest.raises(TraceError):
        resample(t, step)
