"""Publishing to JetStream (real NATS): each partition keeps its accounts' order, a
publish sent twice is stored once, and the publisher finds where it stopped."""

from __future__ import annotations

import asyncio

from nats.js.api import AckPolicy, ConsumerConfig

from plaza.services.bus import Bus, BusLayout, partition_of
from plaza.services.bus.layout import seq_of
from tests.services.bus.natsutil import NATS_URL, fresh_layout

DIDS = [f"did:plc:acct{i:020d}" for i in range(12)]


def _events(first: int, count: int) -> list[tuple[int, str, bytes]]:
    return [(s, DIDS[s % len(DIDS)], f"frame {s}".encode()) for s in range(first, first + count)]


async def _read_partition(bus: Bus, layout: BusLayout, p: int) -> list[tuple[int, str]]:
    sub = await bus.js.pull_subscribe(
        layout.subject(p),
        durable=f"read-p{p}",
        stream=layout.stream,
        config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT),
    )
    out: list[tuple[int, str]] = []
    while True:
        try:
            msgs = await sub.fetch(100, timeout=0.5)
        except TimeoutError:
            return out
        for m in msgs:
            assert m.data == f"frame {seq_of(m.headers)}".encode()
            out.append((seq_of(m.headers), (m.headers or {})["Plaza-Did"]))
            await m.ack()


def test_partitions_keep_order_and_a_second_publish_adds_nothing() -> None:
    with fresh_layout(partitions=4) as layout:

        async def go() -> None:
            bus = await Bus.connect(NATS_URL, layout)
            try:
                await bus.ensure_stream(10_000)
                assert await bus.last_seq() == 0
                await bus.publish(_events(1, 300))
                await bus.publish(_events(201, 100))  # a retry overlapping the end
                await bus.publish(_events(301, 50))
                assert await bus.last_seq() == 350
                info = await bus.js.stream_info(layout.stream)
                assert info.state.messages == 350  # the overlap was dropped as duplicates
                seen: list[int] = []
                for p in range(4):
                    got = await _read_partition(bus, layout, p)
                    assert all(partition_of(did, 4) == p for _, did in got)
                    seqs = [s for s, _ in got]
                    assert seqs == sorted(seqs)  # the relay's order, per partition
                    seen += seqs
                assert sorted(seen) == list(range(1, 351))
            finally:
                await bus.close()

        asyncio.run(go())


def test_the_stream_keeps_the_replay_window() -> None:
    with fresh_layout(partitions=2) as layout:

        async def go() -> None:
            bus = await Bus.connect(NATS_URL, layout)
            try:
                await bus.ensure_stream(100)
                await bus.publish(_events(1, 250))
                info = await bus.js.stream_info(layout.stream)
                assert info.state.messages == 100
                assert await bus.last_seq() == 250
                await bus.ensure_stream(1000)  # a wider window applies to the stream
                info = await bus.js.stream_info(layout.stream)
                assert info.config.max_msgs == 1000
            finally:
                await bus.close()

        asyncio.run(go())
