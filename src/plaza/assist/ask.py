"""Ask: answer a member's question from ledger records, citing their sequence numbers,
and refuse to go beyond them.

:func:`retrieve` picks the records that concern the question: those by or about
``did`` when one is given, ranked by how many of the question's words they contain.
:func:`ask` answers :class:`Answer` — with the ``none`` backend a template listing
the records found; with a model, whose answer must cite only records it was shown
(each ``#N`` in the text cited, every citation among the retrieved records) or it is
rejected. :func:`verify_citations` checks a final answer against the ledger itself:
every citation must name a record that exists, or the answer is refused.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Final

from pydantic import Field

from plaza.assist.backends import Backend
from plaza.assist.errors import CitationError
from plaza.assist.model import Output, Run, run
from plaza.assist.quoting import DATA_RULES, data_block, visible
from plaza.ledger import Event

MAX_RECORDS: Final = 8
_WORD_RE: Final = re.compile(r"[\w:.#-]{3,}", re.UNICODE)
_CITE_RE: Final = re.compile(r"#(\d+)")
_STOP: Final = frozenset(
    {"the", "and", "why", "was", "were", "what", "when", "who", "how", "did", "does"}
    | {"this", "that", "with", "for", "from", "have", "has", "my", "our", "your"}
    | {"their", "about", "account", "happen", "happened"}
)
REFUSAL: Final = "The ledger holds no record that answers this, so I cannot answer it."


class Answer(Output):
    """An answer and the ledger records it rests on."""

    answer: Annotated[str, Field(min_length=1, max_length=1500)]
    citations: Annotated[list[Annotated[int, Field(ge=0)]], Field(max_length=20)]
    refused: bool


@dataclass(frozen=True)
class Record:
    """One ledger record as the assistant reads it (no signature, no keys)."""

    seq: int
    type: str
    time: int
    author: str
    payload: Mapping[str, Any]

    @classmethod
    def of(cls, ev: Event) -> Record:
        return cls(ev.seq, ev.type, ev.time, ev.author_did, dict(ev.payload))

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "type": self.type,
            "time": self.time,
            "author": self.author,
            "payload": _plain(self.payload),
        }

    def text(self) -> str:
        return json.dumps(self.to_json(), ensure_ascii=False, default=str).lower()


def _plain(value: Any, depth: int = 0) -> Any:
    """A JSON-safe, size-bounded copy (bytes as their length, long strings clipped)."""
    if depth > 6:
        return "…"
    if isinstance(value, Mapping):
        return {str(k): _plain(v, depth + 1) for k, v in list(value.items())[:40]}
    if isinstance(value, list | tuple):
        return [_plain(v, depth + 1) for v in value[:40]]
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if isinstance(value, str):
        return value[:500]
    if isinstance(value, int | float | bool) or value is None:
        return value
    return str(value)[:200]


def _words(question: str) -> set[str]:
    return {
        w.strip(".#-:").lower()
        for w in _WORD_RE.findall(question)
        if w.strip(".#-:").lower() not in _STOP
    } - {""}


def retrieve(records: Iterable[Record], question: str, did: str | None = None) -> list[Record]:
    """The records that concern ``question`` (and ``did``), best first, at most
    :data:`MAX_RECORDS`; the newest first among equals."""
    words = _words(question)
    scored: list[tuple[int, int, Record]] = []
    for rec in records:
        text = rec.text()
        if did is not None and rec.author != did and did.lower() not in text:
            continue
        hits = sum(1 for w in words if w in text)
        if did is None and hits == 0:
            continue
        scored.append((hits, rec.seq, rec))
    scored.sort(key=lambda t: (-t[0], -t[1]))
    return [r for _, _, r in scored[:MAX_RECORDS]]


def _summary(rec: Record) -> str:
    p = rec.payload
    if rec.type == "agent.action":
        action = p.get("action") or {}
        reason = (p.get("reason") or {}).get("text", "")
        what = f"{action.get('kind', '')} {p.get('outcome', '')} ({p.get('verdict', '')})"
        return f"{what}: {visible(str(reason)[:160])}"
    for key in ("title", "reason", "val", "kind", "type"):
        if isinstance(p.get(key), str) and p[key]:
            return f"{key} {visible(p[key][:160])}"
    return "recorded"


def template(question: str, found: list[Record], did: str | None) -> Answer:
    """The deterministic answer: the records found, each cited."""
    if not found:
        return Answer(answer=REFUSAL, citations=[], refused=True)
    about = f" about {visible(did)}" if did else ""
    lines = [f"The ledger holds {len(found)} record(s){about} that bear on this:"]
    for rec in sorted(found, key=lambda r: r.seq):
        lines.append(f"#{rec.seq} {rec.type}: {_summary(rec)}")
    lines.append("Nothing beyond these records is known to me.")
    text = "\n".join(lines)
    if len(text) > 1500:
        text = text[:1499] + "…"
    cited = sorted(r.seq for r in found if f"#{r.seq} " in text)
    return Answer(answer=text, citations=cited, refused=False)


def _only_shown(shown: set[int]) -> Any:
    def check(out: Answer) -> None:
        bad = [c for c in out.citations if c not in shown]
        if bad:
            raise CitationError(f"the answer cites records {bad} it was not shown")
        named = {int(n) for n in _CITE_RE.findall(out.answer)}
        if not named <= set(out.citations):
            raise CitationError(f"the answer names #{sorted(named - set(out.citations))}")
        if not out.refused and not out.citations:
            raise CitationError("an answer that is not a refusal must cite a record")

    return check


def verify_citations(answer: Answer, exists: Iterable[int]) -> Answer:
    """``answer`` if every citation names a record in ``exists``; otherwise the
    citations that do not are dropped, and with none left the answer is a refusal."""
    known = set(exists)
    kept = [c for c in answer.citations if c in known]
    if kept == answer.citations:
        return answer
    if not kept:
        return Answer(answer=REFUSAL, citations=[], refused=True)
    return Answer(answer=answer.answer, citations=kept, refused=answer.refused)


def ask(
    backend: Backend, records: Iterable[Record], question: str, did: str | None = None
) -> Run[Answer]:
    """Answer ``question`` from ``records`` (every record of the ledger, oldest first)."""
    every = list(records)
    found = retrieve(every, question, did)
    shown = {r.seq for r in found}
    user = (
        "Answer the member's question using only the ledger records below, citing each "
        "record you rely on by its seq as #seq in the text and in citations. If they do "
        "not answer it, set refused to true and say so; never add facts from elsewhere.\n"
        + data_block("question", {"question": question, "did": did})
        + "\n"
        + data_block("records", [r.to_json() for r in found])
        + '\nAnswer {"answer": "...", "citations": [seq, ...], "refused": false}.'
    )
    if not found:  # nothing to rest an answer on: no model is asked
        result = run(
            _NoModel(),
            system="",
            user="",
            model=Answer,
            template=lambda: template(question, found, did),
        )
    else:
        result = run(
            backend,
            system=DATA_RULES,
            user=user,
            model=Answer,
            template=lambda: template(question, found, did),
            check=_only_shown(shown),
            max_tokens=400,
        )
    checked = verify_citations(result.value, (r.seq for r in every))
    if checked is result.value:
        return result
    return Run(checked, result.source, result.attempts, result.errors, result.latency_s)


class _NoModel:
    name = "none"

    def complete(
        self, system: str, user: str, *, schema: dict[str, Any] | None, max_tokens: int
    ) -> str:
        raise CitationError("no records: nothing to ask a model about")
