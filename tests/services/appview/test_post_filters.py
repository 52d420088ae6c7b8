"""searchPosts' record filters, on records as the index stores them (sans-IO)."""

from __future__ import annotations

from typing import Any

import pytest

from plaza.services.appview.post_filters import PostFilter, normalize_url

ALICE = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"


def facet(**feature: Any) -> dict[str, Any]:
    return {"index": {"byteStart": 0, "byteEnd": 1}, "features": [feature]}


RECORD: dict[str, Any] = {
    "text": "x",
    "langs": ["en-US", "de"],
    "tags": ["Extra"],
    "facets": [
        facet(**{"$type": "app.bsky.richtext.facet#mention", "did": ALICE}),
        facet(**{"$type": "app.bsky.richtext.facet#link", "uri": "https://www.Example.com/a/"}),
        facet(**{"$type": "app.bsky.richtext.facet#tag", "tag": "Plaza"}),
    ],
    "embed": {
        "$type": "app.bsky.embed.external",
        "external": {"uri": "https://news.site.org/story", "title": "", "description": ""},
    },
}


@pytest.mark.parametrize(
    ("f", "ok"),
    [
        (PostFilter(), True),
        (PostFilter(mentions=ALICE), True),
        (PostFilter(mentions="did:plc:bbbbbbbbbbbbbbbbbbbbbbbb"), False),
        (PostFilter(lang="en"), True),
        (PostFilter(lang="EN-us"), True),
        (PostFilter(lang="e"), False),
        (PostFilter(lang="fr"), False),
        (PostFilter(domain="example.com"), True),
        (PostFilter(domain="site.org"), True),
        (PostFilter(domain="ample.com"), False),
        (PostFilter(url="https://WWW.example.com/a"), True),
        (PostFilter(url="https://www.example.com/A"), False),
        (PostFilter(url="https://news.site.org/story/"), True),
        (PostFilter(tags=("plaza",)), True),
        (PostFilter(tags=("#plaza", "extra")), True),
        (PostFilter(tags=("plaza", "missing")), False),
        (PostFilter(mentions=ALICE, lang="de", tags=("extra",), domain="example.com"), True),
    ],
)
def test_filters(f: PostFilter, ok: bool) -> None:
    assert f.matches(RECORD) is ok


def test_odd_records_do_not_match_and_do_not_raise() -> None:
    odd: list[Any] = [
        None,
        [],
        {"facets": "x", "langs": "en", "tags": [1], "embed": {"media": {"external": 3}}},
        {"facets": [{"features": [None, {"$type": "app.bsky.richtext.facet#link"}]}]},
        {"embed": {"external": {"uri": "http://[::1"}}},
    ]
    for record in odd:
        for f in (PostFilter(lang="en"), PostFilter(domain="a.b"), PostFilter(tags=("t",))):
            assert f.matches(record) is False
    assert normalize_url("HTTPS://Example.COM/Path/") == "https://example.com/Path"
