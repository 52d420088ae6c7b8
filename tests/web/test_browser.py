"""The web client in a real browser (Debian's Chromium under Playwright): the issue's
"done when" list, sign-up, votes and vetoes, and a profile read with JavaScript off.

Set ``PLAZA_WEB_SCREENSHOTS=DIR`` to save a screenshot of each main page there
(docs/img holds the ones the docs show).
"""

from __future__ import annotations

import os
import re
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.web.world import World, secret_hex

DEADLINE_S = 30.0
SHOTS = os.environ.get("PLAZA_WEB_SCREENSHOTS")


def _shot(page: Any, name: str) -> None:
    """Save a screenshot (a 64-colour PNG: small enough to keep in the repository)."""
    if SHOTS:
        from PIL import Image

        path = Path(SHOTS) / f"web-{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(path))
        Image.open(path).convert("RGB").quantize(64).save(path, optimize=True)


def _until(check: Callable[[], bool], what: str) -> None:
    """Poll ``check`` (it reloads a page) until it holds, within the deadline."""
    deadline = time.monotonic() + DEADLINE_S
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)  # another server indexes: short, bounded by the deadline


@pytest.fixture
def tab(browser: Any, net: World) -> Iterator[Any]:
    context = browser.new_context(base_url=net.web, viewport={"width": 1000, "height": 760})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    yield page
    context.close()
    assert not errors, errors  # no script error, no Content Security Policy violation


def _sign_in(page: Any, acct: dict[str, str]) -> None:
    page.goto("/signin")
    page.get_by_label("Handle").fill(acct["handle"])
    page.get_by_label("Password").fill(acct["password"])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/$"))


def test_done_when(tab: Any, net: World) -> None:
    from playwright.sync_api import expect

    me, bob = net.account("me"), net.account("bob")
    text = f"bob's post {secrets.token_hex(3)}"
    posted = net.post(bob, text)
    net.synced()
    # 1. Sign in.
    _sign_in(tab, me)
    expect(tab.get_by_text(f"@{me['handle']}")).to_be_visible()
    # 2. Follow an account from its profile.
    tab.goto(f"/profile/{bob['did']}")
    expect(tab.get_by_role("heading", level=1)).to_have_text(bob["handle"])
    _shot(tab, "profile")
    tab.get_by_role("button", name="Follow").click()
    expect(tab.get_by_role("button", name="Unfollow")).to_be_visible()  # htmx swapped it
    [follow] = net.records(me["did"], "app.bsky.graph.follow")
    assert follow["value"]["subject"] == bob["did"]
    # 3. See that account's post on Home.
    net.synced()
    tab.get_by_role("link", name="Home").click()
    post = tab.locator("article", has_text=text)

    def on_home() -> bool:
        if post.count():
            return True
        tab.reload()
        return False

    _until(on_home, "bob's post on Home")
    expect(post).to_be_visible()
    # 4. Like it; the like reaches the repository.
    like = post.get_by_role("button", name="Like")
    like.click()
    expect(post.get_by_role("button", name="Like")).to_have_attribute("aria-pressed", "true")
    [liked] = net.records(me["did"], "app.bsky.feed.like")
    assert liked["value"]["subject"] == {"uri": posted["uri"], "cid": posted["cid"]}
    # Reply to it from its thread.
    post.get_by_role("button", name="Reply").click()
    expect(tab.get_by_role("heading", level=1)).to_have_text("Post")
    tab.get_by_label("Write a reply").fill("a reply from the browser")
    tab.locator("#reply").get_by_role("button", name="Reply").click()
    expect(tab.get_by_role("status")).to_have_text("Posted.")
    [reply] = net.records(me["did"], "app.bsky.feed.post")
    assert reply["value"]["reply"]["parent"] == {"uri": posted["uri"], "cid": posted["cid"]}
    tab.get_by_role("link", name="Home").click()
    # 5. Post from the composer.
    tab.get_by_label("Write a post").fill("first post from the browser <b>bold?</b>")
    tab.get_by_role("button", name="Post", exact=True).click()
    expect(tab.get_by_role("status")).to_have_text("Posted.")
    mine = net.records(me["did"], "app.bsky.feed.post")
    assert sorted(p["value"]["text"] for p in mine) == [
        "a reply from the browser",
        "first post from the browser <b>bold?</b>",
    ]
    net.synced()
    tab.goto(f"/profile/{me['did']}")
    expect(
        tab.locator("article", has_text="first post from the browser <b>bold?</b>")
    ).to_be_visible()
    tab.goto("/")
    _shot(tab, "home")
    # 6. Open Governance and Network; Network lists the providers in a table.
    tab.get_by_role("link", name="Governance").click()
    expect(tab.get_by_role("heading", level=1)).to_have_text("Governance")
    _shot(tab, "governance")
    tab.get_by_role("link", name="Network").click()
    expect(tab.get_by_role("heading", level=1)).to_have_text("Network")
    providers = tab.get_by_role("table", name="Providers registered with the market")
    expect(providers.get_by_role("row")).to_have_count(6)  # a header and five providers
    _shot(tab, "network")


def test_a_profile_reads_with_javascript_off(browser: Any, net: World) -> None:
    from playwright.sync_api import expect

    author = net.account("plain")
    net.post(author, "readable without scripts")
    net.synced()
    context = browser.new_context(base_url=net.web, java_script_enabled=False)
    page = context.new_page()
    page.goto(f"/profile/{author['did']}")
    expect(page.get_by_role("heading", level=1)).to_have_text(author["handle"])
    expect(page.locator("article", has_text="readable without scripts")).to_be_visible()
    context.close()


def test_sign_up_then_vote_and_veto(tab: Any, net: World) -> None:
    from playwright.sync_api import expect

    handle = f"new{secrets.token_hex(3)}.test"
    tab.goto("/signup")
    tab.get_by_label("Handle").fill(handle)
    tab.get_by_label("Email").fill(f"{handle}@example.com")
    tab.get_by_label("Password").fill("pw-" + secrets.token_hex(8))
    tab.get_by_role("button", name="Create account").click()
    expect(tab.get_by_role("status")).to_have_text("Welcome to Plaza.")
    expect(tab.get_by_text(f"@{handle}")).to_be_visible()

    tab.get_by_role("link", name="Governance").click()
    tab.get_by_role("link", name="Which region next?").click()
    expect(tab.get_by_role("heading", level=1)).to_have_text("Which region next?")
    _shot(tab, "proposal")
    tab.get_by_label("eu-north").check()
    tab.get_by_label("Signing key").fill(secret_hex("alice"))
    tab.get_by_role("button", name="Vote").click()
    expect(tab.get_by_role("status")).to_contain_text("Vote recorded: ledger event")
    expect(tab.get_by_text("Turnout: 1 of 3 members")).to_be_visible()

    tab.get_by_role("link", name="Governance").click()
    motion = tab.get_by_role("region", name=f"Action {net.motion}")
    motion.get_by_label("Signing key").fill(secret_hex("bob"))
    motion.get_by_label("Key type").select_option("ES256")  # bob's key is P-256
    motion.get_by_role("button", name="Veto").click()
    expect(tab.get_by_role("status")).to_contain_text(f"Veto of action {net.motion} recorded")
    expect(tab.get_by_role("region", name=f"Action {net.motion}")).to_have_count(0)


def test_report_a_post(tab: Any, net: World) -> None:
    from playwright.sync_api import expect

    me, author = net.account("flagger"), net.account("flagged")
    posted = net.post(author, "free crypto, DM me")
    net.synced()
    _sign_in(tab, me)
    tab.goto(f"/profile/{author['did']}")
    post = tab.locator("article", has_text="free crypto, DM me")
    post.get_by_text("Report this post").click()
    post.get_by_label("Reason").select_option(label="Spam")
    post.get_by_label("What is wrong (optional)").fill("a scam")
    post.get_by_role("button", name="Report", exact=True).click()
    expect(tab.get_by_role("status")).to_have_text("Reported. The moderators will review it.")
    [filed] = [x for x in net.reviews() if x.get("reporter") == me["did"]]
    assert posted["uri"] in str(filed) and "a scam" in str(filed)
