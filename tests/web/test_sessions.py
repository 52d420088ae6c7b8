from __future__ import annotations

from plaza.web.context import local_path
from plaza.web.sessions import Account, Sessions, csrf_ok


def _account() -> Account:
    return Account("did:plc:x", "x.test", "http://pds", access="a", refresh="r")


def test_a_visitor_keeps_a_session_and_signing_in_replaces_it() -> None:
    now = [0.0]
    table = Sessions(clock=lambda: now[0], idle_s=10)
    anon = table.get(None)
    assert table.get(anon.id) is anon and anon.account is None
    signed = table.sign_in(anon, _account())
    assert signed.id != anon.id and signed.csrf != anon.csrf
    assert table.get(anon.id).account is None  # the old id names nothing now
    assert table.get(signed.id).account is not None
    now[0] = 11.0
    assert table.get(signed.id).account is None  # idle too long: forgotten


def test_the_table_is_bounded() -> None:
    table = Sessions(max_sessions=3)
    ids = [table.get(None).id for _ in range(5)]
    assert len(table) == 3 and table.get(ids[0]).id != ids[0]


def test_csrf_tokens_compare_exactly() -> None:
    s = Sessions().get(None)
    assert csrf_ok(s, s.csrf)
    assert not csrf_ok(s, s.csrf[:-1]) and not csrf_ok(s, None) and not csrf_ok(s, "")


def test_account_repr_hides_the_tokens() -> None:
    assert "a'" not in repr(_account()).replace("did:plc:x", "")
    assert "refresh=" not in repr(_account())


def test_forms_only_send_the_browser_back_to_this_site() -> None:
    assert local_path("/profile/did:plc:x?x=1") == "/profile/did:plc:x?x=1"
    for bad in ("//evil.example/", "https://evil.example/", "javascript:alert(1)", "/\\evil", 3):
        assert local_path(bad) == "/"
