"""Draft: the text of a proposal members vote on, from the reconciler's facts.

When the mandate sends an agent's action to a vote (a large procurement, offboarding a
provider), :func:`draft` writes its title and body from the facts — the action's
kind, amount, accounts, provider, the reconciler's reason, the guard's reason and, for
a procurement, the bids. Provider names and bid notes are user-originated and reach a
model only as quoted data. The action members vote on is the reconciler's, carried in
the proposal's effect; the draft is words only, and a model's draft that names a
number the facts do not hold is rejected (then retried once, then the template).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Final

from pydantic import Field

from plaza.assist.backends import Backend
from plaza.assist.errors import ModelOutputError
from plaza.assist.model import Output, Run, run
from plaza.assist.quoting import DATA_RULES, data_block, quote, visible

_NUMBER_RE: Final = re.compile(r"\d+(?:[.,]\d+)*")
MAX_BODY: Final = 2000
_WHAT: Final = {
    "capacity.procure": "Buy more capacity",
    "contract.award": "Award a contract",
    "contract.terminate": "End a contract early",
    "provider.offboard": "Offboard a provider",
    "provider.suspend": "Suspend a provider",
    "treasury.transfer": "Move treasury funds",
}


class Draft(Output):
    """A proposal's title and body."""

    title: Annotated[str, Field(min_length=1, max_length=200)]
    body: Annotated[str, Field(min_length=1, max_length=MAX_BODY)]


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def template(facts: Mapping[str, Any]) -> Draft:
    """The deterministic draft."""
    kind = str(facts.get("kind", ""))
    who = str(facts.get("provider_name") or facts.get("provider") or "")
    title = _WHAT.get(kind, f"Agent action {kind}")
    if who:
        title += f": {visible(who)}"
    lines = [f"The agents propose {kind} and the mandate leaves it to members."]
    if facts.get("guard"):
        lines.append(f"Why a vote: {visible(str(facts['guard']))}.")
    if facts.get("reason"):
        lines.append(f"The reconciler's reason: {visible(str(facts['reason']))}.")
    sizes = []
    if facts.get("amount"):
        sizes.append(f"amount {facts['amount']} (minor units)")
    if facts.get("accounts"):
        sizes.append(f"{facts['accounts']} accounts")
    if facts.get("provider"):
        sizes.append(f"provider {visible(str(facts['provider']))}")
    if sizes:
        lines.append("Facts: " + ", ".join(sizes) + ".")
    for bid in list(facts.get("bids") or [])[:10]:
        if not isinstance(bid, Mapping):
            continue
        name = visible(str(bid.get("name") or bid.get("provider") or "a provider"))
        note = f' — their note: "{visible(str(bid["note"])[:200])}"' if bid.get("note") else ""
        lines.append(f"Bid from {name}: price {bid.get('price', '?')}{note}.")
    lines.append("A yes vote lets the agents carry out exactly this action; a no vote stops it.")
    return Draft(title=_clip(title, 200), body=_clip("\n".join(lines), MAX_BODY))


def _numbers_from(source: str) -> Any:
    known = set(_NUMBER_RE.findall(source))

    def check(out: Draft) -> None:
        for n in _NUMBER_RE.findall(out.title + " " + out.body):
            if n not in known and n.replace(",", "") not in known:
                raise ModelOutputError(f"draft names {n}, which is not in the facts")

    return check


def draft(backend: Backend, facts: Mapping[str, Any]) -> Run[Draft]:
    """Draft the proposal for the action ``facts`` describes."""
    user = (
        "Write the title and body of a proposal the network's members will vote on, "
        "in plain neutral words, from these facts only. Say what the agents would do, "
        "why the mandate asks members, and what yes and no mean.\n"
        + data_block("facts", dict(facts))
        + '\nAnswer {"title": "...", "body": "..."}.'
    )
    return run(
        backend,
        system=DATA_RULES,
        user=user,
        model=Draft,
        template=lambda: template(facts),
        check=_numbers_from(quote(dict(facts))),
        max_tokens=400,
    )
