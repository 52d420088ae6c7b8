"""The web client's pages over HTTP, against the live network of :mod:`tests.web.world`."""

from __future__ import annotations

import base64
import re

import httpx
from starlette.testclient import TestClient

from plaza.atproto.crypto import PrivateKey
from plaza.web import WebSettings, create_app
from tests.web.world import MEMBERS, World, member_key, send_signed


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def _signed_in(net: World, prefix: str) -> tuple[httpx.Client, dict[str, str]]:
    acct = net.account(prefix)
    c = httpx.Client(base_url=net.web, timeout=30)
    token = _csrf(c.get("/signin").text)
    r = c.post("/signin", data={"csrf": token, "handle": acct["handle"],
                                "password": acct["password"], "next": "/"})  # fmt: skip
    assert (r.status_code, r.headers["location"]) == (303, "/"), r.text
    return c, acct


def test_pages_carry_the_security_headers_and_a_safe_cookie(net: World) -> None:
    r = httpx.get(f"{net.web}/signin")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "frame-ancestors 'none'" in csp
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "<script>" not in r.text.replace('<script src="/static/htmx.min.js" defer>', "")


def test_sign_in_keeps_the_tokens_on_the_server(net: World) -> None:
    c, acct = _signed_in(net, "tok")
    home = c.get("/").text
    assert f"@{acct['handle']}" in home
    assert acct["token"][:20] not in home and "Jwt" not in home and acct["password"] not in home


def test_a_wrong_password_is_refused_without_echoing_it(net: World) -> None:
    acct = net.account("wrong")
    c = httpx.Client(base_url=net.web)
    r = c.post("/signin", data={"csrf": _csrf(c.get("/signin").text), "handle": acct["handle"],
                                "password": "not-it-SECRET"})  # fmt: skip
    assert r.status_code == 401 and "Wrong handle or password." in r.text
    assert "not-it-SECRET" not in r.text


def test_a_form_without_its_csrf_token_changes_nothing(net: World) -> None:
    c, acct = _signed_in(net, "csrf")
    r = c.post("/compose", data={"text": "forged", "csrf": "nope"})
    assert r.status_code == 403 and "security token" in r.text
    r = c.post("/compose", data={"text": "forged"})
    assert r.status_code == 403
    assert net.records(acct["did"], "app.bsky.feed.post") == []


def test_hostile_post_text_is_escaped(net: World) -> None:
    author = net.account("evil")
    net.post(author, '<script>alert("x")</script><img src=x onerror=alert(1)>')
    net.synced()
    c, _ = _signed_in(net, "reader")
    page = c.get(f"/profile/{author['did']}").text
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
    prop = c.get(f"/governance/proposals/{net.proposal}").text
    assert "&lt;b&gt;all&lt;/b&gt;" in prop and "&lt;script&gt;x&lt;/script&gt;" in prop


def test_compose_like_and_follow_without_javascript(net: World) -> None:
    c, me = _signed_in(net, "nojs")
    other = net.account("target")
    made = net.post(other, "like me")
    token = _csrf(c.get("/").text)
    r = c.post("/compose", data={"csrf": token, "text": "plain form post", "next": "/"})
    assert (r.status_code, r.headers["location"]) == (303, "/")
    r = c.post("/like", data={"csrf": token, "uri": made["uri"], "cid": made["cid"],
                              "next": "https://evil.example/"})  # fmt: skip
    assert (r.status_code, r.headers["location"]) == (303, "/")
    r = c.post("/follow", data={"csrf": token, "did": other["did"], "next": "/"})
    assert r.status_code == 303
    posts = net.records(me["did"], "app.bsky.feed.post")
    assert [p["value"]["text"] for p in posts] == ["plain form post"]
    [liked] = net.records(me["did"], "app.bsky.feed.like")
    assert liked["value"]["subject"] == {"uri": made["uri"], "cid": made["cid"]}
    [follow] = net.records(me["did"], "app.bsky.graph.follow")
    assert follow["value"]["subject"] == other["did"]


def test_htmx_gets_the_fragment_to_swap(net: World) -> None:
    c, me = _signed_in(net, "hx")
    made = net.post(net.account("hxtarget"), "swap me")
    token = _csrf(c.get("/").text)
    form = {"csrf": token, "uri": made["uri"], "cid": made["cid"], "likes": "4"}
    r = c.post("/like", headers={"hx-request": "true"}, data=form)
    assert r.status_code == 200 and r.text.startswith('<div class="actions"')
    assert 'aria-pressed="true"' in r.text and ">5<" in r.text
    [liked] = net.records(me["did"], "app.bsky.feed.like")
    like_uri = f"at://{me['did']}/app.bsky.feed.like/{liked['uri'].rsplit('/', 1)[1]}"
    r = c.post("/like", headers={"hx-request": "true"},
               data={"csrf": token, "uri": made["uri"], "cid": made["cid"], "likes": "5",
                     "like": like_uri})  # fmt: skip
    assert 'aria-pressed="false"' in r.text and ">4<" in r.text
    assert net.records(me["did"], "app.bsky.feed.like") == []


def test_a_vote_is_a_signed_event_with_a_receipt(net: World) -> None:
    c = httpx.Client(base_url=net.web, timeout=30)
    page = c.get(f"/governance/proposals/{net.proposal + 1}").text  # the IRV election
    assert "Rank of ana" in page
    assert 'data-key type="password"' in page and 'name="key"' not in page  # never posted
    url = f"/governance/proposals/{net.proposal + 1}/vote"
    form = {"csrf": _csrf(page), "rank_0": "2", "rank_2": "1"}
    r = send_signed(c, url, form, member_key("carol"))
    assert r.json() == {"next": f"/governance/proposals/{net.proposal + 1}"}, r.text
    assert "Vote recorded: ledger event" in c.get(r.json()["next"]).text
    prop = httpx.get(f"{net.dao}/dao/proposals/{net.proposal + 1}").json()
    assert prop["votes"][MEMBERS[2].did]["ranking"] == ["cy", "ana"]


def test_a_bad_signature_key_or_ballot_is_refused_clearly(net: World) -> None:
    c = httpx.Client(base_url=net.web, timeout=30)
    token = _csrf(c.get("/governance").text)
    url = f"/governance/proposals/{net.proposal}/vote"
    r = c.post(url, data={"csrf": token, "choice": "0", "key": "11" * 32})
    assert r.status_code == 400 and "need JavaScript" in r.text  # the server takes no key
    r = send_signed(c, url, {"csrf": token, "choice": "9"}, member_key("bob"))
    assert r.status_code == 400 and "choose one option" in r.json()["message"]
    # signed by one key, claimed by another member
    bob, alice = member_key("bob"), member_key("alice")
    r = send_signed(c, url, {"csrf": token, "choice": "0", "member": alice.did_key()}, bob)
    assert r.status_code == 400 and "did:key" in r.json()["message"]
    # bytes other than the ones signed
    prep = c.post(url, headers={"accept": "application/json"},
                  data={"csrf": token, "choice": "0", "signer": bob.did_key(),
                        "sign_step": "prepare"}).json()  # fmt: skip
    sig = base64.b64encode(bob.sign(base64.b64decode(prep["signing"]))).decode()
    forged = {"csrf": token, "choice": "1", "signer": bob.did_key(), "sign_step": "submit",
              "seq": str(prep["seq"]), "prev": prep["prev"], "time": str(prep["time"]),
              "sig": sig}  # fmt: skip
    r = c.post(url, data=forged, headers={"accept": "application/json"})
    assert r.status_code == 400 and r.json()["error"] == "BadSignature"
    stranger = PrivateKey.from_bytes("ES256", bytes.fromhex("11" * 32))
    r = send_signed(c, url, {"csrf": token, "choice": "0"}, stranger)
    assert r.status_code in (400, 403, 409) and "did:key" in r.json()["message"]
    assert httpx.get(f"{net.dao}/dao/proposals/{net.proposal}").json()["votes"] == {}


def test_network_lists_providers_and_concentration(net: World) -> None:
    page = httpx.get(f"{net.web}/network").text
    assert '<table class="providers">' in page and page.count("<svg") == 2
    assert "<strong>5</strong> accounts placed" in page
    assert "largest share <strong>60.0%</strong>" in page  # acme 3, beta 2
    assert "HHI <strong>5200</strong>" in page and "Nakamoto coefficient <strong>1</strong>" in page
    assert "inv-c-1-0" in page and "80.00%" in page


def test_the_agents_actions_name_their_mandate_clause(net: World) -> None:
    page = httpx.get(f"{net.web}/governance/actions").text
    assert "placement.assign" in page and "free capacity at acme in eu" in page
    assert '<code>[actions."placement.assign"]</code> (automatic)' in page
    # each with its explanation in plain words, from the record and the clause only
    assert "the agent carried out placement.assign" in page
    assert "The guard allowed it at once." in page


def test_sign_in_is_rate_limited_before_the_entryway(net: World) -> None:
    app = create_app(WebSettings(entryway=net.pds, signin_burst=2, signin_rate_per_s=0.001))
    with TestClient(app) as c:
        token = _csrf(c.get("/signin").text)
        codes = [
            c.post("/signin", data={"csrf": token, "handle": "x.test", "password": "p"}).status_code
            for _ in range(3)
        ]
        assert codes == [401, 401, 429]


def test_each_of_several_processes_holds_its_share_of_the_sign_in_limit(net: World) -> None:
    settings = WebSettings(entryway=net.pds, signin_burst=5, signin_rate_per_s=0.001, workers=2)
    with TestClient(create_app(settings)) as c:  # one of two processes: 3 of the 5
        token = _csrf(c.get("/signin").text)
        codes = [
            c.post("/signin", data={"csrf": token, "handle": "x.test", "password": "p"}).status_code
            for _ in range(4)
        ]
        assert codes == [401, 401, 401, 429]


def test_pages_without_their_service_say_so() -> None:
    app = create_app(WebSettings(entryway="http://127.0.0.1:9"))
    with TestClient(app) as c:
        for path in ("/governance", "/network"):
            r = c.get(path)
            assert r.status_code == 503 and "--" in r.text
        assert c.get("/notifications", follow_redirects=False).headers["location"] == "/signin"
        assert c.get("/").status_code == 200


def test_edit_profile_block_and_mute(net: World) -> None:
    c, me = _signed_in(net, "prof")
    other = net.account("pest")
    token = _csrf(c.get("/settings/profile").text)
    r = c.post(
        "/settings/profile", data={"csrf": token, "displayName": "Me <i>", "description": "hi"}
    )
    assert (r.status_code, r.headers["location"]) == (303, f"/profile/{me['did']}")
    [profile] = net.records(me["did"], "app.bsky.actor.profile")
    assert (profile["value"]["displayName"], profile["value"]["description"]) == ("Me <i>", "hi")
    r = c.post("/block", data={"csrf": token, "did": other["did"]})
    assert r.status_code == 303
    [block] = net.records(me["did"], "app.bsky.graph.block")
    assert block["value"]["subject"] == other["did"]
    r = c.post("/block", data={"csrf": token, "did": other["did"], "blocking": block["uri"]})
    assert net.records(me["did"], "app.bsky.graph.block") == []
    r = c.post("/mute", data={"csrf": token, "did": other["did"]}, follow_redirects=True)
    assert r.status_code == 200 and "Muted." in r.text
    net.synced()
    assert "Unmute" in c.get(f"/profile/{other['did']}").text


def _png() -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (4, 4), (200, 30, 90)).save(out, format="PNG")
    return out.getvalue()


def test_a_post_with_an_image_and_its_alt_text(net: World) -> None:
    c, me = _signed_in(net, "img")
    token = _csrf(c.get("/").text)
    form = {"csrf": token, "text": "a square", "alt": 'a pink "square"', "next": "/"}
    r = c.post("/compose", data=form, files={"image": ("sq.png", _png(), "image/png")})
    assert (r.status_code, r.headers["location"]) == (303, "/"), r.text
    [post] = net.records(me["did"], "app.bsky.feed.post")
    [image] = post["value"]["embed"]["images"]
    assert image["alt"] == 'a pink "square"' and image["image"]["mimeType"] == "image/png"
    net.synced()
    page = c.get(f"/profile/{me['did']}").text
    assert 'alt="a pink &#34;square&#34;"' in page and "com.atproto.sync.getBlob" in page
    r = c.post("/compose", data=form, files={"image": ("x.png", b"<svg onload=x>", "image/png")})
    assert r.status_code == 400 and "PNG, JPEG, GIF or WebP" in r.text
    r = c.post("/compose", data={"text": "x"}, files={"image": ("sq.png", _png(), "image/png")})
    assert r.status_code == 403
    assert len(net.records(me["did"], "app.bsky.feed.post")) == 1


def test_each_page_has_one_h1_and_the_main_navigation(net: World) -> None:
    c, me = _signed_in(net, "nav")
    pages = ["/", "/?feed=hot", f"/profile/{me['did']}", "/notifications", "/search?q=x",
             "/governance", f"/governance/proposals/{net.proposal}", "/governance/actions",
             "/governance/treasury", "/governance/members", "/governance/charter",
             "/governance/receipt", "/network", "/settings/profile"]  # fmt: skip
    for path in pages:
        r = c.get(path)
        assert r.status_code == 200, (path, r.text)
        assert r.text.count("<h1>") == 1, path
        for name in ("Home", "Notifications", "Search", "Governance", "Network"):
            assert f">{name}</a>" in r.text, (path, name)


def test_a_report_reaches_the_moderation_service_through_the_pds(net: World) -> None:
    c, me = _signed_in(net, "reporter")
    author = net.account("reported")
    posted = net.post(author, "buy followers cheap")
    net.synced()
    page = c.get(f"/profile/{author['did']}").text
    assert 'action="/report"' in page and "Report this post" in page
    form = {"csrf": _csrf(page), "uri": posted["uri"], "cid": posted["cid"],
            "reason_type": "spam", "reason": "sells <b>followers</b>", "next": "/"}  # fmt: skip
    assert c.post("/report", data={**form, "csrf": "forged"}).status_code == 403
    assert c.post("/report", data={**form, "reason_type": "nonsense"}).status_code == 400
    assert not [x for x in net.reviews() if x.get("reporter") == me["did"]]
    r = c.post("/report", data=form)
    assert (r.status_code, r.headers["location"]) == (303, "/"), r.text
    assert "Reported." in c.get("/").text
    [filed] = [x for x in net.reviews() if x.get("reporter") == me["did"]]
    assert posted["uri"] in str(filed) and "followers" in str(filed)
