"""The post template shows labels as warnings or hides the content, and escapes
everything a post carries."""

from __future__ import annotations

from typing import Any

from plaza.web.context import environment


def _render(post: dict[str, Any]) -> str:
    template = environment().from_string(
        '{% from "macros.html" import post %}{{ post(p, "tok", None, "/") }}'
    )
    return template.render(p=post)


def _post(**extra: Any) -> dict[str, Any]:
    return {
        "uri": "at://did:plc:a/app.bsky.feed.post/3k",
        "cid": "bafy",
        "author": {"did": "did:plc:a", "handle": "a.test", "displayName": "<b>A</b>"},
        "record": {"text": "body <script>x</script>", "createdAt": "2026-12-01T00:00:00Z"},
        **extra,
    }


def test_a_plain_post_is_an_escaped_article() -> None:
    html = _render(_post())
    assert html.count("<article") == 1
    assert "body &lt;script&gt;x&lt;/script&gt;" in html and "&lt;b&gt;A&lt;/b&gt;" in html


def test_a_hiding_label_hides_the_content() -> None:
    html = _render(_post(labels=[{"val": "spam", "src": "did:plc:l"}]))
    assert "Hidden: labelled spam." in html and "body" not in html


def test_another_label_is_a_warning_in_front_of_the_content() -> None:
    html = _render(_post(labels=[{"val": "graphic-media", "src": "did:plc:l"}]))
    assert "<summary>Content warning: graphic-media</summary>" in html
    assert "body &lt;script&gt;" in html


def test_a_signed_in_reader_gets_like_repost_and_reply_buttons() -> None:
    template = environment().from_string(
        '{% from "macros.html" import post %}{{ post(p, "tok", {"did": "did:plc:me"}, "/") }}'
    )
    html = template.render(p=_post())
    for name in ("Like", "Repost", "Reply"):
        assert f">{name}</button>" in html
    assert 'action="/post/did:plc:a/3k"' in html  # Reply opens the thread and its composer
