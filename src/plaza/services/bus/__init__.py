"""The event bus: the relay's events on NATS JetStream, partitioned by account, for
indexers that run as many processes (docs/deployment.md)."""

from plaza.services.bus.client import Bus
from plaza.services.bus.layout import BusLayout, partition_of

__all__ = ["Bus", "BusLayout", "partition_of"]
