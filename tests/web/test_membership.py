"""Joining the DAO and checking receipts through the web client, against the live
network of :mod:`tests.web.world`."""

from __future__ import annotations

import re

import httpx

from tests.web.world import World, member_key, send_signed, signer


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def _flash(r: httpx.Response) -> str:
    found = re.search(r'<p class="flash" role="status">(.*?)</p>', r.text)
    assert found, r.text
    return found.group(1)


def test_a_newcomer_joins_with_two_vouches(net: World) -> None:
    dave = signer("dave")
    c = httpx.Client(base_url=net.web, timeout=30, follow_redirects=True)
    page = c.get("/governance/members")
    assert "Admission takes 2 vouches" in page.text
    token = _csrf(page.text)
    admit, vouch = "/governance/members/admit", "/governance/members/vouch"
    r = send_signed(c, admit, {"csrf": token}, member_key("dave"))
    assert r.status_code == 403 and "vouch" in r.json()["message"]  # not vouched for yet
    for voucher in ("alice", "bob"):
        r = send_signed(c, vouch, {"csrf": token, "candidate": dave.did}, member_key(voucher))
        assert r.status_code == 200, r.text
        assert "Vouch recorded" in _flash(c.get(r.json()["next"]))
    r = send_signed(c, admit, {"csrf": token}, member_key("dave"))
    assert "Welcome, member" in _flash(c.get(r.json()["next"]))
    assert dave.did in c.get("/governance/members").text
    assert any(m["did"] == dave.did for m in httpx.get(f"{net.dao}/dao/members").json())


def test_a_receipt_checks_against_the_ledger(net: World) -> None:
    c = httpx.Client(base_url=net.web, timeout=30)
    head = httpx.get(f"{net.dao}/ledger/head").json()
    seq = head["size"] - 1
    event = httpx.get(f"{net.dao}/ledger/events", params={"start": seq, "limit": 1}).json()[0]
    good = c.get("/governance/receipt", params={"seq": seq, "hash": event["hash"]}).text
    assert f"Event {seq} is in the ledger with the hash on your receipt" in good
    bad = c.get("/governance/receipt", params={"seq": seq, "hash": "00" * 32}).text
    assert "not the one on your receipt" in bad
    assert c.get("/governance/receipt", params={"seq": 10**9}).status_code in (400, 404)


def test_the_constitution_and_mandate_are_readable(net: World) -> None:
    page = httpx.get(f"{net.web}/governance/charter").text
    assert "<h1>Constitution and mandate</h1>" in page
    assert "<code>placement.assign</code>" in page and "election" in page
