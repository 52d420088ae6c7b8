"""Which posts pass searchPosts' record filters: ``mentions``, ``lang``, ``domain``,
``url`` and ``tag`` (sans-IO).

The index keeps no column for these, so a search that names one reads the matching
posts' records and keeps those that pass (:mod:`plaza.services.appview.search` bounds
how many it reads per page). A post mentions an account when a rich-text facet says so;
its languages are its ``langs`` (``en`` matches ``en-US``); its links are its link
facets and its external embed (``domain`` matches the host or any host under it, a
leading ``www.`` ignored; ``url`` matches the link without a trailing ``/``, case-blind
in the scheme and host); its tags are its tag facets and its ``tags`` field, case-blind,
and every tag asked for must be there.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

MENTION = "app.bsky.richtext.facet#mention"
LINK = "app.bsky.richtext.facet#link"
TAG = "app.bsky.richtext.facet#tag"


def _features(record: dict[str, Any]) -> Iterator[dict[str, Any]]:
    facets = record.get("facets")
    for facet in facets if isinstance(facets, list) else ():
        features = facet.get("features") if isinstance(facet, dict) else None
        for feature in features if isinstance(features, list) else ():
            if isinstance(feature, dict):
                yield feature


def _links(record: dict[str, Any]) -> Iterator[str]:
    for f in _features(record):
        if f.get("$type") == LINK and isinstance(f.get("uri"), str):
            yield f["uri"]
    embed = record.get("embed")
    if isinstance(embed, dict) and isinstance(embed.get("media"), dict):
        embed = embed["media"]  # recordWithMedia
    external = embed.get("external") if isinstance(embed, dict) else None
    if isinstance(external, dict) and isinstance(external.get("uri"), str):
        yield external["uri"]


def _host(url: str) -> str:
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return ""
    return host.removeprefix("www.")


def normalize_url(url: str) -> str:
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return url
    rest = url.strip()[len(parts.scheme) + 3 + len(parts.netloc) :]
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{rest}".rstrip("/")


@dataclass(frozen=True)
class PostFilter:
    """The record filters of one search (each None or empty: not asked)."""

    mentions: str | None = None  # a DID
    lang: str | None = None
    domain: str | None = None
    url: str | None = None
    tags: tuple[str, ...] = ()

    @property
    def active(self) -> bool:
        return bool(self.mentions or self.lang or self.domain or self.url or self.tags)

    def matches(self, record: Any) -> bool:
        if not isinstance(record, dict):
            return False
        if self.mentions is not None and not any(
            f.get("$type") == MENTION and f.get("did") == self.mentions for f in _features(record)
        ):
            return False
        if self.lang is not None:
            want = self.lang.lower()
            langs = record.get("langs")
            have = (
                [x.lower() for x in langs if isinstance(x, str)] if isinstance(langs, list) else []
            )
            if not any(x == want or x.startswith(want + "-") for x in have):
                return False
        if self.domain is not None or self.url is not None:
            links = list(_links(record))
            if self.domain is not None:
                d = self.domain.lower().removeprefix("www.")
                if not any(h == d or h.endswith("." + d) for h in map(_host, links)):
                    return False
            if self.url is not None:
                u = normalize_url(self.url)
                if not any(normalize_url(x) == u for x in links):
                    return False
        if self.tags:
            have_tags = {
                f["tag"].lower()
                for f in _features(record)
                if f.get("$type") == TAG and isinstance(f.get("tag"), str)
            }
            extra = record.get("tags")
            if isinstance(extra, list):
                have_tags |= {t.lower() for t in extra if isinstance(t, str)}
            if not all(t.lower().lstrip("#") in have_tags for t in self.tags):
                return False
        return True
