"""The bus's sans-IO part: partitions, subjects, headers, URLs."""

from __future__ import annotations

import pytest

from plaza.services.bus.errors import BadBusMessageError, BadBusUrlError
from plaza.services.bus.layout import BusLayout, check_url, headers, partition_of, seq_of


def test_partition_is_stable_and_in_range() -> None:
    dids = [f"did:plc:{i:024d}" for i in range(2000)]
    parts = [partition_of(d, 16) for d in dids]
    assert all(0 <= p < 16 for p in parts)
    assert parts == [partition_of(d, 16) for d in dids]  # the same on every call
    # known values: every process and every version must agree on them
    assert partition_of("did:plc:abc", 16) == 15
    assert partition_of("did:plc:ewvi7nxzyoun6zhxrhs64oiz", 1024) == 530
    assert len(set(parts)) == 16  # 2000 accounts reach every partition
    counts = [parts.count(p) for p in range(16)]
    assert min(counts) > 2000 / 16 / 2  # and roughly evenly


def test_one_account_one_subject() -> None:
    layout = BusLayout("PLAZA_FIREHOSE", 8)
    did = "did:plc:ewvi7nxzyoun6zhxrhs64oiz"
    assert layout.subject_for(did) == layout.subject(partition_of(did, 8))
    assert layout.subject_for(did).startswith("plaza.plaza_firehose.")
    assert layout.subjects == "plaza.plaza_firehose.*"
    assert layout.consumer("appview", 3) == "appview-p3"
    assert layout.source(3) == "bus:PLAZA_FIREHOSE:3"


def test_headers_round_trip() -> None:
    hdrs = headers(42, "did:plc:x")
    assert hdrs["Nats-Msg-Id"] == "42"
    assert seq_of(hdrs) == 42


@pytest.mark.parametrize("hdrs", [None, {}, {"Plaza-Seq": "x"}, {"Plaza-Seq": "-1"}])
def test_a_message_without_a_sequence_is_refused(hdrs: dict[str, str] | None) -> None:
    with pytest.raises(BadBusMessageError):
        seq_of(hdrs)


@pytest.mark.parametrize("url", ["nats://127.0.0.1:4222", "nats://a:1,nats://b:2", "tls://h"])
def test_bus_urls(url: str) -> None:
    assert check_url(url) == url


@pytest.mark.parametrize("url", ["http://h:4222", "nats://", "nats://h:99999", "nats://h/x", ""])
def test_bad_bus_urls(url: str) -> None:
    with pytest.raises(BadBusUrlError):
        check_url(url)


@pytest.mark.parametrize(("stream", "partitions"), [("a b", 4), ("", 4), ("ok", 0), ("ok", 5000)])
def test_bad_layouts(stream: str, partitions: int) -> None:
    with pytest.raises(BadBusUrlError):
        BusLayout(stream, partitions)
