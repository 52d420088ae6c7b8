"""Explain: every agent action in plain words, from its ledger record and the mandate
clause that allowed it, and nothing else.

:func:`facts_of_event` reads an ``agent.action`` ledger record (what
:class:`~plaza.agents.loop.LedgerRecorder` writes) and :func:`facts_of_executed` the
DAO's ``/dao/actions`` entries (``dao.action.executed``); both give the same flat map.
:func:`clause_of` is the mandate's rule for the action's kind, as data.
:func:`explain` turns the two into :class:`Explanation` — with the ``none`` backend by
a fixed template, with a model through :func:`plaza.assist.model.run`, whose check
rejects an explanation naming a number that is in neither the record nor the clause.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Final

from pydantic import Field

from plaza.assist.backends import Backend
from plaza.assist.errors import ModelOutputError
from plaza.assist.model import Output, Run, run
from plaza.assist.quoting import DATA_RULES, data_block, quote, visible
from plaza.dao.mandate import Mandate, format_duration
from plaza.ledger import Event

MAX_CHARS: Final = 1000  # 150 tokens of English fit well within it
EVENT_TYPE: Final = "agent.action"
_NUMBER_RE: Final = re.compile(r"\d+(?:[.,]\d+)*")

_OUTCOME: Final = {
    "executed": "carried out",
    "proposed": "proposed",
    "denied": "was refused",
    "failed": "tried and failed to carry out",
    "dropped": "dropped",
}
_VERDICT: Final = {
    "allow": "The guard allowed it at once.",
    "optimistic": "The guard sent it to members, who could veto it within the window.",
    "vote": "The guard sent it to a member vote; it runs only if members pass it.",
    "deny": "The guard refused it.",
}


class Explanation(Output):
    """An agent action in plain words."""

    explanation: Annotated[str, Field(min_length=1, max_length=MAX_CHARS)]


def _subject(action: Mapping[str, Any]) -> str:
    for key in ("source", "provider"):
        if action.get(key):
            return str(action[key])
    params = action.get("params") or {}
    inner = params.get("params") if isinstance(params.get("params"), Mapping) else params
    for key in ("provider", "contract", "rfb", "did"):
        if isinstance(inner, Mapping) and inner.get(key):
            return str(inner[key])
    return ""


def _verdict_word(verdict: str) -> str:
    if verdict.startswith("optimistic"):
        return "optimistic"
    return verdict


def facts_of_event(ev: Event) -> dict[str, Any]:
    """The facts of one ``agent.action`` ledger record."""
    payload = dict(ev.payload)
    action = payload.get("action") or {}
    reason = payload.get("reason") or {}
    proposal = payload.get("proposal") or {}
    return {
        "seq": ev.seq,
        "kind": str(action.get("kind", "")),
        "outcome": str(payload.get("outcome", "")),
        "verdict": _verdict_word(str(payload.get("verdict", ""))),
        "subject": _subject(action),
        "amount": int(action.get("amount", 0) or 0),
        "accounts": int(action.get("accounts", 0) or 0),
        "category": str(action.get("category", "")),
        "reason": str(reason.get("text", "")),
        "rule": str(reason.get("rule", "")),
        "detail": str(payload.get("detail", "")),
        "authority": str(proposal.get("ref", "")) or "mandate",
    }


def facts_of_executed(entry: Mapping[str, Any]) -> dict[str, Any]:
    """The facts of one executed DAO action (an entry of ``GET /dao/actions``)."""
    action = entry.get("action") or {}
    authority = str(entry.get("authority", "mandate"))
    verdict = (
        "allow"
        if authority == "mandate"
        else "optimistic"
        if authority.startswith("motion:")
        else "vote"
    )
    return {
        "seq": int(entry.get("seq", 0)),
        "kind": str(action.get("kind", "")),
        "outcome": "executed",
        "verdict": verdict,
        "subject": _subject(action),
        "amount": int(action.get("amount", 0) or 0),
        "accounts": int(action.get("accounts", 0) or 0),
        "category": str(action.get("category", "")),
        "reason": str(entry.get("reason", "")),
        "rule": "",
        "detail": "",
        "authority": authority,
    }


def clause_of(mandate: Mandate, kind: str) -> dict[str, Any] | None:
    """The mandate's rule for ``kind`` as data (None: the mandate has none)."""
    rule = mandate.rule(kind)
    if rule is None:
        return None
    out: dict[str, Any] = rule.model_dump(by_alias=True, exclude_defaults=True)
    out["class"] = rule.class_
    return {"kind": kind, "mandate_version": mandate.version, **out}


def mandate_timeline(events: Iterable[Event], default: Mandate) -> list[tuple[int, Mandate]]:
    """Every mandate adopted in ``events`` (a DAO's genesis and its adopted mandate
    proposals), with its seq; ``[(0, default)]`` for a ledger without a DAO."""
    from plaza.dao.state import DaoState  # replay only: no keys, no writes
    from plaza.errors import PlazaError

    try:
        state = DaoState()
        for ev in events:
            state.apply(ev)
        found = list(state.mandates)
    except PlazaError:
        found = []
    return found or [(0, default)]


def mandate_at(timeline: list[tuple[int, Mandate]], seq: int) -> Mandate:
    """The mandate in force at ``seq``."""
    current = timeline[0][1]
    for at, m in timeline:
        if at <= seq:
            current = m
    return current


def _clause_words(kind: str, clause: Mapping[str, Any] | None) -> str:
    if clause is None:
        return f"The mandate has no clause for {kind}, so the guard refuses it."
    parts = [f'Mandate clause [actions."{kind}"] (version {clause["mandate_version"]})']
    if clause.get("description"):
        parts.append(f": {visible(str(clause['description']))}")
    terms = [f"class {clause['class']}"]
    if "category" in clause:
        terms.append(f"charged to the {clause['category']} budget")
    if "cap" in clause:
        terms.append(f"at most {clause['cap']} per action")
    if "max_accounts" in clause:
        terms.append(f"at most {clause['max_accounts']} accounts per action")
    if "optimistic_above" in clause:
        terms.append(f"veto window above {clause['optimistic_above']}")
    if "vote_above" in clause:
        terms.append(f"member vote above {clause['vote_above']}")
    if "window" in clause:
        terms.append(f"window {format_duration(int(clause['window']))}")
    return "".join(parts) + " (" + ", ".join(terms) + ")."


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def template(facts: Mapping[str, Any], clause: Mapping[str, Any] | None) -> Explanation:
    """The deterministic explanation."""
    kind = str(facts["kind"])
    about = f" concerning {visible(str(facts['subject']))}" if facts.get("subject") else ""
    sizes = []
    if facts.get("amount"):
        sizes.append(f"amount {facts['amount']}")
    if facts.get("accounts"):
        sizes.append(f"{facts['accounts']} accounts")
    size = f" ({', '.join(sizes)})" if sizes else ""
    did = _OUTCOME.get(str(facts["outcome"]), str(facts["outcome"]) or "recorded")
    head = f"Record #{facts['seq']}: the agent {did} {kind}{about}{size}."
    clause_text = _clause_words(kind, clause)
    verdict = _VERDICT.get(str(facts["verdict"]), "")
    if facts.get("authority", "mandate") != "mandate":
        verdict = f"{verdict} Authority: {facts['authority']}."
    fixed = " ".join(p for p in (head, clause_text, verdict) if p)
    room = MAX_CHARS - len(fixed) - 16
    why = f" Why: {visible(str(facts['reason']))}" if facts.get("reason") else ""
    done = f" Result: {visible(str(facts['detail']))}" if facts.get("detail") else ""
    extra = _clip(why, max(0, room // 2 + max(0, room // 2 - len(done)))) if why else ""
    extra += _clip(done, max(0, room - len(extra))) if done else ""
    return Explanation(explanation=_clip(fixed + extra, MAX_CHARS))


def _numbers_only_from(source: str) -> Any:
    known = set(_NUMBER_RE.findall(source))

    def check(out: Explanation) -> None:
        for n in _NUMBER_RE.findall(out.explanation):
            if n not in known and n.replace(",", "") not in known:
                raise ModelOutputError(f"explanation names {n}, which is not in the record")

    return check


def explain(
    backend: Backend, facts: Mapping[str, Any], clause: Mapping[str, Any] | None
) -> Run[Explanation]:
    """Explain one agent action from its facts and its mandate clause."""
    user = (
        "Explain this agent action to the network's members in plain words, in at most "
        "three sentences: what was done, which mandate clause allowed or stopped it, and "
        "why. Use only the record and the clause below.\n"
        + data_block("record", dict(facts))
        + "\n"
        + data_block("clause", dict(clause) if clause is not None else None)
        + "\nAnswer with the explanation only, in plain text."
    )
    source = quote(dict(facts)) + quote(dict(clause) if clause is not None else None)
    return run(
        backend,
        system=DATA_RULES,
        user=user,
        model=Explanation,
        template=lambda: template(facts, clause),
        check=_numbers_only_from(source),
        max_tokens=150,
        text_field="explanation",
    )
