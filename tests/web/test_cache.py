"""The public-read cache: answers kept for their TTL on an injected clock, one fetch
for concurrent requests of the same key, failures not kept, TTL 0 off."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pytest

from plaza.web.cache import PublicCache

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on a fresh event loop in its own thread (the browser tests leave
    Playwright's loop running in the main thread)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_kept_for_the_ttl_then_fetched_again() -> None:
    clock, calls = Clock(), []
    cache = PublicCache(2.0, clock=clock)

    async def fetch() -> int:
        calls.append(1)
        return len(calls)

    async def go() -> list[int]:
        first = await cache.get("k", fetch)
        clock.now += 1.9
        second = await cache.get("k", fetch)
        clock.now += 0.2
        third = await cache.get("k", fetch)
        return [first, second, third]

    assert run(go()) == [1, 1, 2]


def test_concurrent_misses_share_one_fetch() -> None:
    cache, calls = PublicCache(2.0), []

    async def go() -> list[str]:
        gate = asyncio.Event()

        async def fetch() -> str:
            calls.append(1)
            await gate.wait()
            return "answer"

        waiting = [asyncio.ensure_future(cache.get("k", fetch)) for _ in range(20)]
        await asyncio.sleep(0)
        gate.set()
        return list(await asyncio.gather(*waiting))

    assert run(go()) == ["answer"] * 20 and len(calls) == 1


def test_failures_are_not_kept_and_ttl_zero_is_off() -> None:
    calls: list[int] = []

    async def failing() -> int:
        calls.append(1)
        raise ValueError("down")

    async def ok() -> int:
        calls.append(1)
        return 7

    async def go() -> None:
        cache = PublicCache(2.0)
        with pytest.raises(ValueError, match="down"):
            await cache.get("k", failing)
        assert await cache.get("k", ok) == 7
        off = PublicCache(0)
        assert [await off.get("k", ok) for _ in range(3)] == [7, 7, 7]

    run(go())
    assert len(calls) == 5


def test_clear_forgets_everything() -> None:
    cache, calls = PublicCache(60.0), []

    async def fetch() -> int:
        calls.append(1)
        return len(calls)

    async def go() -> tuple[int, int]:
        await cache.get("k", fetch)
        cache.clear()
        return await cache.get("k", fetch), len(cache._kept)

    assert run(go()) == (2, 1)
