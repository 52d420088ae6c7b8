"""Verifying in worker processes gives the same answers as verifying in the relay's
own: the checked fields of a valid commit or ``#sync``, and the same error type for a
forged or non-inverting one."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from plaza.atproto.cid import CID
from plaza.atproto.crypto import ES256K, PrivateKey
from plaza.atproto.errors import AtprotoError, BadSignatureError, InversionError
from plaza.atproto.sync import sync_event_car
from plaza.services.relay.frames import decode_frame, encode_frame
from plaza.services.relay.pool import PoolVerifier
from plaza.services.relay.verifier import InlineVerifier
from tests.services.relay.hostile import FakeAccount, commit_body


def _frame(kind: str, body: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
    raw = encode_frame(kind, {**body, "seq": 1})
    return decode_frame(raw).body, raw


def test_workers_answer_as_the_relay_would() -> None:
    acct = FakeAccount("-", "http://host.test")
    acct.did = "did:plc:abcdefghijklmnopqrstuvwx"
    acct.next_commit()
    good = acct.next_commit()
    forged = acct.next_commit(key=PrivateKey.generate(ES256K), advance=False)
    cases: list[tuple[str, dict[str, Any], bytes]] = [
        ("commit", *_frame("#commit", commit_body(good))),
        ("commit", *_frame("#commit", commit_body(forged))),
        ("commit", *_frame("#commit", commit_body(good, prevData=CID.compute(b"x")))),
        (
            "sync",
            *_frame(
                "#sync", {"did": acct.did, "rev": good.rev, "blocks": sync_event_car(good.commit)}
            ),
        ),
    ]

    async def run(verifier: Any) -> list[Any]:
        out: list[Any] = []
        for kind, body, raw in cases:
            check = verifier.commit if kind == "commit" else verifier.sync
            try:
                out.append(await check(body, acct.key.public_key, raw))
            except AtprotoError as exc:
                out.append(type(exc))
        return out

    pool = PoolVerifier(1)
    try:
        pooled = asyncio.run(run(pool))
        together = asyncio.run(asyncio.wait_for(_all_at_once(pool, cases, acct), 60))
    finally:
        pool.close()
    inline = asyncio.run(run(InlineVerifier()))
    assert pooled == inline
    assert pooled[1] is BadSignatureError and pooled[2] is InversionError
    assert pooled[0].rev == good.rev and pooled[0].commit == good.cid
    assert pooled[3].block == good.commit.bytes
    assert together == pooled  # answers reach the right callers when batched together
    assert pool.batches >= 2


async def _all_at_once(pool: PoolVerifier, cases: list[Any], acct: FakeAccount) -> list[Any]:
    async def one(kind: str, body: dict[str, Any], raw: bytes) -> Any:
        check = pool.commit if kind == "commit" else pool.sync
        try:
            return await check(body, acct.key.public_key, raw)
        except AtprotoError as exc:
            return type(exc)

    return list(await asyncio.gather(*(one(*c) for c in cases)))


@pytest.mark.parametrize("workers", [1])
def test_a_broken_pool_falls_back_to_this_process(workers: int) -> None:
    acct = FakeAccount("-", "http://host.test")
    acct.did = "did:plc:abcdefghijklmnopqrstuvwx"
    body, raw = _frame("#commit", commit_body(acct.next_commit()))
    pool = PoolVerifier(workers)
    pool.close()
    checked = asyncio.run(pool.commit(body, acct.key.public_key, raw))
    assert checked.did == acct.did
