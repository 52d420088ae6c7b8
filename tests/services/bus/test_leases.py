"""Partition leases in JetStream's key-value store (real NATS)."""

from __future__ import annotations

import asyncio
import time

from plaza.services.bus import Bus
from plaza.services.bus.leases import Leases
from tests.services.bus.natsutil import NATS_URL, fresh_layout


def test_one_holder_per_partition_and_a_lapsed_lease_is_free() -> None:
    with fresh_layout(partitions=4) as layout:

        async def go() -> None:
            bus = await Bus.connect(NATS_URL, layout)
            try:
                a = await Leases.open(bus, "a", ttl_s=1.0, group="g")
                b = await Leases.open(bus, "b", ttl_s=1.0, group="g")
                other = await Leases.open(bus, "a", ttl_s=1.0, group="other")
                assert await a.heartbeat() == 1
                assert await b.heartbeat() == 2
                assert await a.claim(0)
                assert not await b.claim(0)
                # another group's workers and partitions are its own
                assert await other.heartbeat() == 1
                assert await other.claim(0)
                assert await other.holders() == {0: "a"}
                await other.leave()
                assert await a.renew(0)
                assert await b.claim(1)
                assert await a.holders() == {0: "a", 1: "b"}
                await b.release(1)
                assert await a.claim(1)
                # a stops renewing: its leases lapse and b takes them
                deadline = time.monotonic() + 10
                while not await b.claim(0):
                    assert time.monotonic() < deadline, "the lease never lapsed"
                    await asyncio.sleep(0.1)
                assert (await a.holders()).get(0) == "b"
                assert not await a.renew(0)  # a finds it lost (b holds it)
                assert 0 not in a.held
                await b.leave()
                assert await a.holders() == {}
            finally:
                await bus.close()

        asyncio.run(go())
