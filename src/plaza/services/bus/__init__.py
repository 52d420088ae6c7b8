"""The event bus: the relay's events on NATS JetStream, partitioned by account, for
the app view's indexers and the labeler's workers, each run as many processes that
share the partitions (:class:`PartitionWorker`, docs/deployment.md)."""

from plaza.services.bus.client import Bus
from plaza.services.bus.layout import BusLayout, partition_of
from plaza.services.bus.worker import PartitionWorker

__all__ = ["Bus", "BusLayout", "PartitionWorker", "partition_of"]
