"""Where events go on the bus: partitions, subjects, consumers, message headers.

Theory of operation. The relay's events are split into :attr:`BusLayout.partitions`
partitions by a stable hash of the account's DID (:func:`partition_of`, BLAKE2b, so
every process and every version agrees), and partition ``p`` is the subject
``<prefix>.<p>`` of one JetStream stream. One account's events therefore land on one
subject in the relay's order, and the stream keeps each subject's order.

Each message is one firehose frame, unchanged, with three headers:
``Nats-Msg-Id`` (the relay's sequence number: JetStream drops a second publish of the
same id inside its duplicate window, so a relay that retries a publish adds nothing),
``Plaza-Seq`` (the same number, read back to resume publishing) and ``Plaza-Did``.

Consumers are durable, one per partition and group (``<group>-p<p>``: the app view's
indexers and the labeler's workers each read every partition), and a worker owns a
partition for its group while it holds the group's lease on it in the key-value bucket
``<stream>_leases`` (see :mod:`plaza.services.bus.leases`). Nothing here does I/O.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from plaza.services.bus.errors import BadBusMessageError, BadBusUrlError

DEFAULT_STREAM: Final = "PLAZA_FIREHOSE"
DEFAULT_PARTITIONS: Final = 16
MAX_PARTITIONS: Final = 1024
MSG_ID: Final = "Nats-Msg-Id"
SEQ_HEADER: Final = "Plaza-Seq"
DID_HEADER: Final = "Plaza-Did"
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_GROUP = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


def partition_of(did: str, partitions: int) -> int:
    """The partition of ``did``'s events: a stable hash of the DID, mod ``partitions``."""
    digest = hashlib.blake2b(did.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % partitions


@dataclass(frozen=True)
class BusLayout:
    """Names of one deployment's stream, subjects, consumers and leases."""

    stream: str = DEFAULT_STREAM
    partitions: int = DEFAULT_PARTITIONS

    def __post_init__(self) -> None:
        if not _NAME.match(self.stream):
            raise BadBusUrlError(f"stream names are 1-64 of A-Z a-z 0-9 _ -: {self.stream!r}")
        if not 1 <= self.partitions <= MAX_PARTITIONS:
            raise BadBusUrlError(f"partitions must be 1..{MAX_PARTITIONS}")

    @property
    def prefix(self) -> str:
        return f"plaza.{self.stream.lower()}"

    @property
    def subjects(self) -> str:
        """The stream's subject filter (every partition)."""
        return f"{self.prefix}.*"

    def subject(self, partition: int) -> str:
        return f"{self.prefix}.{partition}"

    def subject_for(self, did: str) -> str:
        return self.subject(partition_of(did, self.partitions))

    def consumer(self, group: str, partition: int) -> str:
        return f"{check_group(group)}-p{partition}"

    @property
    def lease_bucket(self) -> str:
        return f"{self.stream}_leases"

    def source(self, partition: int) -> str:
        """The cursor key under which a worker stores a partition's progress."""
        return f"bus:{self.stream}:{partition}"


def check_group(group: str) -> str:
    """``group`` if it can name a consumer group (1-32 of A-Z a-z 0-9 _ -), else
    :class:`BadBusUrlError`."""
    if not _GROUP.match(group):
        raise BadBusUrlError(f"group names are 1-32 of A-Z a-z 0-9 _ -: {group[:40]!r}")
    return group


def headers(seq: int, did: str) -> dict[str, str]:
    """The headers of the message carrying relay event ``seq`` of ``did``."""
    return {MSG_ID: str(seq), SEQ_HEADER: str(seq), DID_HEADER: did}


def seq_of(hdrs: Mapping[str, str] | None) -> int:
    """The relay sequence number a message carries; :class:`BadBusMessageError` if none."""
    raw = (hdrs or {}).get(SEQ_HEADER, "")
    if not raw.isdigit() or len(raw) > 19:
        raise BadBusMessageError(f"message has no valid {SEQ_HEADER} header")
    return int(raw)


def check_url(url: str) -> str:
    """``url`` if it is a ``nats://host[:port]`` URL (comma-separated for a cluster),
    else :class:`BadBusUrlError`."""
    for part in url.split(","):
        try:
            parts = urlsplit(part.strip())
            port = parts.port
        except ValueError as exc:
            raise BadBusUrlError(f"not a NATS URL: {url[:100]!r}") from exc
        if parts.scheme not in ("nats", "tls") or not parts.hostname or parts.path not in ("", "/"):
            raise BadBusUrlError(f"the bus is a nats:// URL, not {url[:100]!r}")
        del port
    return url
