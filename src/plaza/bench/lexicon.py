"""Lexicon validation speed: what every PDS write pays, in microseconds per record.

Measures loading and compiling the bundled registry, then validating a minimal
post, a rich post (facets, image embed, reply, labels, langs), a like, a follow
and a profile, and the syntax checks that dominate them. Each figure is the median
of ``runs`` timings of ``iterations`` calls.
"""

from __future__ import annotations

import functools
import statistics
import time
from collections.abc import Callable
from typing import Any

from plaza.atproto import syntax
from plaza.atproto.cid import CID, RAW
from plaza.atproto.lexicon import LexiconRegistry, default_registry

_DID = "did:plc:ewvi7nxzyoun6zhxrhs64oiz"
_NOW = "2024-11-26T16:30:00.123Z"
_URI = f"at://{_DID}/app.bsky.feed.post/3k5nobkf2w72g"


def _records() -> dict[str, tuple[str, dict[str, Any]]]:
    ref = {"uri": _URI, "cid": str(CID.compute(b"post"))}
    blob = {"$type": "blob", "ref": CID.compute(b"img", RAW), "mimeType": "image/jpeg", "size": 1}
    rich = {
        "$type": "app.bsky.feed.post",
        "text": "Hello @alice.test, see https://example.com/a 🎉 #plaza",
        "createdAt": _NOW,
        "langs": ["en"],
        "facets": [
            {
                "index": {"byteStart": 6, "byteEnd": 17},
                "features": [{"$type": "app.bsky.richtext.facet#mention", "did": _DID}],
            },
            {
                "index": {"byteStart": 23, "byteEnd": 44},
                "features": [
                    {"$type": "app.bsky.richtext.facet#link", "uri": "https://example.com/a"}
                ],
            },
        ],
        "embed": {
            "$type": "app.bsky.embed.images",
            "images": [{"alt": "a cat", "image": blob, "aspectRatio": {"width": 4, "height": 3}}],
        },
        "reply": {"root": ref, "parent": ref},
    }
    return {
        "post_minimal": (
            "app.bsky.feed.post",
            {"$type": "app.bsky.feed.post", "text": "hi", "createdAt": _NOW},
        ),
        "post_rich": ("app.bsky.feed.post", rich),
        "like": (
            "app.bsky.feed.like",
            {"$type": "app.bsky.feed.like", "subject": ref, "createdAt": _NOW},
        ),
        "follow": (
            "app.bsky.graph.follow",
            {"$type": "app.bsky.graph.follow", "subject": _DID, "createdAt": _NOW},
        ),
        "profile": (
            "app.bsky.actor.profile",
            {"$type": "app.bsky.actor.profile", "displayName": "Alice", "description": "hi"},
        ),
    }


def _median_us(fn: Callable[[], Any], runs: int, iterations: int) -> float:
    timings = []
    for _ in range(runs):
        start = time.perf_counter()
        for _ in range(iterations):
            fn()
        timings.append((time.perf_counter() - start) / iterations * 1e6)
    return round(statistics.median(timings), 2)


def run(*, runs: int = 5, iterations: int = 20_000) -> dict[str, Any]:
    """Median microseconds per call for registry set-up, records and syntax checks."""
    start = time.perf_counter()
    default_registry.cache_clear()  # time a cold load
    registry = default_registry()
    load_ms = (time.perf_counter() - start) * 1e3
    start = time.perf_counter()
    fresh = LexiconRegistry(registry.get(n) for n in registry)
    fresh.check_references()
    compile_ms = (time.perf_counter() - start) * 1e3
    out: dict[str, Any] = {
        "documents": len(registry),
        "load_ms": round(load_ms, 1),
        "compile_all_ms": round(compile_ms, 1),
        "runs": runs,
        "iterations": iterations,
        "validate_record_us": {},
        "syntax_us": {},
    }
    for name, (collection, record) in _records().items():
        registry.validate_record(collection, record)  # compile outside the timing

        def call(c: str = collection, r: dict[str, Any] = record) -> None:
            registry.validate_record(c, r)

        out["validate_record_us"][name] = _median_us(call, runs, iterations)
    checks: dict[str, tuple[Callable[[str], str], str]] = {
        "datetime": (syntax.validate_datetime, _NOW),
        "at_uri": (syntax.validate_at_uri, _URI),
        "did": (syntax.validate_did, _DID),
        "handle": (syntax.validate_handle, "alice.bsky.social"),
        "language": (syntax.validate_language, "pt-BR"),
        "cid": (syntax.validate_cid_string, str(CID.compute(b"x"))),
    }
    for name, (fn, value) in checks.items():
        out["syntax_us"][name] = _median_us(functools.partial(fn, value), runs, iterations)
    return out
