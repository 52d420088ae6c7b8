"""Read a PDS's firehose from a cursor until it goes quiet (for assertions)."""

from __future__ import annotations

from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from atproto import firehose_models, parse_subscribe_repos_message


def read_events(pds_url: str, cursor: int = 0, *, quiet_s: float = 0.5) -> list[Any]:
    """Every message from ``cursor`` on, parsed by the atproto SDK's own models."""
    ws_url = pds_url.replace("http://", "ws://") + "/xrpc/com.atproto.sync.subscribeRepos"
    out: list[Any] = []
    with connect(f"{ws_url}?cursor={cursor}", max_size=6_000_000) as ws:
        while True:
            try:
                frame = ws.recv(timeout=quiet_s)
            except TimeoutError:
                return out
            except ConnectionClosed:
                return out
            assert isinstance(frame, bytes)
            parsed = firehose_models.Frame.from_bytes(frame)
            assert isinstance(parsed, firehose_models.MessageFrame), parsed
            out.append(parse_subscribe_repos_message(parsed))
