"""The relay's stream onto the bus (real NATS): every durable event published in order,
and a restarted publisher resumes after what the stream holds, adding no copy."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from plaza.services.bus import Bus
from plaza.services.bus.layout import partition_of
from plaza.services.relay.bus_publisher import BusPublisher
from plaza.services.relay.outbox import Outbox
from plaza.services.relay.store import RelayStore
from tests.services.bus.natsutil import NATS_URL, fresh_layout

DIDS = [f"did:plc:acct{i:020d}" for i in range(7)]


def _emit(outbox: Outbox, first: int, count: int) -> None:
    for k in range(first, first + count):
        outbox.emit(DIDS[k % len(DIDS)], "#identity", {"did": DIDS[k % len(DIDS)], "n": k})
    outbox.flush()


def test_publishes_durable_events_and_resumes_without_copies(tmp_path: Path) -> None:
    with fresh_layout(partitions=3) as layout:

        async def go() -> None:
            store = RelayStore.open(f"sqlite://{tmp_path / 'relay.db'}")
            outbox = Outbox(store)
            bus = await Bus.connect(NATS_URL, layout)
            try:
                await bus.ensure_stream(10_000)
                _emit(outbox, 0, 120)
                outbox.emit(DIDS[0], "#identity", {"did": DIDS[0]})  # not flushed yet
                publisher = BusPublisher(outbox, bus)
                task = asyncio.create_task(publisher.run())
                await asyncio.wait_for(publisher.published_up_to(120), 20)
                assert await bus.last_seq() == 120  # the unflushed event is not out
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                outbox.flush()
                _emit(outbox, 121, 40)
                again = BusPublisher(outbox, bus)  # as after a restart
                task = asyncio.create_task(again.run())
                await asyncio.wait_for(again.published_up_to(161), 20)
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                info = await bus.js.stream_info(layout.stream)
                assert info.state.messages == 161
                rows = store.events_after(0, 500)
                assert [r.seq for r in rows] == list(range(1, 162))
                for row in rows:  # stream order is the relay's; each on its DID's partition
                    msg = await bus.js.get_msg(layout.stream, row.seq)
                    assert msg.subject == layout.subject(partition_of(row.did, 3))
                    assert msg.data == row.frame
            finally:
                await bus.close()
                store.close()

        asyncio.run(go())
