"""The loop both fetchers run: work through what is due, then wait until the next item
is due or new work arrives; failed items come back after a doubling delay."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Final

import httpx

from plaza.services.archive.errors import FetchError

log = logging.getLogger("plaza.archive")

IDLE_S: Final = 60.0  # the longest wait without a look at the store


def backoff(attempts: int, base_s: float, max_s: float) -> float:
    """The delay before the next try after ``attempts`` failed ones: ``base_s`` doubled
    per failure, at most ``max_s``."""
    return float(min(max_s, base_s * 2 ** min(attempts, 40)))


async def run_queue(
    run_once: Callable[[], Awaitable[int]],
    next_due: Callable[[], float | None],
    wake: asyncio.Event,
    clock: Callable[[], float],
) -> None:
    """Call ``run_once`` whenever work may be due, until cancelled; a failure of the
    store is logged and the loop goes on."""
    while True:
        wake.clear()
        try:
            await run_once()
            due = next_due()
        except Exception:
            log.exception("archive: a fetch round failed; retrying")
            due = clock() + 1.0
        timeout = IDLE_S if due is None else min(IDLE_S, max(0.0, due - clock()))
        if timeout > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout)


async def get_bytes(
    http: httpx.AsyncClient, url: str, params: dict[str, str], max_bytes: int
) -> bytes:
    """The body of a ``GET`` answered 200, read up to ``max_bytes``; else :class:`FetchError`
    naming the XRPC error the host answered with."""
    try:
        async with http.stream("GET", url, params=params) as resp:
            if resp.status_code != 200:
                body = await resp.aread()
                raise FetchError(f"{url} answered {resp.status_code}: {body[:200]!r}")
            out = bytearray()
            async for chunk in resp.aiter_bytes():
                out += chunk
                if len(out) > max_bytes:
                    raise FetchError(f"{url} sent more than {max_bytes} bytes")
            return bytes(out)
    except httpx.HTTPError as exc:
        raise FetchError(f"could not reach {url}: {exc!r}") from exc
