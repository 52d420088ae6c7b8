"""Joining the DAO from the browser, and checking what the ledger holds.

Joining takes signed events (the DAO's rules, :mod:`plaza.dao.members`): members vouch
for the newcomer's DID (``dao.member.vouched``, as many as the constitution requires),
and the newcomer completes their admission (``dao.member.admitted``). A did:key names
its own key; a did:plc is bound to a key first with ``plaza dao register`` (its proof is
the DID's operation log). Each form signs one event with the key it is given, as the
ballot does (:mod:`plaza.web.members`).

A receipt (ledger position and hash) is checked here against the ledger: the web client
fetches the event and its inclusion proof from the DAO's API and verifies the proof
against the ledger's Merkle root (RFC 9162), so the page says whether the event is in
the ledger as the member remembers it.
"""

from __future__ import annotations

import asyncio

from starlette.responses import Response

from plaza.errors import PlazaError
from plaza.ledger import merkle
from plaza.web.context import Page
from plaza.web.errors import WebError
from plaza.web.members import receipt_text, sign_form

MAX_DID = 2048


def _did(value: str, label: str) -> str:
    did = value.strip()
    if not did.startswith("did:") or len(did) > MAX_DID:
        raise WebError(f"{label} is a DID (did:plc:… or did:key:…)")
    return did


async def members_page(page: Page) -> Response:
    base = page.web.settings.dao
    if base is None:
        from plaza.web.errors import NotConfiguredError

        raise NotConfiguredError("this web client has no DAO API (--dao)")
    up = page.web.upstream
    members, constitution = await asyncio.gather(
        up.get_json(f"{base}/dao/members"), up.get_json(f"{base}/dao/constitution")
    )
    return page.render(
        "members.html",
        title="Members",
        members=[m for m in members if not m.get("removed")],
        rules=constitution.get("membership") or {},
    )


async def vouch(page: Page) -> Response:
    form = await page.form()
    who = _did(form.get("candidate", ""), "The newcomer")
    receipt = await sign_form(page, form, "dao.member.vouched", {"member": who})
    if isinstance(receipt, Response):
        return receipt
    return page.back("/governance/members", flash=receipt_text("Vouch recorded", receipt))


async def admit(page: Page) -> Response:
    form = await page.form()
    receipt = await sign_form(page, form, "dao.member.admitted", None)
    if isinstance(receipt, Response):
        return receipt
    return page.back("/governance/members", flash=receipt_text("Welcome, member", receipt))


async def receipt(page: Page) -> Response:
    """``/governance/receipt?seq=N&hash=H``: is event N in the ledger, with hash H?"""
    base = page.web.settings.dao
    seq_text = page.request.query_params.get("seq", "")
    want = page.request.query_params.get("hash", "").strip().lower()
    if base is None or not seq_text.isdigit() or len(seq_text) > 15:
        return page.render("receipt.html", title="Check a receipt", result=None)
    seq, up = int(seq_text), page.web.upstream
    events, proof = await asyncio.gather(
        up.get_json(f"{base}/ledger/events", {"start": seq, "limit": 1}, fresh=True),
        up.get_json(f"{base}/ledger/proofs/inclusion", {"seq": seq}, fresh=True),
    )
    if not events or int(events[0].get("seq", -1)) != seq:
        raise WebError(f"the ledger has no event {seq}", status=404)
    event = events[0]
    try:
        leaf = merkle.leaf_hash(bytes.fromhex(str(event["hash"])))
        merkle.verify_inclusion(
            seq,
            int(proof["size"]),
            leaf,
            [bytes.fromhex(h) for h in proof["proof"]],
            bytes.fromhex(str(proof["root"])),
        )
        proven = leaf.hex() == proof["leaf"]
    except (PlazaError, ValueError, KeyError, TypeError):
        proven = False
    result = {
        "seq": seq,
        "event": event,
        "proven": proven,
        "matches": not want or want == str(event.get("hash")),
        "root": proof.get("root"),
        "size": proof.get("size"),
    }
    return page.render("receipt.html", title="Check a receipt", result=result)


async def charter(page: Page) -> Response:
    base = page.web.settings.dao
    if base is None:
        from plaza.web.errors import NotConfiguredError

        raise NotConfiguredError("this web client has no DAO API (--dao)")
    up = page.web.upstream
    constitution, mandate = await asyncio.gather(
        up.get_json(f"{base}/dao/constitution"), up.get_json(f"{base}/dao/mandate")
    )
    return page.render(
        "charter.html", title="Constitution and mandate", constitution=constitution, mandate=mandate
    )
