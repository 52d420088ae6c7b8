"""The members' pages: proposals with their progress, ballots, vetoes, delegation,
the agents' actions and the treasury.

Reads come from the DAO's HTTP API. Each write is one ledger event the member signs in
their browser with their DAO key (:mod:`plaza.web.dao_client`; the key never reaches
this server): the form takes the member's DID in the DAO (their did:key when left
empty); the answer shows the event's receipt (its ledger position and hash), which the
member can check with the ledger's inclusion proof.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

from starlette.responses import JSONResponse, Response

from plaza.web.ballots import ballot_from_form
from plaza.web.context import Page
from plaza.web.dao_client import Receipt, dao_url, prepare, signer_key, submit
from plaza.web.errors import WebError


def _base(page: Page) -> str:
    return dao_url(page.web.settings.dao)


def _now_ms(page: Page) -> int:
    return int(page.web.settings.clock() * 1000)


async def _get(page: Page, path: str) -> Any:
    return await page.web.upstream.get_json(_base(page) + path)


def progress(prop: dict[str, Any], ptype: dict[str, Any]) -> dict[str, Any]:
    """Quorum and threshold progress of a proposal's outcome, for the page."""
    outcome = prop.get("outcome") or {}
    eligible = int(outcome.get("eligible") or 0)
    counted = int(outcome.get("counted") or 0)
    quorum_ppm = int(ptype.get("participation_ppm") or 0)
    needed = math.ceil(eligible * quorum_ppm / 1_000_000)
    totals = (outcome.get("detail") or {}).get("totals") or {}
    support_ppm = int(ptype.get("support_ppm") or 0)
    yes, no = int(totals.get("yes", 0) or 0), int(totals.get("no", 0) or 0)
    support = (yes * 100 // (yes + no)) if yes + no else 0
    return {
        "eligible": eligible,
        "counted": counted,
        "quorum_needed": needed,
        "quorum_ppm": quorum_ppm,
        "support_ppm": support_ppm,
        "support_pct": support,
        "totals": totals if isinstance(totals, dict) else {},
    }


async def governance(page: Page) -> Response:
    _base(page)

    async def fetch() -> dict[str, Any]:
        summary, proposals, all_motions = await asyncio.gather(
            _get(page, "/dao"), _get(page, "/dao/proposals"), _get(page, "/dao/motions")
        )
        motions = [m for m in all_motions if m.get("status") == "open"]
        return {"summary": summary, "proposals": list(reversed(proposals)), "motions": motions}

    return await page.stream("governance.html", fetch, title="Governance")


async def proposal(page: Page) -> Response:
    pid = int(page.request.path_params["pid"])
    _base(page)

    async def fetch() -> dict[str, Any]:
        prop, constitution = await asyncio.gather(
            _get(page, f"/dao/proposals/{pid}"), _get(page, "/dao/constitution")
        )
        ptype = (constitution.get("proposal_types") or {}).get(prop.get("type"), {})
        return {"p": prop, "ptype": ptype, "progress": progress(prop, ptype)}

    receipt = page.request.query_params.get("receipt")
    return await page.stream("proposal.html", fetch, title=f"Proposal {pid}", receipt=receipt)


SIGNING_NEEDS_JS = (
    "voting and other DAO actions need JavaScript: your key signs in your browser "
    "and never reaches this server"
)


async def sign_form(
    page: Page, form: dict[str, str], type_: str, payload: dict[str, Any] | None
) -> Receipt | Response:
    """The event ``type_`` with ``payload`` as the form's member (default: the browser
    key's did:key; ``payload`` None: ``{"member": author}``, completing one's admission):
    its signing bytes (JSON) when the page's script asks to ``prepare`` it, its receipt
    once the script sends it signed."""
    step = form.get("sign_step", "")
    if step not in ("prepare", "submit"):
        raise WebError(SIGNING_NEEDS_JS)
    author = form.get("member", "").strip() or signer_key(form.get("signer", "")).did_key()
    if not author.startswith("did:") or len(author) > 2048:
        raise WebError("the member DID is a did:plc or did:key")
    if payload is None:
        payload = {"member": author}
    base = _base(page)
    if step == "prepare":
        event = await prepare(
            page.web.upstream, base, author=author, type_=type_, payload=payload,
            now_ms=_now_ms(page),
        )  # fmt: skip
        return JSONResponse(event)
    return await submit(page.web.upstream, base, form, author=author, type_=type_,
                        payload=payload)  # fmt: skip


def receipt_text(what: str, r: Receipt) -> str:
    return f"{what}: ledger event {r.seq}, hash {r.hash}."


async def vote(page: Page) -> Response:
    form = await page.form()
    pid = int(page.request.path_params["pid"])
    prop = await _get(page, f"/dao/proposals/{pid}")
    ballot = ballot_from_form(str(prop.get("method")), list(prop.get("choices") or []), form)
    receipt = await sign_form(page, form, "dao.vote.cast", {"proposal": pid, "ballot": ballot})
    if isinstance(receipt, Response):
        return receipt
    return page.back(f"/governance/proposals/{pid}", flash=receipt_text("Vote recorded", receipt))


async def veto(page: Page) -> Response:
    form = await page.form()
    mid = int(page.request.path_params["mid"])
    receipt = await sign_form(page, form, "dao.motion.vetoed", {"motion": mid})
    if isinstance(receipt, Response):
        return receipt
    return page.back("/governance", flash=receipt_text(f"Veto of action {mid} recorded", receipt))


async def delegate(page: Page) -> Response:
    form = await page.form()
    to = form.get("delegate", "").strip()
    if to:
        if not to.startswith("did:") or len(to) > 2048:
            raise WebError("delegate to a member's DID")
        payload: dict[str, Any] = {"delegate": to, "scope": "global", "expires": 0}
        receipt = await sign_form(page, form, "dao.delegation.set", payload)
        if isinstance(receipt, Response):
            return receipt
        text = receipt_text("Delegation recorded", receipt)
    else:
        receipt = await sign_form(page, form, "dao.delegation.revoked", {"scope": "global"})
        if isinstance(receipt, Response):
            return receipt
        text = receipt_text("Delegation withdrawn", receipt)
    return page.back("/governance", flash=text)


def _explained(done: list[Any], mandate: Any) -> list[Any]:
    """Each action with its explanation in plain words (``plaza.assist``'s template:
    from the action's record and the mandate clause only; no model runs per page)."""
    from plaza.assist.explain import clause_of, facts_of_executed, template
    from plaza.dao.mandate import mandate_from_map
    from plaza.errors import PlazaError

    try:
        m = mandate_from_map(mandate)
    except PlazaError:
        return done
    out = []
    for a in done:
        if isinstance(a, dict):
            facts = facts_of_executed(a)
            a = {**a, "explanation": template(facts, clause_of(m, facts["kind"])).explanation}
        out.append(a)
    return out


async def actions(page: Page) -> Response:
    _base(page)

    async def fetch() -> dict[str, Any]:
        done, mandate = await asyncio.gather(_get(page, "/dao/actions"), _get(page, "/dao/mandate"))
        rules = mandate.get("actions") or {}
        return {
            "actions": _explained(list(reversed(done))[:200], mandate),
            "rules": rules if isinstance(rules, dict) else {},
            "mandate": mandate,
        }

    return await page.stream("actions_log.html", fetch, title="Agents' actions")


async def treasury(page: Page) -> Response:
    _base(page)

    async def fetch() -> dict[str, Any]:
        books, summary = await asyncio.gather(_get(page, "/dao/books"), _get(page, "/dao"))
        return {"books": books, "summary": summary}

    return await page.stream("treasury.html", fetch, title="Treasury")
